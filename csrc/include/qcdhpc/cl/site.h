// Complex Langevin (CL): the per-walker and per-site math, host+device.
// Pure QCD_HD functions (no launches, no memory); the stages that loop over
// walkers, sites and steps are cl/langevin_stages.h.  Conventions (actions,
// drifts, observables): qcdhpc/cl/models.py, equations (Q1)-(Q3), (B1)-(B5);
// those numpy formulas are the reference the tests compare these with.
//
// Langevin update of a complexified variable z with drift K = -dS/dz
// (Parisi 1983; Klauder 1983), step eps, noise eta_x, eta_y ~ N(0, 1):
//   Euler-Maruyama   z' = z + eps K(z) + sqrt(2 eps N_x) eta_x + i sqrt(2 eps N_y) eta_y
//   stochastic Heun  z~ = z + eps K(z) + noise,  z' = z + (eps/2)(K(z) + K(z~)) + noise
//                    (the same noise in predictor and corrector: second order in eps
//                    for the drift, weak order 2 for additive noise)
// with N_x = 1 + N_y; real noise is N_y = 0 (eta_y absent: Im z gets no noise).
// Adaptive step (Aarts, James, Seiler, Stamatescu, PLB 687 (2010) 154, eq. (8)):
//   eps_n = min(eps_bar, eps_bar Kbar / K_max(n)),  K_max = max over degrees of freedom |K|.
#pragma once

#include <cmath>

#include "../core/complex.h"
#include "../core/config.h"
#include "../core/philox.h"
#include "../mc/streams.h"

