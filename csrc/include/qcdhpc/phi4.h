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

// F(x) = -dS/dphi(x) at site (x0, x1) of the chain whose field starts at `phi`.
template <class Real>
QCD_INLINE Real force_at(const Real* phi, const Lattice& lat, int64_t x0, int64_t x1,
                         const Couplings<Real>& c) {
  const Real f = phi[x0 * lat.L1 + x1];
  const Real nbr = phi[next(x0, lat.L0) * lat.L1 + x1] + phi[prev(x0, lat.L0) * lat.L1 + x1] +
                   phi[x0 * lat.L1 + next(x1, lat.L1)] + phi[x0 * lat.L1 + prev(x1, lat.L1)];
  return c.two_kappa * nbr - Real(2) * c.mass_term * f - Real(4) * c.lam * f * f * f;
}

// The action density s(x) with each link counted once (forward links only),
// so that S = sum_x s(x).  Evaluated in double whatever the field precision:
// Delta H is a small difference of large sums and must not lose digits to it.
template <class Real>
QCD_INLINE double action_at(const Real* phi, const Lattice& lat, int64_t x0, int64_t x1,
                            double kappa, double lambda) {
  const double f = phi[x0 * lat.L1 + x1];
  const double fwd = double(phi[next(x0, lat.L0) * lat.L1 + x1]) +
                     double(phi[x0 * lat.L1 + next(x1, lat.L1)]);
  const double f2 = f * f;
  return -2.0 * kappa * f * fwd + (1.0 - 2.0 * lambda) * f2 + lambda * f2 * f2;
}

}  // namespace phi4
}  // namespace qcdhpc
