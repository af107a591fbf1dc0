// The one launcher every kernel body goes through (after Grid's accelerator_for).
//
//   parallel_for(n, QCD_LAMBDA(int64_t i) { ...body... });
//   parallel_for_rows(nrows, rowlen, QCD_LAMBDA(int64_t row, int64_t j) { ... });
//
// Compiled by a host compiler it is an OpenMP loop; compiled by nvcc it is a
// grid-stride CUDA kernel.  Kernel bodies never see which: the math they call
// lives in the QCD_HD headers.  Scratch memory comes from Buffer<T>, which is a
// host allocation or a cudaMalloc in the same way.
#pragma once

#include "config.h"

#include <cstddef>
#include <stdexcept>
#include <string>

#if defined(__CUDACC__)
#include <cuda_runtime.h>
#else
#include <vector>
#if defined(_OPENMP)
#include <omp.h>
#endif
#endif

namespace qcdhpc {

#if defined(__CUDACC__)

inline void cuda_check(cudaError_t err, const char* what) {
  if (err != cudaSuccess)
    throw std::runtime_error(std::string("CUDA error in ") + what + ": " + cudaGetErrorString(err));
}

template <class F>
__global__ void parallel_for_kernel(int64_t n, F f) {
  const int64_t stride = int64_t(blockDim.x) * gridDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) f(i);
}

template <class F>
inline void parallel_for(int64_t n, F f) {
  if (n <= 0) return;
  constexpr int kThreads = 256;
  const int64_t blocks = (n + kThreads - 1) / kThreads;
  parallel_for_kernel<<<unsigned(blocks < 65535 ? blocks : 65535), kThreads>>>(n, f);
  cuda_check(cudaGetLastError(), "parallel_for launch");
}

// On the GPU every site is a thread; the row structure only serves the CPU.
template <class F>
inline void parallel_for_rows(int64_t nrows, int64_t rowlen, F f) {
  parallel_for(nrows * rowlen, [=] __device__(int64_t i) { f(i / rowlen, i % rowlen); });
}

inline void synchronize() { cuda_check(cudaDeviceSynchronize(), "synchronize"); }

template <class T>
class Buffer {
 public:
  explicit Buffer(size_t n) : n_(n) {
    if (n_) cuda_check(cudaMalloc(&ptr_, n_ * sizeof(T)), "cudaMalloc");
  }
  ~Buffer() {
    if (ptr_) cudaFree(ptr_);
  }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  T* data() { return ptr_; }

 private:
  T* ptr_ = nullptr;
  size_t n_;
};

#else  // host: OpenMP

// Below this many iterations a parallel region costs more than it saves.
constexpr int64_t kOmpMinWork = 4096;

template <class F>
inline void parallel_for(int64_t n, F f) {
#pragma omp parallel for schedule(static) if (n >= kOmpMinWork)
  for (int64_t i = 0; i < n; ++i) f(i);
}

// Rows go to threads; the inner loop over a row is plain and inlinable, so the
// index arithmetic (row -> chain, x0) is done once per row, not per site.
template <class F>
inline void parallel_for_rows(int64_t nrows, int64_t rowlen, F f) {
#pragma omp parallel for schedule(static) if (nrows * rowlen >= kOmpMinWork)
  for (int64_t r = 0; r < nrows; ++r)
    for (int64_t j = 0; j < rowlen; ++j) f(r, j);
}

inline void synchronize() {}

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
