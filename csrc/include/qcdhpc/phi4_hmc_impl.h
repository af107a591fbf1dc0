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

using phi4::ForceCoeffs;
using phi4::Lattice;

enum Integrator : int { kLeapfrog = 0, kOmelyan = 1 };

// Omelyan-Mryglod-Folk 2MN parameter, Comput. Phys. Commun. 151 (2003) 272,
// chosen to minimise the leading error coefficient of the second-order scheme.
constexpr double kOmelyanLambda = 0.1931833275037836;

// Metropolis test of trajectory traj of one chain (Duane et al. 1987): accept
// with probability min(1, exp(-dH)).  A NaN dH (diverged MD) fails both tests
// and is rejected.
QCD_INLINE bool metropolis_accept(double dH, uint64_t seed, uint64_t chain, uint64_t traj) {
  return dH <= 0.0 || accept_uniform(seed, chain, traj) < exp(-dH);
}

// Gaussian momenta (or any N(0,1) field) from Philox: chain b uses key
// (seed, chain0 + b); block blk of 4 sites uses counter (blk, traj, purpose, 0).
template <class Real>
void fill_normal(Real* out, int64_t B, int64_t V, uint64_t seed, uint64_t chain0, uint64_t traj,
                 uint64_t purpose) {
  // Full blocks of four sites: a branch-free loop (vectorised on the CPU) ...
  const int64_t nfull = V / 4;
  parallel_for_2d(B, nfull, QCD_LAMBDA(int64_t b, int64_t blk) {
    double g0, g1, g2, g3;
    normal4(seed, chain0 + uint64_t(b), traj, purpose, uint64_t(blk), g0, g1, g2, g3);
    Real* o = out + b * V + 4 * blk;
    o[0] = Real(g0);
    o[1] = Real(g1);
    o[2] = Real(g2);
    o[3] = Real(g3);
  });
  // ... and the last, partial block of each chain when 4 does not divide V.
  if (V % 4) {
    parallel_for(B, QCD_LAMBDA(int64_t b) {
      double g[4];
      normal4(seed, chain0 + uint64_t(b), traj, purpose, uint64_t(nfull), g[0], g[1], g[2], g[3]);
      for (int64_t k = 0; k < V - 4 * nfull; ++k) out[b * V + 4 * nfull + k] = Real(g[k]);
    });
  }
}

// Per-chain energy  sum_x [ p(x)^2/2 + s(x) ]  (mom may be null: action only),
// in double.  Two deterministic stages -- rows (phi4::row_energy fixes the
// order within a row), then chains -- so the result is the same on every backend.
template <class Real>
void chain_energy(const Real* phi, const Real* mom, int64_t B, Lattice lat, double kappa,
                  double lam, double* rowsum, double* out) {
  const int64_t V = lat.volume();
  parallel_for(B * lat.L0, QCD_LAMBDA(int64_t r) {
    const int64_t b = r / lat.L0, x0 = r - b * lat.L0;
    const Real* mid = phi + b * V + x0 * lat.L1;
    const Real* down = phi + b * V + phi4::next(x0, lat.L0) * lat.L1;
    rowsum[r] = mom ? phi4::row_energy<Real, true>(mid, down, mom + b * V + x0 * lat.L1, lat.L1,
                                                   kappa, lam)
                    : phi4::row_energy<Real, false>(mid, down, mid, lat.L1, kappa, lam);
  });
  parallel_for(B, QCD_LAMBDA(int64_t b) {
    double s = 0.0;
    for (int64_t x0 = 0; x0 < lat.L0; ++x0) s += rowsum[b * lat.L0 + x0];
    out[b] = s;
  });
}

// Visits every site as f(site_offset, up_row, mid_row, down_row, x1m, x1, x1p):
// the rows x0-1, x0, x0+1 of its chain and its wrapped column neighbours.
template <class Real, class F>
void for_each_site(const Real* phi, int64_t B, Lattice lat, F f) {
  const int64_t V = lat.volume();
  parallel_for_lattice(B, lat.L0, lat.L1, QCD_LAMBDA(int64_t b, int64_t x0, int64_t x1m, int64_t x1, int64_t x1p) {
    const Real* chain = phi + b * V;
    f(b * V + x0 * lat.L1 + x1, chain + phi4::prev(x0, lat.L0) * lat.L1, chain + x0 * lat.L1,
      chain + phi4::next(x0, lat.L0) * lat.L1, x1m, x1, x1p);
  });
}

// Momentum update p += h F(phi), c = ForceCoeffs(kappa, lambda, h).
template <class Real>
void kick(const Real* phi, Real* mom, int64_t B, Lattice lat, ForceCoeffs<Real> c) {
  for_each_site(phi, B, lat, QCD_LAMBDA(int64_t i, const Real* up, const Real* mid, const Real* down,
                                         int64_t x1m, int64_t x1, int64_t x1p) {
    mom[i] = phi4::kicked_momentum(mom[i], mid[x1], phi4::neighbour_sum(up, mid, down, x1m, x1, x1p), c);
  });
}

// A kick followed by a drift in one pass over memory:
//   p += h_kick F(phi_in);  phi_out = phi_in + h_drift p.
// The drift of a site must not be seen by its neighbours' forces, so the new
// field goes to a second buffer (the caller swaps).  Same operations in the same
// order as kick() then a drift, hence the same bits.
template <class Real>
void kick_drift(const Real* phi_in, Real* phi_out, Real* mom, int64_t B, Lattice lat,
                ForceCoeffs<Real> c, Real h_drift) {
  for_each_site(phi_in, B, lat, QCD_LAMBDA(int64_t i, const Real* up, const Real* mid,
                                            const Real* down, int64_t x1m, int64_t x1, int64_t x1p) {
    const Real p = phi4::kicked_momentum(mom[i], mid[x1], phi4::neighbour_sum(up, mid, down, x1m, x1, x1p), c);
    mom[i] = p;
    phi_out[i] = phi4::drifted_field(mid[x1], p, h_drift);
  });
}

