// Lattice phi^4 theory in two dimensions: the per-site math, host+device.
//
// Dimensionless action (hopping-parameter form, seeds' eq. for S_E):
//   S = sum_x [ -2 kappa sum_mu phi(x) phi(x+mu) + (1 - 2 lambda) phi(x)^2 + lambda phi(x)^4 ]
// with periodic boundaries.  The force is F(x) = -dS/dphi(x):
//   F(x) = 2 kappa sum_mu [phi(x+mu) + phi(x-mu)] - 2 (1 - 2 lambda) phi(x) - 4 lambda phi(x)^3.
// This header is the one place these formulas live; the CPU and CUDA drivers
// reach them through the stages (phi4/hmc_stages.h) and the CPU lane blocks
// (csrc/cpu/phi4_lanes.h).  Pure QCD_HD math: no launches, no memory.
#pragma once

#include "../core/config.h"

namespace qcdhpc {
namespace phi4 {

// A 2D periodic lattice of L0 x L1 sites, row-major: site = x0 * L1 + x1.
struct Lattice {
  int64_t L0, L1;
  QCD_INLINE int64_t volume() const { return L0 * L1; }
};

// The force's couplings times a step size h, in the field's precision
// (float32 runs do all MD arithmetic in float32):
//   h F = nbr * sum_nbr + f (lin + cub f^2),
//   nbr = 2 kappa h,  lin = -2 (1 - 2 lambda) h,  cub = -4 lambda h.
// Folding h into the couplings (h = 1 for the force itself) saves a multiply
// per site and kick.
template <class Real>
struct ForceCoeffs {
  Real nbr, lin, cub;
  QCD_HD ForceCoeffs(double kappa, double lambda, double h = 1.0)
      : nbr(Real(2.0 * kappa * h)), lin(Real(-2.0 * (1.0 - 2.0 * lambda) * h)), cub(Real(-4.0 * lambda * h)) {}
};

QCD_INLINE int64_t next(int64_t x, int64_t L) { return x + 1 == L ? 0 : x + 1; }
QCD_INLINE int64_t prev(int64_t x, int64_t L) { return x == 0 ? L - 1 : x - 1; }

// The momentum after a kick, p + h F, from the site value f and the sum of its
// 2d = 4 neighbours (c = ForceCoeffs(kappa, lambda, h)):
//   p + h F = p + 2 kappa h nbr - 2 (1 - 2 lambda) h f - 4 lambda h f^3,
// evaluated as three fused multiply-adds, Horner in f^2.
template <class Real>
QCD_INLINE Real kicked_momentum(Real p, Real f, Real nbr, const ForceCoeffs<Real>& c) {
  return fmadd(c.nbr, nbr, fmadd(f, fmadd(c.cub, f * f, c.lin), p));
}

// The drift phi + h p.
template <class Real>
QCD_INLINE Real drifted_field(Real f, Real p, Real h) {
  return fmadd(h, p, f);
}

// The sum of the four neighbours of site (x0, x1) of one chain, given its rows
// x0-1 (up), x0 (mid), x0+1 (down) and the wrapped column neighbours
// x1m = x1-1, x1p = x1+1, in the order (up + down) + (left + right).  Callers
// pass rows and columns so that interior sites need no modular arithmetic.
template <class Real>
QCD_INLINE Real neighbour_sum(const Real* up, const Real* mid, const Real* down, int64_t x1m,
                              int64_t x1, int64_t x1p) {
  return (up[x1] + down[x1]) + (mid[x1m] + mid[x1p]);
}

// The action density with each link counted once (forward links only), so
// that S = sum_x s(x); in double whatever the field precision, because
// Delta H is a small difference of large sums.  fwd0, fwd1: phi(x+0^), phi(x+1^).
QCD_INLINE double action_density(double f, double fwd0, double fwd1, double kappa, double lambda) {
  const double f2 = f * f;
  return -2.0 * kappa * f * (fwd0 + fwd1) + (1.0 - 2.0 * lambda) * f2 + lambda * f2 * f2;
}

// The HMC energy density p(x)^2/2 + s(x) of a site (kWithMomentum) or the
// action density s(x) alone, in double.  Summed over a row in the fixed order
// of core/reductions.h (ordered_sum8) by every driver.
template <bool kWithMomentum, class Real>
QCD_INLINE double energy_density(Real f, Real fwd0, Real fwd1, Real p, double kappa, double lambda) {
  double e = action_density(f, fwd0, fwd1, kappa, lambda);
  if (kWithMomentum) e += 0.5 * double(p) * double(p);
  return e;
}

}  // namespace phi4
}  // namespace qcdhpc
