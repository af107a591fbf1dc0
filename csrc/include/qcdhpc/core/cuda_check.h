// CUDA runtime errors as C++ exceptions (pybind11 turns them into RuntimeError).
// Host code of the CUDA backend only: nvcc translation units and the CUDA
// runtime glue (csrc/cuda/runtime_cuda.cpp).
#pragma once

#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

namespace qcdhpc {

inline void cuda_check(cudaError_t err, const char* what) {
  if (err != cudaSuccess)
    throw std::runtime_error(std::string("CUDA error in ") + what + ": " + cudaGetErrorString(err));
}

}  // namespace qcdhpc
