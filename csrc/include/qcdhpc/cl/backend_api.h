// Declarations of the complex Langevin (cl) entry points each backend (cpu,
// cuda) compiles from cl/langevin_stages.h.  The pybind11 layer
// (csrc/python/cl_bindings.h) sees only these and core/runtime.h; host code, no
// CUDA headers.  float64 / complex128 only; all pointers in backend memory.
#pragma once

#include <cstdint>

#include "site.h"
#include "version.h"

#define QCDHPC_DECLARE_CL(NS)                                                                      \
  namespace qcdhpc {                                                                               \
  namespace NS {                                                                                   \
  /* nsteps steps of W quartic walkers z (in place); kbar null: fixed step; t, frozen in/out;   */ \
  /* records, weights (W, ceil(nsteps / every)).                                                */ \
  void quartic_langevin(cl::C128* z, int64_t W, cl::QuarticCoeffs c, cl::StepParams p, int scheme, \
                        bool complex_noise, const double* kbar, double* t, uint8_t* frozen,        \
                        uint64_t seed, uint64_t walker0, uint64_t step0, int64_t nsteps,           \
                        int64_t every, cl::C128* records, double* weights);                       \
  void quartic_kmax(const cl::C128* z, int64_t W, cl::QuarticCoeffs c, double* out);              \
  /* nsteps steps of B Bose-gas configurations phi (B, 2, N^D) (in place); records (B, nrec):   */ \
  /* density, phi2, kmax, weights.                                                              */ \
  void bose_langevin(cl::C128* phi, int64_t B, int64_t N, int D, cl::BoseCoeffs c,                \
                     cl::StepParams p, int scheme, bool complex_noise, const double* kbar,        \
                     double* t, uint8_t* frozen, uint64_t seed, uint64_t field0, uint64_t step0,  \
                     int64_t nsteps, int64_t every, cl::C128* dens, cl::C128* phi2, double* kmax, \
                     double* weights);                                                             \
  void bose_drift(const cl::C128* phi, int64_t B, int64_t N, int D, cl::BoseCoeffs c,             \
                  cl::C128* out);                                                                  \
  void bose_kmax(const cl::C128* phi, int64_t B, int64_t N, int D, cl::BoseCoeffs c, double* out); \
  void bose_observables(const cl::C128* phi, int64_t B, int64_t N, int D, cl::BoseCoeffs c,       \
                        cl::C128* dens, cl::C128* phi2);                                           \
  void langevin_noise(double* out, int64_t B, int64_t n, uint64_t seed, uint64_t offset,          \
                      uint64_t step);                                                              \
  /* quartic walkers' noise of one step: out (W, n), entries n step + i of each walker's stream */ \
  void quartic_noise(double* out, int64_t W, int64_t n, uint64_t seed, uint64_t offset,           \
                     uint64_t step);                                                               \
  }                                                                                                \
  }

QCDHPC_DECLARE_CL(cpu)
QCDHPC_DECLARE_CL(cuda)
