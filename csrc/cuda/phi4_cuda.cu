// CUDA backend: the same HMC stages of phi4_hmc_impl.h, each parallel_for a
// grid-stride kernel.  Built with --fmad=false so that device arithmetic
// rounds exactly as the host's (no fused multiply-adds), see docs/architecture.md.
#define QCDHPC_BACKEND cuda
#include "qcdhpc/backend_api.h"
#include "qcdhpc/phi4_hmc_impl.h"

namespace qcdhpc {
namespace cuda {

QCDHPC_INSTANTIATE(float)
QCDHPC_INSTANTIATE(double)

void set_num_threads(int) {}
int get_num_threads() { return 1; }

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
