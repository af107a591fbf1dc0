// Philox4x64-10 counter-based random numbers (Salmon, Moraes, Dror, Shaw,
// "Parallel random numbers: as easy as 1, 2, 3", SC'11), host+device.
//
// Bit-compatible with numpy.random.Philox: for a key k and counter c, our
// philox4x64_10(c, k) equals Philox(key=k, counter=c-1).random_raw(4), because
// numpy increments its 256-bit counter *before* encrypting each block.  The
// test suite checks this bit for bit (tests/test_philox.py).
//
// Streams: a draw is addressed by (key, counter) alone, so the same numbers come
// out on CPU and GPU, on any MPI rank, after any restart.  How qcdhpc assigns
// keys and counters is mc/streams.h (and docs/conventions.md, "Random numbers");
// this header is the generator and the exactly reproducible math on its words:
// uniforms, log, sincos(2 pi u), Box-Muller.
#pragma once

#include "config.h"

#include <cmath>

namespace qcdhpc {

struct Philox4x64 {
  uint64_t v[4];
};

// Round multipliers and Weyl key increments of Philox4x64 (Random123 values).
constexpr uint64_t kPhiloxM0 = 0xD2E7470EE14C6C93ULL;
constexpr uint64_t kPhiloxM1 = 0xCA5A826395121157ULL;
constexpr uint64_t kPhiloxW0 = 0x9E3779B97F4A7C15ULL;  // golden ratio
constexpr uint64_t kPhiloxW1 = 0xBB67AE8584CAA73BULL;  // sqrt(3) - 1

QCD_INLINE void mulhilo64(uint64_t a, uint64_t b, uint64_t& hi, uint64_t& lo) {
#if defined(__CUDA_ARCH__)
  lo = a * b;
  hi = __umul64hi(a, b);
#else
  // Schoolbook 64x64 -> 128 from 32-bit halves: the same integers as
  // unsigned __int128, but written so that the host compiler can vectorise a
  // loop of Philox blocks (AVX-512 has 32x32->64 lane multiplies, no 128-bit).
  // The middle terms are carried in two steps, neither of which can overflow
  // ((2^32-1)^2 + 2 (2^32-1) < 2^64): one shift and one mask fewer than summing
  // the four partial products separately, which is ~12% of a Philox block on a
  // vector unit (docs/benchmarks.md).
  const uint64_t a0 = a & 0xffffffffu, a1 = a >> 32, b0 = b & 0xffffffffu, b1 = b >> 32;
  const uint64_t t = a1 * b0 + ((a0 * b0) >> 32);
  const uint64_t u = a0 * b1 + (t & 0xffffffffu);
  hi = a1 * b1 + (t >> 32) + (u >> 32);
  lo = a * b;
#endif
}

QCD_INLINE Philox4x64 philox4x64_10(Philox4x64 ctr, uint64_t k0, uint64_t k1) {
  // Ten rounds; the key is bumped by the Weyl constants between rounds.
  uint64_t c0 = ctr.v[0], c1 = ctr.v[1], c2 = ctr.v[2], c3 = ctr.v[3];
#if defined(__CUDACC__)  // nvcc (both its passes); it does not know GCC's spelling
#pragma unroll
#else
#pragma GCC unroll 10
#endif
  for (int round = 0; round < 10; ++round) {
    uint64_t hi0, lo0, hi1, lo1;
    mulhilo64(kPhiloxM0, c0, hi0, lo0);
    mulhilo64(kPhiloxM1, c2, hi1, lo1);
    const uint64_t n0 = hi1 ^ c1 ^ k0, n2 = hi0 ^ c3 ^ k1;
    c0 = n0;
    c1 = lo1;
    c2 = n2;
    c3 = lo0;
    k0 += kPhiloxW0;  // the bump after the last round is unused
    k1 += kPhiloxW1;
  }
  return Philox4x64{{c0, c1, c2, c3}};
}

// ---------------------------------------------------------------------------
// Host lane blocks: the Philox blocks of n lanes, lane i with counter
// (ctr.v[0] + i dc0, ctr.v[1], ctr.v[2], ctr.v[3]) and key (k0, k1 + i dk1)
// (dc0, dk1 = 0 or 1: lanes along the counter, the Bose gas's noise, or along the
// key, one stream per quartic walker), word e of lane i to out[e][i].  The same
// integers as philox4x64_10 lane by lane (tests/test_philox.py, test_cl_kernels.py).
// With AVX-512 eight lanes per instruction through explicit intrinsics: GCC
// vectorises mulhilo64 above with vpmullq (three uops) for each 32x32 partial
// product, where vpmuludq (one) is what the partial products need; this is ~15%
// of a CPU Langevin step (docs/benchmarks.md).  Elsewhere the plain loop.
#if !defined(__CUDACC__) && defined(__AVX512F__)
}  // namespace qcdhpc
#include <immintrin.h>
namespace qcdhpc {

namespace detail {
// hi:lo = a * b for a = a1:a0 (32-bit halves, each in the low half of a lane).
inline void mulhilo64_x8(__m512i a0, __m512i a1, __m512i b, __m512i& hi, __m512i& lo) {
  const __m512i b1 = _mm512_srli_epi64(b, 32);
  const __m512i p00 = _mm512_mul_epu32(a0, b), p10 = _mm512_mul_epu32(a1, b);
  const __m512i p01 = _mm512_mul_epu32(a0, b1), p11 = _mm512_mul_epu32(a1, b1);
  const __m512i t = _mm512_add_epi64(p10, _mm512_srli_epi64(p00, 32));
  const __m512i u = _mm512_add_epi64(p01, _mm512_and_si512(t, _mm512_set1_epi64(0xffffffffu)));
  hi = _mm512_add_epi64(_mm512_add_epi64(p11, _mm512_srli_epi64(t, 32)), _mm512_srli_epi64(u, 32));
  lo = _mm512_mask_blend_epi32(0x5555, _mm512_slli_epi64(u, 32), p00);  // low 32 bits from p00
}

// Rounds kFirst .. 9 of Philox4x64-10 on kL x 8 lanes; kk0, kk1 are the keys of round
// kFirst.  kL independent vectors side by side: one vector's rounds are a chain of
// dependent multiplies (latency-bound), four of them fill the vector units (~25% faster).
template <int kFirst, int kL>
inline void philox_rounds_x8(__m512i* c0, __m512i* c1, __m512i* c2, __m512i* c3, __m512i kk0,
                             __m512i* kk1) {
  const __m512i a00 = _mm512_set1_epi64(int64_t(kPhiloxM0 & 0xffffffffu));
  const __m512i a01 = _mm512_set1_epi64(int64_t(kPhiloxM0 >> 32));
  const __m512i a10 = _mm512_set1_epi64(int64_t(kPhiloxM1 & 0xffffffffu));
  const __m512i a11 = _mm512_set1_epi64(int64_t(kPhiloxM1 >> 32));
#pragma GCC unroll 10
  for (int round = kFirst; round < 10; ++round) {
#pragma GCC unroll 4
    for (int l = 0; l < kL; ++l) {
      __m512i hi0, lo0, hi1, lo1;
      mulhilo64_x8(a00, a01, c0[l], hi0, lo0);
      mulhilo64_x8(a10, a11, c2[l], hi1, lo1);
      c0[l] = _mm512_ternarylogic_epi64(hi1, c1[l], kk0, 0x96);     // hi1 ^ c1 ^ k0
      c2[l] = _mm512_ternarylogic_epi64(hi0, c3[l], kk1[l], 0x96);  // hi0 ^ c3 ^ k1
      c1[l] = lo1;
      c3[l] = lo0;
      kk1[l] = _mm512_add_epi64(kk1[l], _mm512_set1_epi64(int64_t(kPhiloxW1)));
    }
    kk0 = _mm512_add_epi64(kk0, _mm512_set1_epi64(int64_t(kPhiloxW0)));
  }
}

// Lanes along the key (lane keys (k0, k1 of the lane)), one counter ctr for all of them:
// round 0 and the c0 half of round 1 do not depend on the lane.  philox_uniform_r01: that
// part, once, in scalar (s[4]); philox_key_lanes_r01: the rest of rounds 0-1 per lane, the
// state entering round 2 (15% of the multiplies saved).
inline void philox_uniform_r01(Philox4x64 ctr, uint64_t k0, uint64_t s[4]) {
  uint64_t hi0, lo0, hi1, lo1;
  mulhilo64(kPhiloxM0, ctr.v[0], hi0, lo0);  // round 0
  mulhilo64(kPhiloxM1, ctr.v[2], hi1, lo1);
  const uint64_t r0c0 = hi1 ^ ctr.v[1] ^ k0, r0c1 = lo1, r0c3 = lo0;
  s[0] = hi0 ^ ctr.v[3];  // round 0's c2 = s[0] ^ k1 (k1 of the lane)
  mulhilo64(kPhiloxM0, r0c0, hi0, lo0);  // round 1, c0 half
  s[1] = r0c1 ^ (k0 + kPhiloxW0);  // round 1's c0 = hi1 ^ s[1]
  s[2] = hi0 ^ r0c3;               // round 1's c2 = s[2] ^ (k1 + W1)
  s[3] = lo0;                      // round 1's c3
}

inline void philox_key_lanes_r01(const uint64_t s[4], __m512i k1l, __m512i& c0, __m512i& c1,
                                 __m512i& c2, __m512i& c3, __m512i& kk1) {
  const __m512i a10 = _mm512_set1_epi64(int64_t(kPhiloxM1 & 0xffffffffu));
  const __m512i a11 = _mm512_set1_epi64(int64_t(kPhiloxM1 >> 32));
  __m512i hi1, lo1;  // round 1, c2 half
  mulhilo64_x8(a10, a11, _mm512_xor_si512(_mm512_set1_epi64(int64_t(s[0])), k1l), hi1, lo1);
  c0 = _mm512_xor_si512(hi1, _mm512_set1_epi64(int64_t(s[1])));
  c1 = lo1;
  c2 = _mm512_xor_si512(_mm512_set1_epi64(int64_t(s[2])),
                        _mm512_add_epi64(k1l, _mm512_set1_epi64(int64_t(kPhiloxW1))));
  c3 = _mm512_set1_epi64(int64_t(s[3]));
  kk1 = _mm512_add_epi64(k1l, _mm512_set1_epi64(int64_t(2 * kPhiloxW1)));
}

inline void store_words_x8(const __m512i* w, int64_t i, int64_t n, uint64_t* const out[4]) {
  if (i + 8 <= n) {
    for (int e = 0; e < 4; ++e) _mm512_storeu_si512(out[e] + i, w[e]);
  } else if (i < n) {
    const __mmask8 m = __mmask8((1u << (n - i)) - 1u);
    for (int e = 0; e < 4; ++e) _mm512_mask_storeu_epi64(out[e] + i, m, w[e]);
  }
}

// kL x 8 lanes from lane i0: lanes along the counter (dc0 = 1) or along the key (dc0 = 0,
// s from philox_uniform_r01).
template <int kL>
inline void philox_lanes_x8(int64_t i0, int64_t n, Philox4x64 ctr, uint64_t k0, uint64_t k1,
                            uint64_t dc0, uint64_t dk1, const uint64_t* s, uint64_t* const out[4]) {
  const __m512i iota = _mm512_set_epi64(7, 6, 5, 4, 3, 2, 1, 0);
  __m512i c0[kL], c1[kL], c2[kL], c3[kL], kk1[kL];
#pragma GCC unroll 4
  for (int l = 0; l < kL; ++l) {
    const __m512i lane = _mm512_add_epi64(_mm512_set1_epi64(i0 + 8 * l), iota);
    const __m512i k1l = _mm512_add_epi64(_mm512_set1_epi64(int64_t(k1)),
                                         _mm512_mullo_epi64(lane, _mm512_set1_epi64(int64_t(dk1))));
    if (dc0 == 0) {
      philox_key_lanes_r01(s, k1l, c0[l], c1[l], c2[l], c3[l], kk1[l]);
    } else {
      c0[l] = _mm512_add_epi64(_mm512_set1_epi64(int64_t(ctr.v[0])),
                               _mm512_mullo_epi64(lane, _mm512_set1_epi64(int64_t(dc0))));
      c1[l] = _mm512_set1_epi64(int64_t(ctr.v[1]));
      c2[l] = _mm512_set1_epi64(int64_t(ctr.v[2]));
      c3[l] = _mm512_set1_epi64(int64_t(ctr.v[3]));
      kk1[l] = k1l;
    }
  }
  if (dc0 == 0)
    philox_rounds_x8<2, kL>(c0, c1, c2, c3, _mm512_set1_epi64(int64_t(k0 + 2 * kPhiloxW0)), kk1);
  else
    philox_rounds_x8<0, kL>(c0, c1, c2, c3, _mm512_set1_epi64(int64_t(k0)), kk1);
#pragma GCC unroll 4
  for (int l = 0; l < kL; ++l) {
    const __m512i w[4] = {c0[l], c1[l], c2[l], c3[l]};
    store_words_x8(w, i0 + 8 * l, n, out);
  }
}
}  // namespace detail

inline void philox4x64_10_lanes(int64_t n, Philox4x64 ctr, uint64_t k0, uint64_t k1, uint64_t dc0,
                                uint64_t dk1, uint64_t* const out[4]) {
  uint64_t s[4] = {0, 0, 0, 0};
  if (dc0 == 0) detail::philox_uniform_r01(ctr, k0, s);
  int64_t i0 = 0;
  for (; i0 + 32 <= n; i0 += 32) detail::philox_lanes_x8<4>(i0, n, ctr, k0, k1, dc0, dk1, s, out);
  for (; i0 < n; i0 += 8) detail::philox_lanes_x8<1>(i0, n, ctr, k0, k1, dc0, dk1, s, out);
}

// Eight lanes along the key (k0, k1 + l), l < 8, for the counters (c0 + m, c1, c2, c3),
// m < nblk: word e of lane l and counter m to out[(4 m + e) 8 + l] (the Bose gas's noise of
// eight configurations, lane-interleaved: entry j of configuration l at j 8 + l).
inline void philox4x64_10_key8(int64_t nblk, Philox4x64 ctr, uint64_t k0, uint64_t k1,
                               uint64_t* out) {
  const __m512i k1l = _mm512_add_epi64(_mm512_set1_epi64(int64_t(k1)),
                                       _mm512_set_epi64(7, 6, 5, 4, 3, 2, 1, 0));
  const __m512i k0r2 = _mm512_set1_epi64(int64_t(k0 + 2 * kPhiloxW0));
  int64_t m0 = 0;
  for (; m0 + 4 <= nblk; m0 += 4) {
    __m512i c0[4], c1[4], c2[4], c3[4], kk1[4];
    for (int l = 0; l < 4; ++l) {
      uint64_t s[4];
      detail::philox_uniform_r01(Philox4x64{{ctr.v[0] + uint64_t(m0 + l), ctr.v[1], ctr.v[2], ctr.v[3]}}, k0, s);
      detail::philox_key_lanes_r01(s, k1l, c0[l], c1[l], c2[l], c3[l], kk1[l]);
    }
    detail::philox_rounds_x8<2, 4>(c0, c1, c2, c3, k0r2, kk1);
    for (int l = 0; l < 4; ++l) {
      uint64_t* o = out + 32 * (m0 + l);
      _mm512_storeu_si512(o, c0[l]);
      _mm512_storeu_si512(o + 8, c1[l]);
      _mm512_storeu_si512(o + 16, c2[l]);
      _mm512_storeu_si512(o + 24, c3[l]);
    }
  }
  for (; m0 < nblk; ++m0) {
    __m512i c0, c1, c2, c3, kk1;
    uint64_t s[4];
    detail::philox_uniform_r01(Philox4x64{{ctr.v[0] + uint64_t(m0), ctr.v[1], ctr.v[2], ctr.v[3]}}, k0, s);
    detail::philox_key_lanes_r01(s, k1l, c0, c1, c2, c3, kk1);
    detail::philox_rounds_x8<2, 1>(&c0, &c1, &c2, &c3, k0r2, &kk1);
    uint64_t* o = out + 32 * m0;
    _mm512_storeu_si512(o, c0);
    _mm512_storeu_si512(o + 8, c1);
    _mm512_storeu_si512(o + 16, c2);
    _mm512_storeu_si512(o + 24, c3);
  }
}
#else
inline void philox4x64_10_lanes(int64_t n, Philox4x64 ctr, uint64_t k0, uint64_t k1, uint64_t dc0,
                                uint64_t dk1, uint64_t* const out[4]) {
  uint64_t *o0 = out[0], *o1 = out[1], *o2 = out[2], *o3 = out[3];
#if defined(_OPENMP)
#pragma omp simd
#endif
  for (int64_t i = 0; i < n; ++i) {
    const Philox4x64 w = philox4x64_10(
        Philox4x64{{ctr.v[0] + uint64_t(i) * dc0, ctr.v[1], ctr.v[2], ctr.v[3]}}, k0,
        k1 + uint64_t(i) * dk1);
    o0[i] = w.v[0];
    o1[i] = w.v[1];
    o2[i] = w.v[2];
    o3[i] = w.v[3];
  }
}

inline void philox4x64_10_key8(int64_t nblk, Philox4x64 ctr, uint64_t k0, uint64_t k1,
                               uint64_t* out) {
  for (int64_t m = 0; m < nblk; ++m) {
#if defined(_OPENMP)
#pragma omp simd
#endif
    for (int l = 0; l < 8; ++l) {
      const Philox4x64 w = philox4x64_10(
          Philox4x64{{ctr.v[0] + uint64_t(m), ctr.v[1], ctr.v[2], ctr.v[3]}}, k0, k1 + uint64_t(l));
      for (int e = 0; e < 4; ++e) out[(4 * m + e) * 8 + l] = w.v[e];
    }
  }
}
#endif

// Uniform double in the open interval (0, 1): the top 53 bits, centred in
// their bin, so log(u) in Box-Muller is always finite.
QCD_INLINE double uniform_open01(uint64_t w) {
  return (static_cast<double>(w >> 11) + 0.5) * 0x1.0p-53;
}

// ---------------------------------------------------------------------------
// log and sincos for Box-Muller, written out here rather than taken from libm:
// host libm and CUDA's device math differ in the last ulp, and libm calls do
// not vectorise.  These are branch-free polynomials evaluated by Horner's rule
// with explicit fused multiply-adds (qcdhpc::fmadd: one rounding, the same on
// host and device; the compilers' own contraction is off), so CPU and GPU
// produce the same bits and the CPU loop vectorises.  Accuracy
// ~1-2 ulp against correctly rounded results (tests/test_philox.py compares
// with numpy's Philox + libm).

QCD_INLINE uint64_t double_bits(double x) {
#if defined(__CUDA_ARCH__)
  return static_cast<uint64_t>(__double_as_longlong(x));
#else
  return __builtin_bit_cast(uint64_t, x);
#endif
}

QCD_INLINE double bits_double(uint64_t b) {
#if defined(__CUDA_ARCH__)
  return __longlong_as_double(static_cast<long long>(b));
#else
  return __builtin_bit_cast(double, b);
#endif
}

// Natural log of a positive normal double (what Box-Muller and the Metropolis
// test, mc/metropolis.h, use: the same bits on host and device).  x = m 2^e with m in [sqrt(1/2),
// sqrt(2)); log m = 2 atanh(s) = 2 (s + s^3/3 + s^5/5 + ...), s = (m-1)/(m+1),
// |s| <= 0.1716, so eleven terms reach 1e-17 relative.
QCD_INLINE double log_positive(double x) {
  const uint64_t bits = double_bits(x);
  int64_t e = int64_t((bits >> 52) & 0x7ff) - 1023;
  double m = bits_double((bits & 0x000fffffffffffffULL) | 0x3ff0000000000000ULL);  // [1, 2)
  const bool big = m > 1.4142135623730951;
  m = big ? 0.5 * m : m;
  e = big ? e + 1 : e;
  const double s = (m - 1.0) / (m + 1.0);
  const double z = s * s;
  double p = 1.0 / 21;
  p = fmadd(p, z, 1.0 / 19);
  p = fmadd(p, z, 1.0 / 17);
  p = fmadd(p, z, 1.0 / 15);
  p = fmadd(p, z, 1.0 / 13);
  p = fmadd(p, z, 1.0 / 11);
  p = fmadd(p, z, 1.0 / 9);
  p = fmadd(p, z, 1.0 / 7);
  p = fmadd(p, z, 1.0 / 5);
  p = fmadd(p, z, 1.0 / 3);
  const double log_m = fmadd(2.0 * s, z * p, 2.0 * s);
  // ln 2 split so that e * kLn2Hi is exact for |e| < 2^11.
  constexpr double kLn2Hi = 6.93147180369123816490e-01, kLn2Lo = 1.90821492927058770002e-10;
  const double de = double(e);
  return de * kLn2Hi + fmadd(de, kLn2Lo, log_m);
}

// sin and cos of 2 pi u for u in [0, 1].  Quarter turns are exact:
// u = k/4 + r with |r| <= 1/8 (exact subtraction), then Taylor series in
// x = 2 pi r, |x| <= pi/4, to x^17 / x^18 (truncation < 1e-19), and the
// quadrant k mod 4 by exact sign/swap selects.
QCD_INLINE void sincos_2pi(double u, double& s_out, double& c_out) {
  const double kq = double(int64_t(4.0 * u + 0.5));
  const double r = u - 0.25 * kq;
  const double x = r * 6.283185307179586476925286766559;
  const double z = x * x;
  double sp = -1.0 / 355687428096000.0;  // -1/17!
  sp = fmadd(sp, z, 1.0 / 1307674368000.0);   // 1/15!
  sp = fmadd(sp, z, -1.0 / 6227020800.0);     // -1/13!
  sp = fmadd(sp, z, 1.0 / 39916800.0);        // 1/11!
  sp = fmadd(sp, z, -1.0 / 362880.0);         // -1/9!
  sp = fmadd(sp, z, 1.0 / 5040.0);            // 1/7!
  sp = fmadd(sp, z, -1.0 / 120.0);            // -1/5!
  sp = fmadd(sp, z, 1.0 / 6.0);               // 1/3! (subtracted below)
  const double sin_x = fmadd(-x, z * sp, x);
  double cp = 1.0 / 6402373705728000.0;  // 1/18!
  cp = fmadd(cp, z, -1.0 / 20922789888000.0); // -1/16!
  cp = fmadd(cp, z, 1.0 / 87178291200.0);     // 1/14!
  cp = fmadd(cp, z, -1.0 / 479001600.0);      // -1/12!
  cp = fmadd(cp, z, 1.0 / 3628800.0);         // 1/10!
  cp = fmadd(cp, z, -1.0 / 40320.0);          // -1/8!
  cp = fmadd(cp, z, 1.0 / 720.0);             // 1/6!
  cp = fmadd(cp, z, -1.0 / 24.0);             // -1/4!
  cp = fmadd(cp, z, 0.5);                     // 1/2! (subtracted below)
  const double cos_x = fmadd(-z, cp, 1.0);
  const int64_t q = int64_t(kq) & 3;
  const double a = (q & 1) ? cos_x : sin_x;  // theta = q pi/2 + x
  const double b = (q & 1) ? sin_x : cos_x;
  s_out = (q >= 2) ? -a : a;
  c_out = (q == 1 || q == 2) ? -b : b;
}

// Box-Muller: two open-interval uniforms -> two independent N(0,1) draws,
// r = sqrt(-2 ln u_a), theta = 2 pi u_b:  (r cos theta, r sin theta).
QCD_INLINE void box_muller(uint64_t wa, uint64_t wb, double& ga, double& gb) {
  const double r = sqrt(-2.0 * log_positive(uniform_open01(wa)));
  double s, c;
  sincos_2pi(uniform_open01(wb), s, c);
  ga = r * c;
  gb = r * s;
}

}  // namespace qcdhpc
