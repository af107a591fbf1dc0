// CPU backend runtime shared by every family (core/runtime.h): OpenMP threads;
// one "device", nothing to synchronise, no scratch cache (host Buffers are
// std::vectors).
#include "qcdhpc/core/runtime.h"

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace qcdhpc {
namespace cpu {

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

void device_synchronize() {}

void empty_cache() {}

CacheStats cache_stats() { return CacheStats{}; }

}  // namespace cpu
}  // namespace qcdhpc
