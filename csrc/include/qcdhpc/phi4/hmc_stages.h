// phi^4 HMC: the sequence of parallel stages that makes a trajectory, written
// once.  Each including translation unit defines QCDHPC_BACKEND (cpu | cuda)
// and gets these functions in namespace qcdhpc::QCDHPC_BACKEND, built on its
// own parallel_for and Buffer.  Per-site math: phi4/site.h; random streams,
// noise fills, the MD schedule and the Metropolis test: mc/; fixed-order sums:
// core/reductions.h.
//
// Memory layout: B independent chains, each a row-major L0 x L1 field, chain b
// at offset b*V.  All pointers are in the backend's memory space.
#ifndef QCDHPC_BACKEND
#error "define QCDHPC_BACKEND (cpu or cuda) before including phi4/hmc_stages.h"
#endif

#include "../core/device_buffer.h"
#include "../core/parallel_for.h"
#include "../core/reductions.h"
#include "../mc/md_schedule.h"
#include "../mc/metropolis.h"
#include "../mc/noise.h"
#include "site.h"

namespace qcdhpc {
namespace QCDHPC_BACKEND {

using phi4::ForceCoeffs;
using phi4::Lattice;

// Gaussian momenta (or any N(0,1) field): the shared noise fill, mc/noise.h.
template <class Real>
void fill_normal(Real* out, int64_t B, int64_t V, uint64_t seed, uint64_t chain0, uint64_t traj,
                 uint64_t purpose) {
  mc::fill_normal(out, B, V, seed, chain0, traj, purpose);
}

// sum over one row of s(x) (+ p(x)^2/2 with kWithMomentum), in double, in
// ordered_sum8's order.  mid, down: rows x0 and x0+1; the last site's forward
// column neighbour wraps, the others' do not (the interior part).
template <class Real, bool kWithMomentum>
QCD_INLINE double row_energy(const Real* mid, const Real* down, const Real* mom, int64_t L1,
                             double kappa, double lam) {
  return ordered_sum8(
      L1, L1 - 1,
      [&](int64_t x) {
        return phi4::energy_density<kWithMomentum>(mid[x], down[x], mid[x + 1], mom[x], kappa, lam);
      },
      [&](int64_t x) {
        return phi4::energy_density<kWithMomentum>(mid[x], down[x], mid[x + 1 == L1 ? 0 : x + 1],
                                                   mom[x], kappa, lam);
      });
}

// Per-chain energy  sum_x [ p(x)^2/2 + s(x) ]  (mom may be null: action only),
// in double: rows, then chains (core/reductions.h), so the result is the same
// on every backend.  rowsum holds B * L0 doubles.
template <class Real>
void chain_energy(const Real* phi, const Real* mom, int64_t B, Lattice lat, double kappa,
                  double lam, double* rowsum, double* out) {
  const int64_t V = lat.volume();
  if (mom) {
    row_chain_sums(B, lat.L0, rowsum, out, QCD_LAMBDA(int64_t b, int64_t x0) {
      const int64_t row = b * V + x0 * lat.L1;
      return row_energy<Real, true>(phi + row, phi + b * V + phi4::next(x0, lat.L0) * lat.L1,
                                    mom + row, lat.L1, kappa, lam);
    });
  } else {
    row_chain_sums(B, lat.L0, rowsum, out, QCD_LAMBDA(int64_t b, int64_t x0) {
      const int64_t row = b * V + x0 * lat.L1;
      return row_energy<Real, false>(phi + row, phi + b * V + phi4::next(x0, lat.L0) * lat.L1,
                                     phi + row, lat.L1, kappa, lam);
    });
  }
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

// MD on the batch with mc::md_schedule; `scratch` holds B*V values (the drift
// writes the new field to the other buffer); the result ends in phi.
template <class Real>
void md_integrate(Real* phi, Real* mom, Real* scratch, int64_t B, Lattice lat, double kappa,
                  double lam, double eps, int64_t nmd, int integrator) {
  if (nmd <= 0) return;
  Real* cur = phi;
  Real* nxt = scratch;
  mc::md_schedule(
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

// The public entry point: takes the ping-pong buffer from Buffer (the device pool).
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
// Scratch: seven Buffers per call (field copy, momenta, MD ping-pong, row sums,
// H0, H1, keep flags) -- blocks of the caching pool on the GPU.
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
    mc::fill_normal(mom, B, V, seed, chain0, t, mc::kRngMomentum);
    chain_energy(phi, mom, B, lat, kappa, lam, rows, h0);
    md_integrate(phi, mom, scratch_buf.data(), B, lat, kappa, lam, eps, nmd, integrator);
    chain_energy(phi, mom, B, lat, kappa, lam, rows, h1);
    parallel_for(B, QCD_LAMBDA(int64_t b) {
      const double d = h1[b] - h0[b];
      const bool a = mc::metropolis_accept(d, seed, chain0 + uint64_t(b), t);
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

// S per chain, in double (out has B entries in backend memory).
template <class Real>
void action(const Real* phi, int64_t B, Lattice lat, double kappa, double lam, double* out) {
  Buffer<double> rows(B * lat.L0);
  chain_energy(phi, static_cast<const Real*>(nullptr), B, lat, kappa, lam, rows.data(), out);
  synchronize();
}

}  // namespace QCDHPC_BACKEND
}  // namespace qcdhpc
