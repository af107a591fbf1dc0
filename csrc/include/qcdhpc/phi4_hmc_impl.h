// phi^4 HMC: the sequence of parallel stages that makes a trajectory, written
// once.  Each including translation unit defines QCDHPC_BACKEND (cpu | cuda)
// and gets these functions in namespace qcdhpc::QCDHPC_BACKEND, built on its
// own parallel_for and Buffer.  Per-site math: phi4.h; random numbers: philox.h.
//
// Memory layout: B independent chains, each a row-major L0 x L1 field, chain b
// at offset b*V.  All pointers are in the backend's memory space.
#ifndef QCDHPC_BACKEND
#error "define QCDHPC_BACKEND (cpu or cuda) before including phi4_hmc_impl.h"
#endif

#include "parallel_for.h"
#include "phi4.h"
#include "philox.h"

namespace qcdhpc {
namespace QCDHPC_BACKEND {

using phi4::Couplings;
using phi4::Lattice;

enum Integrator : int { kLeapfrog = 0, kOmelyan = 1 };

// Omelyan-Mryglod-Folk 2MN parameter, Comput. Phys. Commun. 151 (2003) 272,
// chosen to minimise the leading error coefficient of the second-order scheme.
constexpr double kOmelyanLambda = 0.1931833275037836;

// Gaussian momenta (or any N(0,1) field) from Philox: chain b uses key
// (seed, chain0 + b); block blk of 4 sites uses counter (blk, traj, purpose, 0).
template <class Real>
void fill_normal(Real* out, int64_t B, int64_t V, uint64_t seed, uint64_t chain0, uint64_t traj,
                 uint64_t purpose) {
  const int64_t nblk = (V + 3) / 4;
  parallel_for(B * nblk, QCD_LAMBDA(int64_t i) {
    const int64_t b = i / nblk, blk = i - b * nblk;
    double g[4];
    normal4(seed, chain0 + uint64_t(b), traj, purpose, uint64_t(blk), g);
    Real* o = out + b * V + 4 * blk;
    const int64_t n = V - 4 * blk < 4 ? V - 4 * blk : 4;
    for (int64_t k = 0; k < n; ++k) o[k] = Real(g[k]);
  });
}

// Per-chain energy  sum_x [ p(x)^2/2 + s(x) ]  (mom may be null: action only),
// in double.  Two deterministic stages -- rows, then chains -- so the
// summation order, and hence the result, is the same on every backend.
template <class Real>
void chain_energy(const Real* phi, const Real* mom, int64_t B, Lattice lat, double kappa,
                  double lam, double* rowsum, double* out) {
  const int64_t V = lat.volume();
  parallel_for(B * lat.L0, QCD_LAMBDA(int64_t r) {
    const int64_t b = r / lat.L0, x0 = r - b * lat.L0;
    const Real* f = phi + b * V;
    double s = 0.0;
    for (int64_t x1 = 0; x1 < lat.L1; ++x1) {
      s += phi4::action_at(f, lat, x0, x1, kappa, lam);
      if (mom) {
        const double p = mom[b * V + x0 * lat.L1 + x1];
        s += 0.5 * p * p;
      }
    }
    rowsum[r] = s;
  });
  parallel_for(B, QCD_LAMBDA(int64_t b) {
    double s = 0.0;
    for (int64_t x0 = 0; x0 < lat.L0; ++x0) s += rowsum[b * lat.L0 + x0];
    out[b] = s;
  });
}

// Momentum update p += dt * F(phi).
template <class Real>
void kick(const Real* phi, Real* mom, int64_t B, Lattice lat, Couplings<Real> cp, Real dt) {
  const int64_t V = lat.volume();
  parallel_for_rows(B * lat.L0, lat.L1, QCD_LAMBDA(int64_t r, int64_t x1) {
    const int64_t b = r / lat.L0, x0 = r - b * lat.L0;
    mom[b * V + x0 * lat.L1 + x1] += dt * phi4::force_at(phi + b * V, lat, x0, x1, cp);
  });
}

// Field update phi += dt * p.
template <class Real>
void drift(Real* phi, const Real* mom, int64_t n, Real dt) {
  parallel_for(n, QCD_LAMBDA(int64_t i) { phi[i] += dt * mom[i]; });
}

template <class Real>
void force(const Real* phi, Real* out, int64_t B, Lattice lat, double kappa, double lam) {
  const Couplings<Real> cp(kappa, lam);
  const int64_t V = lat.volume();
  parallel_for_rows(B * lat.L0, lat.L1, QCD_LAMBDA(int64_t r, int64_t x1) {
    const int64_t b = r / lat.L0, x0 = r - b * lat.L0;
    out[b * V + x0 * lat.L1 + x1] = phi4::force_at(phi + b * V, lat, x0, x1, cp);
  });
}

// nmd molecular-dynamics steps of size eps; reversible and area-preserving.
// Adjacent half-kicks of consecutive steps are merged (one force per step).
template <class Real>
void md_integrate(Real* phi, Real* mom, int64_t B, Lattice lat, double kappa, double lam,
                  double eps, int64_t nmd, int integrator) {
  const Couplings<Real> cp(kappa, lam);
  const int64_t n = B * lat.volume();
  if (integrator == kLeapfrog) {
    // Leapfrog: p += eps/2 F; [phi += eps p; p += eps F] ...; last kick eps/2.
    kick(phi, mom, B, lat, cp, Real(0.5 * eps));
    for (int64_t s = 0; s < nmd; ++s) {
      drift(phi, mom, n, Real(eps));
      kick(phi, mom, B, lat, cp, Real(s + 1 == nmd ? 0.5 * eps : eps));
    }
  } else {
    // Omelyan 2MN: p += l eps F; phi += eps/2 p; p += (1-2l) eps F; phi += eps/2 p; p += l eps F.
    const double l = kOmelyanLambda;
    kick(phi, mom, B, lat, cp, Real(l * eps));
    for (int64_t s = 0; s < nmd; ++s) {
      drift(phi, mom, n, Real(0.5 * eps));
      kick(phi, mom, B, lat, cp, Real((1.0 - 2.0 * l) * eps));
      drift(phi, mom, n, Real(0.5 * eps));
      kick(phi, mom, B, lat, cp, Real(s + 1 == nmd ? l * eps : 2.0 * l * eps));
    }
  }
}

// ntraj complete HMC trajectories (Duane, Kennedy, Pendleton, Roweth 1987) on
// each of B chains: momentum refresh, MD, Metropolis accept/reject.
// Trajectory k of this call is global trajectory traj0 + k, which selects the
// Philox counters; dH and acc are (B, ntraj) row-major in backend memory.
template <class Real>
void hmc_trajectories(Real* phi, int64_t B, Lattice lat, double kappa, double lam, int64_t nmd,
                      double tau, int integrator, uint64_t seed, uint64_t chain0, uint64_t traj0,
                      int64_t ntraj, double* dH, uint8_t* acc) {
  const int64_t V = lat.volume(), n = B * V;
  Buffer<Real> old_buf(n), mom_buf(n);
  Buffer<double> row_buf(B * lat.L0), h0_buf(B), h1_buf(B);
  Buffer<uint8_t> keep_buf(B);
  Real *old = old_buf.data(), *mom = mom_buf.data();
  double *rows = row_buf.data(), *h0 = h0_buf.data(), *h1 = h1_buf.data();
  uint8_t* keep = keep_buf.data();
  const double eps = tau / double(nmd);

  for (int64_t k = 0; k < ntraj; ++k) {
    const uint64_t t = traj0 + uint64_t(k);
    parallel_for(n, QCD_LAMBDA(int64_t i) { old[i] = phi[i]; });
    fill_normal(mom, B, V, seed, chain0, t, kRngMomentum);
    chain_energy(phi, mom, B, lat, kappa, lam, rows, h0);
    md_integrate(phi, mom, B, lat, kappa, lam, eps, nmd, integrator);
    chain_energy(phi, mom, B, lat, kappa, lam, rows, h1);
    parallel_for(B, QCD_LAMBDA(int64_t b) {
      const double d = h1[b] - h0[b];
      // A NaN Delta H (diverged MD) fails both tests and is rejected.
      const bool a = d <= 0.0 || accept_uniform(seed, chain0 + uint64_t(b), t) < exp(-d);
      dH[b * ntraj + k] = d;
      acc[b * ntraj + k] = a ? 1 : 0;
      keep[b] = a ? 1 : 0;
    });
    parallel_for(n, QCD_LAMBDA(int64_t i) {
      if (!keep[i / V]) phi[i] = old[i];
    });
  }
  synchronize();
}

}  // namespace QCDHPC_BACKEND
}  // namespace qcdhpc

namespace qcdhpc {
namespace QCDHPC_BACKEND {

// S per chain, in double (out has B entries in backend memory).
template <class Real>
void action(const Real* phi, int64_t B, Lattice lat, double kappa, double lam, double* out) {
  Buffer<double> rows(B * lat.L0);
  chain_energy(phi, static_cast<const Real*>(nullptr), B, lat, kappa, lam, rows.data(), out);
  synchronize();
}

}  // namespace QCDHPC_BACKEND
}  // namespace qcdhpc