// F = -dS/dphi: the kick of a zero momentum with h = 1.
template <class Real>
void force(const Real* phi, Real* out, int64_t B, Lattice lat, double kappa, double lam) {
  const ForceCoeffs<Real> c(kappa, lam);
  for_each_site(phi, B, lat, QCD_LAMBDA(int64_t i, const Real* up, const Real* mid, const Real* down,
                                         int64_t x1m, int64_t x1, int64_t x1p) {
    out[i] = phi4::kicked_momentum(Real(0), mid[x1], phi4::neighbour_sum(up, mid, down, x1m, x1, x1p), c);
  });
  synchronize();
}

// The integrators, written once as a schedule of fused steps: nmd molecular-
// dynamics steps of size eps, reversible and area-preserving.  Adjacent
// half-kicks of consecutive steps are merged (one force per step for leapfrog,
// two for Omelyan) and each kick is fused with the drift after it:
// step(dt_kick, dt_drift) does p += dt_kick F(phi); phi += dt_drift p, and
// kick(dt) the final p += dt F(phi).  Host code: it sequences stages (or, in
// the CPU lane driver, whole-block loops).
template <class Step, class Kick>
inline void md_schedule(int integrator, double eps, int64_t nmd, Step&& step, Kick&& kick) {
  if (nmd <= 0) return;
  if (integrator == kLeapfrog) {
    // p += eps/2 F; phi += eps p; [p += eps F; phi += eps p] x (nmd-1); p += eps/2 F.
    step(0.5 * eps, eps);
    for (int64_t s = 1; s < nmd; ++s) step(eps, eps);
    kick(0.5 * eps);
  } else {
    // Omelyan 2MN, per step: p += l eps F; phi += eps/2 p; p += (1-2l) eps F;
    // phi += eps/2 p; p += l eps F  (the last kick merged with the next step's first).
    const double l = kOmelyanLambda;
    step(l * eps, 0.5 * eps);
    step((1.0 - 2.0 * l) * eps, 0.5 * eps);
    for (int64_t s = 1; s < nmd; ++s) {
      step(2.0 * l * eps, 0.5 * eps);
      step((1.0 - 2.0 * l) * eps, 0.5 * eps);
    }
    kick(l * eps);
  }
}

// MD on the batch with md_schedule; `scratch` holds B*V values (the drift
// writes the new field to the other buffer); the result ends in phi.
template <class Real>
void md_integrate(Real* phi, Real* mom, Real* scratch, int64_t B, Lattice lat, double kappa,
                  double lam, double eps, int64_t nmd, int integrator) {
  if (nmd <= 0) return;
  Real* cur = phi;
  Real* nxt = scratch;
  md_schedule(
      integrator, eps, nmd,
      [&](double dt_kick, double dt_drift) {
        kick_drift(cur, nxt, mom, B, lat, ForceCoeffs<Real>(kappa, lam, dt_kick), Real(dt_drift));
        Real* t = cur;
        cur = nxt;
        nxt = t;
      },
      [&](double dt) { kick(cur, mom, B, lat, ForceCoeffs<Real>(kappa, lam, dt)); });
  if (cur != phi) {
    const int64_t n = B * lat.volume();
    const Real* src = cur;
    parallel_for(n, QCD_LAMBDA(int64_t i) { phi[i] = src[i]; });
  }
}

// The public entry point: allocates the ping-pong buffer.
template <class Real>
void md_integrate(Real* phi, Real* mom, int64_t B, Lattice lat, double kappa, double lam,
                  double eps, int64_t nmd, int integrator) {
  Buffer<Real> scratch(B * lat.volume());
  md_integrate(phi, mom, scratch.data(), B, lat, kappa, lam, eps, nmd, integrator);
}

// ntraj complete HMC trajectories (Duane, Kennedy, Pendleton, Roweth 1987) on
// each of B chains: momentum refresh, MD, Metropolis accept/reject.
// Trajectory k of this call is global trajectory traj0 + k, which selects the
// Philox counters; dH and acc are (B, ntraj) row-major in backend memory.
// Stage by stage over the whole batch: what the GPU runs; the CPU driver calls
// it per chain (phi4_cpu.cpp).  dH and acc have row stride ld (>= ntraj).
template <class Real>
void hmc_trajectories_batch(Real* phi, int64_t B, Lattice lat, double kappa, double lam,
                            int64_t nmd, double tau, int integrator, uint64_t seed,
                            uint64_t chain0, uint64_t traj0, int64_t ntraj, double* dH,
                            uint8_t* acc, int64_t ld) {
  const int64_t V = lat.volume(), n = B * V;
  Buffer<Real> old_buf(n), mom_buf(n), scratch_buf(n);
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
    md_integrate(phi, mom, scratch_buf.data(), B, lat, kappa, lam, eps, nmd, integrator);
    chain_energy(phi, mom, B, lat, kappa, lam, rows, h1);
    parallel_for(B, QCD_LAMBDA(int64_t b) {
      const double d = h1[b] - h0[b];
      const bool a = metropolis_accept(d, seed, chain0 + uint64_t(b), t);
      dH[b * ld + k] = d;
      acc[b * ld + k] = a ? 1 : 0;
      keep[b] = a ? 1 : 0;
    });
    parallel_for_2d(B, V, QCD_LAMBDA(int64_t b, int64_t x) {
      if (!keep[b]) phi[b * V + x] = old[b * V + x];
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
