// The one launcher every kernel body goes through (after Grid's accelerator_for).
//
//   parallel_for(n, QCD_LAMBDA(int64_t i) { ...body... });
//   parallel_for_2d(n_outer, n_inner, QCD_LAMBDA(int64_t o, int64_t i) { ... });
//   parallel_for_lattice(B, L0, L1, QCD_LAMBDA(int64_t b, int64_t x0, int64_t x1m, int64_t x1, int64_t x1p) { ... });
//
// Compiled by a host compiler it is an OpenMP loop; compiled by nvcc it is a
// grid-stride CUDA kernel.  Kernel bodies never see which: the math they call
// lives in the QCD_HD headers.  Scratch memory comes from Buffer<T>
// (device_buffer.h), a host vector or a block of the caching device pool in the
// same way; fixed-order sums over rows and chains are in reductions.h.
#pragma once

#include "config.h"

#if defined(__CUDACC__)
#include "cuda_check.h"
#else
#if defined(_OPENMP)
#include <omp.h>
#endif
#endif

namespace qcdhpc {

#if defined(__CUDACC__)

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

// Sites of B periodic L0 x L1 lattices: f(b, x0, x1-1, x1, x1+1), column
// neighbours wrapped.  On the GPU every site is a thread; the row structure
// only serves the CPU version below.
template <class F>
inline void parallel_for_lattice(int64_t B, int64_t L0, int64_t L1, F f) {
  const int64_t V = L0 * L1;
  parallel_for(B * V, [=] __device__(int64_t i) {
    const int64_t b = i / V, x0 = (i - b * V) / L1, x1 = i - b * V - x0 * L1;
    f(b, x0, x1 == 0 ? L1 - 1 : x1 - 1, x1, x1 + 1 == L1 ? 0 : x1 + 1);
  });
}

template <class F>
inline void parallel_for_2d(int64_t n_outer, int64_t n_inner, F f) {
  parallel_for(n_outer * n_inner, [=] __device__(int64_t i) {
    const int64_t o = i / n_inner;
    f(o, i - o * n_inner);
  });
}

inline void synchronize() { cuda_check(cudaDeviceSynchronize(), "synchronize"); }

#else  // host: OpenMP

// Launchers inline everything the kernel body calls (Philox rounds, Box-Muller
// polynomials): the loop can only be vectorised when no call is left in it.
#define QCD_FLATTEN __attribute__((flatten))

// Below this many iterations a parallel region costs more than it saves.
constexpr int64_t kOmpMinWork = 8192;

// Parallel only at the outermost level and when it pays: the CPU driver also
// runs whole chains on separate threads (phi4_cpu.cpp), and then every stage
// inside must be a plain loop the compiler can inline and vectorise.
inline bool go_parallel(int64_t work) {
#if defined(_OPENMP)
  return work >= kOmpMinWork && !omp_in_parallel() && omp_get_max_threads() > 1;
#else
  (void)work;
  return false;
#endif
}

template <class F>
QCD_FLATTEN inline void parallel_for(int64_t n, F f) {
  if (go_parallel(n)) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i) f(i);
  } else {
    for (int64_t i = 0; i < n; ++i) f(i);
  }
}

// f(o, i) for o < n_outer, i < n_inner; the inner loop is the vectorised one.
template <class F>
QCD_FLATTEN inline void parallel_for_2d(int64_t n_outer, int64_t n_inner, F f) {
  // Iterations are independent by contract: omp simd tells the compiler so.
  if (go_parallel(n_outer * n_inner)) {
#pragma omp parallel for schedule(static)
    for (int64_t o = 0; o < n_outer; ++o) {
#pragma omp simd
      for (int64_t i = 0; i < n_inner; ++i) f(o, i);
    }
  } else {
    for (int64_t o = 0; o < n_outer; ++o) {
#pragma omp simd
      for (int64_t i = 0; i < n_inner; ++i) f(o, i);
    }
  }
}

// Sites of B periodic L0 x L1 lattices: f(b, x0, x1-1, x1, x1+1), column
// neighbours wrapped.  A row's interior is a branch-free affine loop, so after
// inlining f the compiler vectorises it and hoists the per-row work (row
// pointers) out of it; the two edge sites of the row are done on their own.
template <class F>
inline void lattice_row(int64_t b, int64_t x0, int64_t L1, F& f) {
  // L1 >= 2 (lattices have L >= 2)
  f(b, x0, L1 - 1, int64_t(0), int64_t(1));
#pragma omp simd
  for (int64_t j = 1; j < L1 - 1; ++j) f(b, x0, j - 1, j, j + 1);
  f(b, x0, L1 - 2, L1 - 1, int64_t(0));
}

template <class F>
QCD_FLATTEN inline void parallel_for_lattice(int64_t B, int64_t L0, int64_t L1, F f) {
  if (go_parallel(B * L0 * L1)) {
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t b = 0; b < B; ++b)
      for (int64_t x0 = 0; x0 < L0; ++x0) lattice_row(b, x0, L1, f);
  } else {
    for (int64_t b = 0; b < B; ++b)
      for (int64_t x0 = 0; x0 < L0; ++x0) lattice_row(b, x0, L1, f);
  }
}

inline void synchronize() {}

#endif

}  // namespace qcdhpc
