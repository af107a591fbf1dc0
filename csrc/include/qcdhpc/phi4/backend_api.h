// Declarations of the phi^4 entry points each backend (cpu, cuda) compiles from
// phi4/hmc_stages.h.  The pybind11 layer (csrc/python/phi4_bindings.h) sees
// only these and core/runtime.h; host code, no CUDA headers.
#pragma once

#include <cstdint>

#include "site.h"
#include "version.h"

#define QCDHPC_DECLARE_PHI4(NS)                                                                   \
  namespace qcdhpc {                                                                              \
  namespace NS {                                                                                  \
  template <class Real>                                                                           \
  void fill_normal(Real* out, int64_t B, int64_t V, uint64_t seed, uint64_t chain0,               \
                   uint64_t traj, uint64_t purpose);                                              \
  template <class Real>                                                                           \
  void action(const Real* phi, int64_t B, phi4::Lattice lat, double kappa, double lam,            \
              double* out);                                                                       \
  template <class Real>                                                                           \
  void force(const Real* phi, Real* out, int64_t B, phi4::Lattice lat, double kappa, double lam); \
  template <class Real>                                                                           \
  void md_integrate(Real* phi, Real* mom, int64_t B, phi4::Lattice lat, double kappa, double lam, \
                    double eps, int64_t nmd, int integrator);                                     \
  template <class Real>                                                                           \
  void hmc_trajectories(Real* phi, int64_t B, phi4::Lattice lat, double kappa, double lam,        \
                        int64_t nmd, double tau, int integrator, uint64_t seed, uint64_t chain0,  \
                        uint64_t traj0, int64_t ntraj, double* dH, uint8_t* acc);                 \
  }                                                                                               \
  }

QCDHPC_DECLARE_PHI4(cpu)
QCDHPC_DECLARE_PHI4(cuda)

// Explicit instantiation of every templated phi^4 entry point for one precision
// (inside namespace qcdhpc::<backend>, in the backend's translation unit).
#define QCDHPC_INSTANTIATE_PHI4(Real)                                                             \
  template void fill_normal<Real>(Real*, int64_t, int64_t, uint64_t, uint64_t, uint64_t,          \
                                  uint64_t);                                                      \
  template void action<Real>(const Real*, int64_t, phi4::Lattice, double, double, double*);        \
  template void force<Real>(const Real*, Real*, int64_t, phi4::Lattice, double, double);          \
  template void md_integrate<Real>(Real*, Real*, int64_t, phi4::Lattice, double, double, double,  \
                                   int64_t, int);                                                 \
  template void hmc_trajectories<Real>(Real*, int64_t, phi4::Lattice, double, double, int64_t,    \
                                       double, int, uint64_t, uint64_t, uint64_t, int64_t,        \
                                       double*, uint8_t*);
