// CUDA backend of the complex Langevin (cl) family: the stages of
// qcdhpc/cl/langevin_stages.h, each parallel_for a grid-stride kernel, built
// with --fmad=false so that device arithmetic rounds as the host's
// (docs/architecture.md).  Quartic walkers: one thread per walker runs all
// steps in registers (one launch per call); Bose gas: the batch stage by stage.
#define QCDHPC_BACKEND cuda
#include "qcdhpc/core/runtime.h"
#include "qcdhpc/cl/backend_api.h"
#include "qcdhpc/cl/langevin_stages.h"

namespace qcdhpc {
namespace cuda {

void quartic_langevin(cl::C128* z, int64_t W, cl::QuarticCoeffs c, cl::StepParams p, int scheme,
                      bool complex_noise, const double* kbar, double* t, uint8_t* frozen,
                      uint64_t seed, uint64_t walker0, uint64_t step0, int64_t nsteps,
                      int64_t every, cl::C128* records, double* weights) {
  const int64_t ld = (nsteps + every - 1) / every;
  dispatch_quartic(scheme, kbar != nullptr, complex_noise, [&](auto s, auto a, auto n) {
    quartic_walkers_flat<decltype(s)::value, decltype(a)::value, decltype(n)::value>(
        z, W, c, p, kbar, t, frozen, seed, walker0, step0, nsteps, every, records, weights, ld);
  });
}

void bose_langevin(cl::C128* phi, int64_t B, int64_t N, int D, cl::BoseCoeffs c, cl::StepParams p,
                   int scheme, bool complex_noise, const double* kbar, double* t, uint8_t* frozen,
                   uint64_t seed, uint64_t field0, uint64_t step0, int64_t nsteps, int64_t every,
                   cl::C128* dens, cl::C128* phi2, double* kmax, double* weights) {
  const int64_t V = cl::lattice_volume(N, D), ld = (nsteps + every - 1) / every;
  dispatch_dim(D, [&](auto d) {
    constexpr int kD = decltype(d)::value;
    Buffer<int32_t> nb(V * 2 * kD);
    bose_neighbour_table<kD>(N, V, nb.data());
    if (complex_noise)
      bose_langevin_batch<kD, true>(phi, B, N, V, nb.data(), c, p, scheme, kbar, t, frozen, seed,
                                    field0, step0, nsteps, every, dens, phi2, kmax, weights, ld);
    else
      bose_langevin_batch<kD, false>(phi, B, N, V, nb.data(), c, p, scheme, kbar, t, frozen, seed,
                                     field0, step0, nsteps, every, dens, phi2, kmax, weights, ld);
  });
}

}  // namespace cuda
}  // namespace qcdhpc
