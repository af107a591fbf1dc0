// Declarations of the entry points each backend (cpu, cuda) compiles from
// phi4_hmc_impl.h.  The pybind11 layer (csrc/python/bindings.h) sees only these.
#pragma once

#include <cstdint>

#include "phi4.h"

#define QCDHPC_DECLARE_BACKEND(NS)                                                                \
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
  void set_num_threads(int n);                                                                    \
  void device_synchronize();                                                                      \
  int get_num_threads();                                                                          \
  int device_count();                                                                             \
  }                                                                                               \
  }

QCDHPC_DECLARE_BACKEND(cpu)
QCDHPC_DECLARE_BACKEND(cuda)

// Explicit instantiation of every templated entry point for one precision.
#define QCDHPC_INSTANTIATE(Real)                                                                  \
  template void fill_normal<Real>(Real*, int64_t, int64_t, uint64_t, uint64_t, uint64_t,          \
                                  uint64_t);                                                      \
  template void action<Real>(const Real*, int64_t, phi4::Lattice, double, double, double*);        \
  template void force<Real>(const Real*, Real*, int64_t, phi4::Lattice, double, double);          \
  template void md_integrate<Real>(Real*, Real*, int64_t, phi4::Lattice, double, double, double,  \
                                   int64_t, int);                                                 \
  template void hmc_trajectories<Real>(Real*, int64_t, phi4::Lattice, double, double, int64_t,    \
                                       double, int, uint64_t, uint64_t, uint64_t, int64_t,        \
                                       double*, uint8_t*);
