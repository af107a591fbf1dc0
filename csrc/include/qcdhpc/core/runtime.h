// The backend runtime every family shares: devices, threads, synchronisation,
// the scratch-memory cache.  Declared once per backend namespace; defined in
// csrc/cpu/runtime_cpu.cpp and csrc/cuda/runtime_cuda.cpp; bound to Python by
// csrc/python/core_bindings.h.  Host code only.
#pragma once

#include "device_buffer.h"
#include "device_guard.h"

#define QCDHPC_DECLARE_RUNTIME(NS)                                                        \
  namespace qcdhpc {                                                                      \
  namespace NS {                                                                          \
  int device_count();         /* usable devices of this backend (cpu: 1) */              \
  void device_synchronize();  /* wait for the current device (cpu: nothing to wait) */    \
  void set_num_threads(int n);                                                            \
  int get_num_threads();                                                                  \
  void empty_cache();         /* free every cached scratch block (cpu: nothing cached) */ \
  CacheStats cache_stats();                                                               \
  }                                                                                       \
  }

QCDHPC_DECLARE_RUNTIME(cpu)
QCDHPC_DECLARE_RUNTIME(cuda)
