// Portability macros and exact arithmetic shared by every math header.
//
// QCD_HD marks functions that are compiled for both host and device: the same
// source line is what the OpenMP driver and the CUDA kernel execute, so the CPU
// test suite exercises the code that a GPU runs (see docs/architecture.md).
// Numerics versions are per family (e.g. phi4/version.h), not here.
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

namespace qcdhpc {

// a * b + c with one rounding (IEEE 754 fusedMultiplyAdd).  The operation is
// exactly specified, so CUDA's fma and the host's give the same bits -- unlike
// the compiler contracting a * b + c on its own, which both builds switch off
// (-ffp-contract=off, --fmad=false) so that every fused operation is one we
// wrote.  On hosts without FMA instructions libm computes it in software
// (correct, slower); every x86-64-v3 and every ARMv8 CPU has them.
QCD_INLINE double fmadd(double a, double b, double c) {
#if defined(__CUDA_ARCH__)
  return ::fma(a, b, c);
#else
  return __builtin_fma(a, b, c);
#endif
}

QCD_INLINE float fmadd(float a, float b, float c) {
#if defined(__CUDA_ARCH__)
  return ::fmaf(a, b, c);
#else
  return __builtin_fmaf(a, b, c);
#endif
}

}  // namespace qcdhpc
