// Buffer<T>: scratch memory of a kernel call in the backend's memory space.
//
// Host (OpenMP) builds: a std::vector.  CUDA builds: a block of the caching
// device allocator below, taken on the current device (the binding's
// DeviceGuard, device_guard.h, has selected the array's GPU) and handed back
// to that device's free list when the Buffer dies -- so a sequence of kernel
// calls of the same shapes does no cudaMalloc/cudaFree after the first.
//
// Reuse is safe without events: every qcdhpc kernel runs on the legacy default
// stream of its device, so a block handed back after a launch and handed out
// again to a later launch is ordered after the first one by the stream itself.
#pragma once

#include <cstddef>
#include <cstdint>

#if !defined(__CUDACC__)
#include <vector>
#endif

namespace qcdhpc {

// What the caching allocator holds (all devices together), for tests and
// diagnostics (Python: _qcdhpc_cuda.cache_stats()).
struct CacheStats {
  size_t cached_bytes = 0;    // in free lists, ready for reuse
  size_t in_use_bytes = 0;    // handed out to live Buffers
  uint64_t device_allocs = 0; // cudaMalloc calls so far
  uint64_t reuses = 0;        // allocations served from a free list
};

namespace cuda {

// The caching device allocator (csrc/cuda/runtime_cuda.cpp): per-device free
// lists keyed by size class, a mutex around them, everything cudaFree'd by
// empty_cache() and at exit.  Sizes are rounded up to their class: multiples of
// 512 bytes below 1 MiB, quarter octaves above (at most 25% slack), so the
// same shapes always land in the same class.  When cudaMalloc fails the
// device's cached blocks are freed and the allocation retried once.
void* pool_allocate(size_t bytes);      // on the current device; throws std::runtime_error
void pool_release(void* ptr) noexcept;  // back to the free list of the device it came from
size_t pool_size_class(size_t bytes);

}  // namespace cuda

#if defined(__CUDACC__)

template <class T>
class Buffer {
 public:
  explicit Buffer(size_t n)
      : ptr_(n ? static_cast<T*>(cuda::pool_allocate(n * sizeof(T))) : nullptr) {}
  ~Buffer() {
    if (ptr_) cuda::pool_release(ptr_);
  }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  T* data() { return ptr_; }

 private:
  T* ptr_;
};

#else  // host

template <class T>
class Buffer {
 public:
  explicit Buffer(size_t n) : v_(n) {}
  T* data() { return v_.data(); }

 private:
  std::vector<T> v_;
};

#endif

}  // namespace qcdhpc