namespace qcdhpc {
namespace cl {

using C128 = Complex<double>;

enum Scheme : int { kEuler = 0, kHeun = 1 };

// A quiet NaN (records of runaway walkers), the same bits everywhere.
QCD_INLINE double quiet_nan() { return bits_double(0x7ff8000000000000ULL); }
QCD_INLINE C128 complex_nan() { return C128{quiet_nan(), quiet_nan()}; }

// max(m, v) that propagates NaN: the result is NaN iff any operand seen was, and
// otherwise the exact maximum -- so it does not depend on the order of a reduction
// (vectorised on the CPU, parallel on the GPU: the same bits).
QCD_INLINE double max_nan(double m, double v) { return ((v > m) | (v != v)) ? v : m; }

// The step parameters every walker / field of a call shares.
struct StepParams {
  double dt;      // eps_bar: the fixed step, or the largest adaptive one
  double two_nx;  // 2 N_x = 2 (1 + N_y)
  double two_ny;  // 2 N_y (0: real noise)
  double bound2;  // runaway bound squared: a state with |z|^2 > bound2 (or NaN) has run away
  double sx, sy;  // noise_scale(dt, two_nx), noise_scale(dt, two_ny): the fixed-step scales
};

// c ? a : b by bit masks: the same value as the conditional, but both operands are
// always computed, so a compiler cannot sink their arithmetic into a branch (which,
// under the default -ftrapping-math, would keep a CPU loop over walkers scalar).
QCD_INLINE double select(bool c, double a, double b) {
  const uint64_t m = uint64_t(0) - uint64_t(c);
  return bits_double((double_bits(a) & m) | (double_bits(b) & ~m));
}

// sqrt(2 eps N): the noise amplitude of a step (sqrt is correctly rounded on both backends).
QCD_INLINE double noise_scale(double eps, double two_n) { return sqrt(eps * two_n); }

// eps = min(eps_bar, eps_bar Kbar / K_max), as  K_max > Kbar ? (eps_bar Kbar) / K_max : eps_bar.
QCD_INLINE double adaptive_step(double dt, double kbar, double kmax) {
  return select(kmax > kbar, dt * kbar / kmax, dt);
}

// The Bose-gas step control of one configuration before its update (the CPU lane-block driver
// and the generic stage, CPU and CUDA): K_max^2 = NaN (a site ran away) freezes it for good; a
// live configuration gets its step (adaptive: eps_bar Kbar / K_max), noise scales and Langevin
// time. km (NaN when frozen) and e (0 when frozen) are what the records hold.
template <bool kComplexNoise>
QCD_INLINE bool bose_step_control(uint8_t& frozen, double kmax2, bool adaptive, double kbar,
                                  const StepParams& p, double& km, double& e, double& sx,
                                  double& sy, double& t) {
  const bool was = frozen != 0, bad = !was && kmax2 != kmax2;
  if (bad) frozen = 1;
  const bool live = !was && !bad;
  km = live ? sqrt(kmax2) : quiet_nan();
  e = !live ? 0.0 : adaptive ? adaptive_step(p.dt, kbar, km) : p.dt;
  sx = adaptive ? noise_scale(e, p.two_nx) : p.sx;
  sy = kComplexNoise ? (adaptive ? noise_scale(e, p.two_ny) : p.sy) : 0.0;
  if (live) t = t + e;
  return live;
}

// A state that has not run away: |z|^2 <= bound2 (false for NaN and inf).
QCD_INLINE bool state_ok(C128 z, double bound2) { return norm2(z) <= bound2; }

// Euler step / Heun predictor:  (z + eps K) + (sx eta_x + i sy eta_y).
template <bool kComplexNoise>
QCD_INLINE C128 euler_update(C128 z, C128 k, double eps, double sx, double sy, double gx, double gy) {
  C128 r{z.re + eps * k.re, z.im + eps * k.im};
  r.re = r.re + sx * gx;
  if (kComplexNoise) r.im = r.im + sy * gy;
  return r;
}

// Heun corrector:  (z + (eps/2)(K + K~)) + noise, with the predictor's noise.
template <bool kComplexNoise>
QCD_INLINE C128 heun_update(C128 z, C128 k, C128 kt, double eps, double sx, double sy, double gx,
                            double gy) {
  const double h = 0.5 * eps;
  const C128 s = k + kt;
  C128 r{z.re + h * s.re, z.im + h * s.im};
  r.re = r.re + sx * gx;
  if (kComplexNoise) r.im = r.im + sy * gy;
  return r;
}

// ---------------------------------------------------------------------------
// Quartic model (models.py, Q1-Q2): S = sigma z^2/2 + lam z^4/4,
//   K(z) = -dS/dz = -sigma z - lam z^3 = -(sigma + lam z^2) z.
struct QuarticCoeffs {
  C128 sigma;
  double lam;
};

QCD_INLINE C128 quartic_drift(C128 z, const QuarticCoeffs& c) {
  const C128 z2 = z * z;
  const C128 w{c.sigma.re + c.lam * z2.re, c.sigma.im + c.lam * z2.im};
  return -(w * z);
}

// Noise of quartic walkers (numerics version 2).  Walker `walker`'s normals are one
// stream g_0, g_1, g_2, ...; step `step` uses the n entries g_{n step + i}, i < n
// (n = 1, real noise: eta_x; n = 2, complex noise: eta_x, eta_y).  g_j is entry
// j mod 4 of mc::normal4 with key (seed, walker) and counter
// (0, j div 4, kRngLangevinWalker, 0): one Philox4x64-10 block and two Box-Muller
// pairs per four normals, i.e. per four steps of real noise.  (Version 1 drew one
// block per step, counter (0, step, kRngLangevin, 0), and used a single normal of it
// for real noise: the Philox block alone then cost more than the rest of the step,
// docs/benchmarks.md.)  qcdhpc.kernels.cl.quartic_noise returns these numbers.
template <bool kComplexNoise>
QCD_INLINE uint64_t walker_noise_index(uint64_t step) {
  return (kComplexNoise ? 2u : 1u) * step;
}

// The four normals g_{4 blk} .. g_{4 blk + 3} of a walker's stream.
QCD_INLINE void walker_normals4(uint64_t seed, uint64_t walker, uint64_t blk, double& g0, double& g1,
                                double& g2, double& g3) {
  mc::normal4(seed, walker, blk, mc::kRngLangevinWalker, 0, g0, g1, g2, g3);
}

// Entry q (0..3) of four values, by selects (no indexed register array on the GPU).
QCD_INLINE double pick4(uint64_t q, double g0, double g1, double g2, double g3) {
  return q == 0 ? g0 : q == 1 ? g1 : q == 2 ? g2 : g3;
}

// One Langevin step of one quartic walker, in registers, given its noise (gx, gy:
// entries n step, n step + 1 of its noise stream, walker_noise_index):
//  1. runaway check of the state before the update (frozen |= !state_ok);
//  2. eps (fixed, or adaptive from |K(z)| and the walker's kbar);
//  3. what a record of this step holds (rec, wrec; the caller stores it on record steps):
//     z and eps, or NaN and 0 for a frozen walker;
//  4. the update (Euler or Heun) and t += eps, unless frozen.
// frozen is 0 or 1 (int64_t: one lane width with the doubles in CPU vector loops); the
// body is branch-free, so a CPU loop over walkers vectorises.
template <int kScheme, bool kAdaptive, bool kComplexNoise>
QCD_INLINE void quartic_walker_step(double& zr, double& zi, double& t, int64_t& frozen, double kbar,
                                    const QuarticCoeffs& c, const StepParams& p, double gx,
                                    double gy, double& rec_re, double& rec_im, double& wrec) {
  const C128 z{zr, zi};
  frozen = frozen | (state_ok(z, p.bound2) ? 0 : 1);
  const bool live = frozen == 0;
  const C128 k = quartic_drift(z, c);
  const double eps = kAdaptive ? adaptive_step(p.dt, kbar, sqrt(norm2(k))) : p.dt;
  rec_re = select(live, z.re, quiet_nan());
  rec_im = select(live, z.im, quiet_nan());
  wrec = select(live, eps, 0.0);
  const double sx = kAdaptive ? noise_scale(eps, p.two_nx) : p.sx;
  const double sy = kComplexNoise ? (kAdaptive ? noise_scale(eps, p.two_ny) : p.sy) : 0.0;
  C128 zn = euler_update<kComplexNoise>(z, k, eps, sx, sy, gx, gy);
  if (kScheme == kHeun) zn = heun_update<kComplexNoise>(z, k, quartic_drift(zn, c), eps, sx, sy, gx, gy);
  zr = select(live, zn.re, zr);
  zi = select(live, zn.im, zi);
  t = select(live, t + eps, t);
}

// ---------------------------------------------------------------------------
// Relativistic Bose gas at chemical potential mu (Aarts, PRL 102 (2009) 131601;
// models.py, B1-B5) on a periodic N^D lattice, D = 1..4, axis 0 = Euclidean
// time (carries mu).  A configuration is two complexified real fields phi_1,
// phi_2 of V = N^D sites each, row-major, site x = sum_nu x_nu N^(D-1-nu).
struct BoseCoeffs {
  double mass;  // 2D + m^2
  double lam;
  double ch, sh;  // cosh mu, sinh mu
};

// V = N^D.
QCD_INLINE int64_t lattice_volume(int64_t N, int D) {
  int64_t V = 1;
  for (int nu = 0; nu < D; ++nu) V *= N;
  return V;
}

// Neighbours of site x: nb[2 nu] = x + nu^, nb[2 nu + 1] = x - nu^ (periodic).
template <int D>
QCD_INLINE void bose_neighbours(int64_t x, int64_t N, int32_t* nb) {
  int64_t stride = 1;
  for (int nu = D - 1; nu >= 0; --nu) {
    const int64_t c = (x / stride) % N;
    nb[2 * nu] = int32_t(c == N - 1 ? x - (N - 1) * stride : x + stride);
    nb[2 * nu + 1] = int32_t(c == 0 ? x + (N - 1) * stride : x - stride);
    stride *= N;
  }
}

// The drift (B3) at site x:
//   K_a(x) = -(2D + m^2 + lam phi_b phi_b) phi_a + sum_{nu>=1} (phi_a(x+nu^) + phi_a(x-nu^))
//            + cosh mu (phi_a(x+0^) + phi_a(x-0^)) - i sinh mu eps_ab (phi_b(x+0^) - phi_b(x-0^)),
// eps_12 = -eps_21 = 1, i.e. K_1 gets -i sinh mu (phi_2(x+0^) - phi_2(x-0^)) and
// K_2 gets +i sinh mu (phi_1(x+0^) - phi_1(x-0^)).  f1, f2: the two fields of one
// configuration; nb: the neighbour table (2D entries per site).  Operations in
// the order of models.py's BoseGas.drift.
// The fields as functions of the site: f1(i), f2(i) return phi_1(i), phi_2(i) -- plain
// arrays (PtrField, what the stages and the GPU use) or the CPU's lane blocks of eight
// configurations (csrc/cpu/cl_cpu.cpp): the same operations either way.
struct PtrField {
  const C128* p;
  QCD_INLINE C128 operator()(int64_t i) const { return p[i]; }
};

template <int D, class F1, class F2>
QCD_INLINE void bose_drift_of(F1 f1, F2 f2, const int32_t* nb, int64_t x,
                              const BoseCoeffs& c, C128& k1, C128& k2) {
  const int32_t* n = nb + x * (2 * D);
  const C128 p1 = f1(x), p2 = f2(x);
  const C128 rho2 = p1 * p1 + p2 * p2;
  const C128 w{c.mass + c.lam * rho2.re, c.lam * rho2.im};
  C128 a = -(w * p1), b = -(w * p2);
#if defined(__CUDACC__)
#pragma unroll
#else
#pragma GCC unroll 4
#endif
  for (int nu = 1; nu < D; ++nu) {
    a = (a + f1(n[2 * nu])) + f1(n[2 * nu + 1]);
    b = (b + f2(n[2 * nu])) + f2(n[2 * nu + 1]);
  }
  const C128 u1 = f1(n[0]), d1 = f1(n[1]), u2 = f2(n[0]), d2 = f2(n[1]);
  k1 = (a + c.ch * (u1 + d1)) - times_i(c.sh, u2 - d2);
  k2 = (b + c.ch * (u2 + d2)) + times_i(c.sh, u1 - d1);
}

template <int D>
QCD_INLINE void bose_drift(const C128* f1, const C128* f2, const int32_t* nb, int64_t x,
                           const BoseCoeffs& c, C128& k1, C128& k2) {
  bose_drift_of<D>(PtrField{f1}, PtrField{f2}, nb, x, c, k1, k2);
}

// The max over the two fields of |K_a(x)|^2 where the state at x has not run
// away (max_a |phi_a(x)|^2 <= bound2), NaN where it has: the per-site value
// whose maximum over a configuration gives both K_max^2 and the runaway test.
// Branch-free (selects, no short circuit), so the CPU's lane loops vectorise; the same value.
QCD_INLINE double bose_site_value(C128 p1, C128 p2, C128 k1, C128 k2, double bound2) {
  const bool ok = state_ok(p1, bound2) & state_ok(p2, bound2);
  const double n1 = norm2(k1), n2 = norm2(k2);
  return select(ok, select(n2 > n1, n2, n1), quiet_nan());
}

// Density term at x (B4): sinh mu (phi_a phi_a(x+0^)) - i cosh mu eps_ab phi_a phi_b(x+0^),
// n = (1/V) sum_x of it.  q_a = phi_a(x+0^).
QCD_INLINE C128 bose_density_term(C128 p1, C128 p2, C128 q1, C128 q2, const BoseCoeffs& c) {
  return c.sh * (p1 * q1 + p2 * q2) - times_i(c.ch, p1 * q2 - p2 * q1);
}

// phi* phi term at x (B5): phi_a phi_a / 2 (holomorphic), <phi* phi> = (1/V) sum_x of it.
QCD_INLINE C128 bose_phi2_term(C128 p1, C128 p2) { return 0.5 * (p1 * p1 + p2 * p2); }

// Noise of configuration `field` at step `step`: 2V entries (real noise) or 4V
// (complex), eta_x of (a, x) at entry a V + x and eta_y at 2V + a V + x; entry
// j is word j mod 4 of the Philox block with key (seed, field) and counter
// (j div 4, step, kRngLangevin, 0) -- mc::fill_normal's layout.
QCD_INLINE int64_t bose_noise_len(int64_t V, bool complex_noise) { return (complex_noise ? 4 : 2) * V; }

}  // namespace cl
}  // namespace qcdhpc
