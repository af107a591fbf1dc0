// CUDA backend of the phi^4 family: the same HMC stages of
// qcdhpc/phi4/hmc_stages.h, each parallel_for a grid-stride kernel.  Built with
// --fmad=false so that device arithmetic rounds exactly as the host's (no
// fused multiply-adds but the explicit fmadd calls), see docs/architecture.md.
// Devices, synchronisation and the scratch-memory pool: runtime_cuda.cpp.
#define QCDHPC_BACKEND cuda
#include "qcdhpc/core/runtime.h"
#include "qcdhpc/phi4/backend_api.h"
#include "qcdhpc/phi4/hmc_stages.h"

namespace qcdhpc {
namespace cuda {

// The GPU runs the batch stage by stage: each stage is one launch over all sites
// of all chains.
template <class Real>
void hmc_trajectories(Real* phi, int64_t B, phi4::Lattice lat, double kappa, double lam,
                      int64_t nmd, double tau, int integrator, uint64_t seed, uint64_t chain0,
                      uint64_t traj0, int64_t ntraj, double* dH, uint8_t* acc) {
  hmc_trajectories_batch(phi, B, lat, kappa, lam, nmd, tau, integrator, seed, chain0, traj0, ntraj,
                         dH, acc, ntraj);
}

QCDHPC_INSTANTIATE_PHI4(float)
QCDHPC_INSTANTIATE_PHI4(double)

}  // namespace cuda
}  // namespace qcdhpc
