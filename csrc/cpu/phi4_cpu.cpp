// CPU backend of the phi^4 family: the HMC stages of qcdhpc/phi4/hmc_stages.h
// compiled with OpenMP loops, plus the CPU's scheduling of a batch (lane blocks,
// chains to threads).  Threads and devices: runtime_cpu.cpp.
#define QCDHPC_BACKEND cpu
#include <algorithm>

#include "qcdhpc/core/runtime.h"
#include "qcdhpc/phi4/backend_api.h"
#include "qcdhpc/phi4/hmc_stages.h"
#include "phi4_lanes.h"

namespace qcdhpc {
namespace cpu {

// CPU scheduling of the batch: work units go to threads, and each thread runs
// the whole stage sequence on its unit, whose fields stay in L1/L2 cache through
// all MD steps; the stages inside run as plain, vectorised loops (go_parallel()
// is false inside the region).  A unit is a block of W = 64 bytes / sizeof(Real)
// chains in the lane-interleaved layout (phi4_lanes.h) while W chains are left;
// the remainder is one more block, padded with dummy lanes, when that is faster
// than running it chain by chain (hmc_trajectories_batch with B = 1): single
// chains vectorise along their rows, poorly on short rows, well once a row is
// 8 vectors or longer, so the padded block pays from half full on rows shorter
// than 8W sites and from three quarters full on longer ones (measured, Zen 4:
// docs/benchmarks.md).
// With fewer chains than threads the stages themselves are parallel over sites
// instead.  Per-chain arithmetic is the same in every case, so the results are
// identical bit for bit.
template <class Real>
void hmc_trajectories(Real* phi, int64_t B, phi4::Lattice lat, double kappa, double lam,
                      int64_t nmd, double tau, int integrator, uint64_t seed, uint64_t chain0,
                      uint64_t traj0, int64_t ntraj, double* dH, uint8_t* acc) {
  const int64_t V = lat.volume();
  constexpr int64_t W = lanes::width<Real>();
  if (B >= get_num_threads() || V < kOmpMinWork) {
    const int64_t rem = B % W, pad_from = lat.L1 < 8 * W ? W / 2 : 3 * W / 4;
    const int64_t nblocks = B / W + (rem >= pad_from ? 1 : 0);
    const int64_t nsingle = B - std::min(B, nblocks * W), nunits = nblocks + nsingle;
#pragma omp parallel for schedule(dynamic, 1) if (nunits > 1 && get_num_threads() > 1)
    for (int64_t u = 0; u < nunits; ++u) {
      const int64_t b = u < nblocks ? u * W : nblocks * W + (u - nblocks);
      if (u < nblocks)
        lanes::hmc_block(phi + b * V, std::min(W, B - b), lat, kappa, lam, nmd, tau, integrator,
                         seed, chain0 + uint64_t(b), traj0, ntraj, dH + b * ntraj,
                         acc + b * ntraj, ntraj);
      else
        hmc_trajectories_batch(phi + b * V, 1, lat, kappa, lam, nmd, tau, integrator, seed,
                               chain0 + uint64_t(b), traj0, ntraj, dH + b * ntraj,
                               acc + b * ntraj, ntraj);
    }
  } else {
    hmc_trajectories_batch(phi, B, lat, kappa, lam, nmd, tau, integrator, seed, chain0, traj0,
                           ntraj, dH, acc, ntraj);
  }
}

QCDHPC_INSTANTIATE_PHI4(float)
QCDHPC_INSTANTIATE_PHI4(double)

}  // namespace cpu
}  // namespace qcdhpc
