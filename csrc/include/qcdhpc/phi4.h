// Lattice phi^4 theory in two dimensions: the per-site math, host+device.
//
// Dimensionless action (hopping-parameter form, seeds' eq. for S_E):
//   S = sum_x [ -2 kappa sum_mu phi(x) phi(x+mu) + (1 - 2 lambda) phi(x)^2 + lambda phi(x)^4 ]
// with periodic boundaries.  The force is F(x) = -dS/dphi(x):
//   F(x) = 2 kappa sum_mu [phi(x+mu) + phi(x-mu)] - 2 (1 - 2 lambda) phi(x) - 4 lambda phi(x)^3.
// This header is the one place these formulas live; the CPU and CUDA drivers
// and the Python bindings all reach them through phi4_hmc_impl.h.
#pragma once

#include "config.h"

namespace qcdhpc {
namespace phi4 {

// A 2D periodic lattice of L0 x L1 sites, row-major: site = x0 * L1 + x1.
struct Lattice {
  int64_t L0, L1;
  QCD_INLINE int64_t volume() const { return L0 * L1; }
};

// Action couplings pre-multiplied into the factors the force uses, in the
// field's precision (float32 runs do all MD arithmetic in float32).
template <class Real>
struct Couplings {
  Real two_kappa;      // 2 kappa
  Real mass_term;      // 1 - 2 lambda
  Real lam;            // lambda
  QCD_HD Couplings(double kappa, double lambda)
      : two_kappa(Real(2.0 * kappa)), mass_term(Real(1.0 - 2.0 * lambda)), lam(Real(lambda)) {}
};

QCD_INLINE int64_t next(int64_t x, int64_t L) { return x + 1 == L ? 0 : x + 1; }
QCD_INLINE int64_t prev(int64_t x, int64_t L) { return x == 0 ? L - 1 : x - 1; }

// The local force from the site value f and the sum of its 2d = 4 neighbours:
//   F = 2 kappa * nbr - 2 (1 - 2 lambda) f - 4 lambda f^3.
template <class Real>
QCD_INLINE Real force_formula(Real f, Real nbr, const Couplings<Real>& c) {
  return c.two_kappa * nbr - Real(2) * c.mass_term * f - Real(4) * c.lam * f * f * f;
}

// F at site (x0, x1) of one chain, given its rows x0-1 (up), x0 (mid), x0+1
// (down) and the wrapped column neighbours x1m = x1-1, x1p = x1+1.  Callers
// pass rows and columns so that interior sites need no modular arithmetic.
template <class Real>
QCD_INLINE Real force_at(const Real* up, const Real* mid, const Real* down, int64_t x1m,
                         int64_t x1, int64_t x1p, const Couplings<Real>& c) {
  return force_formula(mid[x1], (up[x1] + down[x1]) + (mid[x1m] + mid[x1p]), c);
}

// The action density with each link counted once (forward links only), so
// that S = sum_x s(x); in double whatever the field precision, because
// Delta H is a small difference of large sums.  fwd0, fwd1: phi(x+0^), phi(x+1^).
QCD_INLINE double action_density(double f, double fwd0, double fwd1, double kappa, double lambda) {
  const double f2 = f * f;
  return -2.0 * kappa * f * (fwd0 + fwd1) + (1.0 - 2.0 * lambda) * f2 + lambda * f2 * f2;
}

// sum over one row of s(x) (+ p(x)^2/2 if mom is given), in double.
// Eight interleaved partial sums combined in a fixed tree: the summation order
// is part of the definition, so a vectorising CPU compiler and a GPU thread
// add in exactly the same order and get the same bits.
template <class Real, bool kWithMomentum>
QCD_INLINE double row_energy(const Real* mid, const Real* down, const Real* mom, int64_t L1,
                             double kappa, double lambda) {
  constexpr int kLanes = 8;
  double acc[kLanes] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t x = 0;
  for (; x + kLanes <= L1 - 1; x += kLanes) {
    for (int k = 0; k < kLanes; ++k) {
      double e = action_density(mid[x + k], down[x + k], mid[x + k + 1], kappa, lambda);
      if (kWithMomentum) e += 0.5 * double(mom[x + k]) * double(mom[x + k]);
      acc[k] += e;
    }
  }
  for (; x < L1; ++x) {  // remainder, and the last site whose forward neighbour wraps
    double e = action_density(mid[x], down[x], mid[x + 1 == L1 ? 0 : x + 1], kappa, lambda);
    if (kWithMomentum) e += 0.5 * double(mom[x]) * double(mom[x]);
    acc[x % kLanes] += e;
  }
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

}  // namespace phi4
}  // namespace qcdhpc
