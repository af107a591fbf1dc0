// A minimal complex number for host+device math (complex Langevin, ...).
//
// Why not std::complex / thrust::complex: their operator* and abs differ between
// libstdc++ and CUDA (C99 Annex G inf/NaN recovery, hypot), and some are not
// __device__; here every operation is written out, so with the compilers'
// contraction switched off (-ffp-contract=off, --fmad=false) the host and the
// device evaluate the same IEEE operations in the same order and round alike.
//
// Layout: {re, im}, two Reals, real part first -- that of numpy's complex128,
// torch.complex128, std::complex<double> and DLPack kDLComplex, so a DLPack
// complex128 buffer is read as Complex<double>* in place.
#pragma once

#include "config.h"

namespace qcdhpc {

template <class Real>
struct Complex {
  Real re, im;
};

using Complex128 = Complex<double>;
static_assert(sizeof(Complex128) == 2 * sizeof(double), "Complex must be two packed Reals");

template <class Real>
QCD_INLINE Complex<Real> cplx(Real re, Real im) {
  return Complex<Real>{re, im};
}

template <class Real>
QCD_INLINE Complex<Real> operator+(Complex<Real> a, Complex<Real> b) {
  return Complex<Real>{a.re + b.re, a.im + b.im};
}

template <class Real>
QCD_INLINE Complex<Real> operator-(Complex<Real> a, Complex<Real> b) {
  return Complex<Real>{a.re - b.re, a.im - b.im};
}

template <class Real>
QCD_INLINE Complex<Real> operator-(Complex<Real> a) {
  return Complex<Real>{-a.re, -a.im};
}

// (a.re b.re - a.im b.im) + i (a.re b.im + a.im b.re): four products, two sums,
// no fused operations and no inf/NaN recovery.
template <class Real>
QCD_INLINE Complex<Real> operator*(Complex<Real> a, Complex<Real> b) {
  return Complex<Real>{a.re * b.re - a.im * b.im, a.re * b.im + a.im * b.re};
}

// A real times a complex: two products (not a complex product with 0 i).
template <class Real>
QCD_INLINE Complex<Real> operator*(Real s, Complex<Real> a) {
  return Complex<Real>{s * a.re, s * a.im};
}

// i s a for real s:  (-s a.im) + i (s a.re).
template <class Real>
QCD_INLINE Complex<Real> times_i(Real s, Complex<Real> a) {
  return Complex<Real>{-(s * a.im), s * a.re};
}

// |a|^2 = re^2 + im^2 (no hypot: exact IEEE operations on both backends).
template <class Real>
QCD_INLINE Real norm2(Complex<Real> a) {
  return a.re * a.re + a.im * a.im;
}

}  // namespace qcdhpc
