// CUDA backend runtime shared by every family (core/runtime.h): device count,
// synchronisation, the device guard (core/device_guard.h) and the caching
// allocator behind Buffer<T> (core/device_buffer.h).  Host code, compiled by the
// host compiler against the CUDA runtime.
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include "qcdhpc/core/cuda_check.h"
#include "qcdhpc/core/runtime.h"

namespace qcdhpc {
namespace cuda {

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no device/driver" error
    return 0;
  }
  return n;
}

void device_synchronize() { cuda_check(cudaDeviceSynchronize(), "synchronize"); }

void set_num_threads(int) {}
int get_num_threads() { return 1; }

// ---------------------------------------------------------------- guard -----

DeviceGuard::DeviceGuard(int device) {
  const int n = device_count();
  if (device < 0 || device >= n)
    throw std::invalid_argument("CUDA device " + std::to_string(device) + " is not visible (" +
                                std::to_string(n) + " device(s); see CUDA_VISIBLE_DEVICES)");
  cuda_check(cudaGetDevice(&prev_), "cudaGetDevice");
  dev_ = device;
  if (dev_ != prev_) cuda_check(cudaSetDevice(dev_), "cudaSetDevice");
}

DeviceGuard::~DeviceGuard() {
  if (prev_ >= 0 && dev_ != prev_) cudaSetDevice(prev_);  // destructors do not throw
}

// ---------------------------------------------------------------- pool ------
//
// Kernel calls need a few scratch arrays each (hmc_trajectories_batch: seven),
// and cudaMalloc/cudaFree synchronise the device and cost 10-100 us apiece, as
// much as a whole small trajectory.  So freed blocks are kept, per device and
// size class, and handed out again; cudaFree happens only in empty_cache(),
// when cudaMalloc runs out of memory, and at exit.

size_t pool_size_class(size_t bytes) {
  constexpr size_t kSmall = size_t(1) << 20;  // 1 MiB
  if (bytes == 0) return 0;
  if (bytes <= kSmall) return (bytes + 511) / 512 * 512;
  // Quarter octaves: 2^k * {4, 5, 6, 7} / 4 for 2^k < bytes <= 2^(k+1).
  size_t top = kSmall;
  while (top < bytes) top <<= 1;
  const size_t quarter = top / 8;  // (top / 2) / 4
  return (bytes + quarter - 1) / quarter * quarter;
}

namespace {

struct Block {
  int device;
  size_t size;  // its size class
};

class Pool {
 public:
  void* allocate(size_t bytes) {
    int device = 0;
    cuda_check(cudaGetDevice(&device), "cudaGetDevice");
    const size_t size = pool_size_class(bytes);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto& lists = free_[device];
      auto it = lists.find(size);
      if (it != lists.end() && !it->second.empty()) {
        void* p = it->second.back();
        it->second.pop_back();
        cached_ -= size;
        in_use_ += size;
        ++reuses_;
        return p;
      }
    }
    void* p = nullptr;
    cudaError_t err = cudaMalloc(&p, size);
    if (err == cudaErrorMemoryAllocation) {
      cudaGetLastError();  // clear it, give this device's cached blocks back, retry once
      release_cached(device);
      err = cudaMalloc(&p, size);
    }
    cuda_check(err, "cudaMalloc (scratch pool)");
    std::lock_guard<std::mutex> lock(mutex_);
    blocks_[p] = Block{device, size};
    in_use_ += size;
    ++allocs_;
    return p;
  }

  void release(void* p) noexcept {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = blocks_.find(p);
    if (it == blocks_.end()) return;  // not ours: cannot happen through Buffer
    free_[it->second.device][it->second.size].push_back(p);
    in_use_ -= it->second.size;
    cached_ += it->second.size;
  }

  // cudaFree every cached block of `device` (all devices if device < 0).
  void release_cached(int device) {
    std::vector<std::pair<int, void*>> victims;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      for (auto& [dev, lists] : free_) {
        if (device >= 0 && dev != device) continue;
        for (auto& [size, ptrs] : lists) {
          for (void* p : ptrs) {
            victims.emplace_back(dev, p);
            blocks_.erase(p);
            cached_ -= size;
          }
          ptrs.clear();
        }
      }
    }
    if (victims.empty()) return;
    int current = -1;
    const bool have_current = cudaGetDevice(&current) == cudaSuccess;
    for (auto& [dev, p] : victims) {
      // cudaFree needs no particular current device, but the blocks' own device
      // is set so that the implicit synchronisation is the right one.
      cudaSetDevice(dev);
      cudaFree(p);
    }
    if (have_current) cudaSetDevice(current);
    cudaGetLastError();  // errors here (e.g. at process exit) are not the caller's
  }

  CacheStats stats() {
    std::lock_guard<std::mutex> lock(mutex_);
    return CacheStats{cached_, in_use_, allocs_, reuses_};
  }

 private:
  std::mutex mutex_;
  std::map<int, std::map<size_t, std::vector<void*>>> free_;  // device -> size class -> blocks
  std::unordered_map<void*, Block> blocks_;                   // every block the pool owns
  size_t cached_ = 0, in_use_ = 0;
  uint64_t allocs_ = 0, reuses_ = 0;
};

// Freed at exit by Python's atexit, which calls empty_cache() (core_bindings.h)
// while the CUDA runtime is certainly still up.  The pool object itself is never
// destroyed: a static destructor's order against the runtime's own teardown is
// unspecified, and blocks a non-Python host leaves are reclaimed with the process.
Pool& pool() {
  static Pool* p = new Pool();
  return *p;
}

}  // namespace

void* pool_allocate(size_t bytes) { return pool().allocate(bytes); }
void pool_release(void* ptr) noexcept { pool().release(ptr); }

void empty_cache() { pool().release_cached(-1); }

CacheStats cache_stats() { return pool().stats(); }

}  // namespace cuda
}  // namespace qcdhpc
