// Portability macros shared by every math header.
//
// QCD_HD marks functions that are compiled for both host and device: the same
// source line is what the OpenMP driver and the CUDA kernel execute, so the CPU
// test suite exercises the code that a GPU runs (see docs/architecture.md).
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define QCD_HD __host__ __device__
#define QCD_LAMBDA [=] __host__ __device__
#else
#define QCD_HD
#define QCD_LAMBDA [=]
#endif

#define QCD_INLINE QCD_HD inline
