// CUDA backend: the same HMC stages of phi4_hmc_impl.h, each parallel_for a
// grid-stride kernel.  Built with --fmad=false so that device arithmetic
// rounds exactly as the host's (no fused multiply-adds), see docs/architecture.md.
#define QCDHPC_BACKEND cuda
#include "qcdhpc/backend_api.h"
#include "qcdhpc/phi4_hmc_impl.h"

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

QCDHPC_INSTANTIATE(float)
QCDHPC_INSTANTIATE(double)

void set_num_threads(int) {}
int get_num_threads() { return 1; }

void device_synchronize() { synchronize(); }

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no device/driver" error
    return 0;
  }
  return n;
}

}  // namespace cuda
}  // namespace qcdhpc
