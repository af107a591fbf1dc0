// CPU backend: the HMC stages of phi4_hmc_impl.h compiled with OpenMP loops.
#define QCDHPC_BACKEND cpu
#include "qcdhpc/backend_api.h"
#include "qcdhpc/phi4_hmc_impl.h"

namespace qcdhpc {
namespace cpu {

QCDHPC_INSTANTIATE(float)
QCDHPC_INSTANTIATE(double)

void set_num_threads(int n) {
#if defined(_OPENMP)
  omp_set_num_threads(n);
#else
  (void)n;
#endif
}

int get_num_threads() {
#if defined(_OPENMP)
  return omp_get_max_threads();
#else
  return 1;
#endif
}

int device_count() { return 1; }

}  // namespace cpu
}  // namespace qcdhpc
