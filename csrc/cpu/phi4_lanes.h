// CPU driver for blocks of W chains stored lane-interleaved (Grid's "virtual
// node" SIMD layout, Boyle et al., arXiv:1512.03487): the value of chain c at
// site s lives at a[s * W + c], W = one 64-byte vector of Real (8 doubles or 16
// floats).  Every site of the lattice is then one full SIMD vector holding the
// same site of W chains, so the stencil has no row edges, no remainders and no
// unaligned neighbour loads -- on a 32 x 32 lattice those cost about half of the
// chain-contiguous layout's MD instructions (docs/architecture.md, "CPU lanes").
//
// Only the loop order and the memory layout differ from phi4/hmc_stages.h: every
// number is computed by the same QCD_HD functions (phi4::kicked_momentum,
// phi4::drifted_field, phi4::energy_density, mc::normal4, mc::metropolis_accept)
// with the same operands in the same order, including the fixed 8-way summation
// order of core/reductions.h (ordered_sum8).  A chain therefore gets the same bits whether it ran in a
// lane block, alone, or on the GPU; tests/test_phi4_kernels.py checks this.
//
// Include after qcdhpc/phi4/hmc_stages.h (with QCDHPC_BACKEND cpu), whose stages it reuses.
#pragma once

namespace qcdhpc {
namespace cpu {
namespace lanes {

template <class Real>
constexpr int64_t width() {
  return int64_t(64 / sizeof(Real));
}

// Gaussian momenta of the W chains chain0 .. chain0+W-1, written straight into
// the lane layout: lane c of the vector loop is chain c, so the four normals of
// Philox block blk fill four whole site vectors (4 blk .. 4 blk + 3) -- the same
// numbers as fill_normal (same normal4 call, same counters), without its
// chain-major buffer and the transpose after it.
template <class Real, int64_t W>
inline void fill_normal_lanes(Real* __restrict out, int64_t V, uint64_t seed, uint64_t chain0,
                              uint64_t traj, uint64_t purpose) {
  const int64_t nfull = V / 4;
  for (int64_t blk = 0; blk < nfull; ++blk) {
    Real* o = out + 4 * blk * W;
#pragma omp simd
    for (int64_t c = 0; c < W; ++c) {
      double g0, g1, g2, g3;
      mc::normal4(seed, chain0 + uint64_t(c), traj, purpose, uint64_t(blk), g0, g1, g2, g3);
      o[c] = Real(g0);
      o[W + c] = Real(g1);
      o[2 * W + c] = Real(g2);
      o[3 * W + c] = Real(g3);
    }
  }
  // The last, partial block when 4 does not divide V (as fill_normal).
  for (int64_t c = 0; c < W && V % 4; ++c) {
    double g[4];
    mc::normal4(seed, chain0 + uint64_t(c), traj, purpose, uint64_t(nfull), g[0], g[1], g[2], g[3]);
    for (int64_t k = 0; k < V - 4 * nfull; ++k) out[(4 * nfull + k) * W + c] = Real(g[k]);
  }
}

// n <= W chain-contiguous fields (chain c at src + c*V) -> lane-interleaved, and
// back; lanes n .. W-1 (padding, see hmc_block) start from phi = 0.
template <class Real, int64_t W>
inline void to_lanes(const Real* src, Real* dst, int64_t V, int64_t n) {
  for (int64_t s = 0; s < V; ++s)
#pragma omp simd
    for (int64_t c = 0; c < W; ++c) dst[s * W + c] = c < n ? src[c * V + s] : Real(0);
}

template <class Real, int64_t W>
inline void from_lanes(const Real* src, Real* dst, int64_t V, int64_t n) {
  for (int64_t c = 0; c < n; ++c)
    for (int64_t s = 0; s < V; ++s) dst[c * V + s] = src[s * W + c];
}

// Visits every site as f(i, phi, nbr): i = s * W + c the lane index of site s of
// chain c, phi its field value and nbr the sum of its four neighbours in
// phi4::neighbour_sum's order, (up + down) + (left + right).  Along a row the
// left, centre and right values slide through registers (left <- centre <-
// right), so a site costs three field loads (right, up, down) instead of five.
template <class Real, int64_t W, class F>
inline void for_each_site(const Real* __restrict in, phi4::Lattice lat, F f) {
  const int64_t L1 = lat.L1;
  for (int64_t x0 = 0; x0 < lat.L0; ++x0) {
    const Real* up = in + phi4::prev(x0, lat.L0) * L1 * W;
    const Real* mid = in + x0 * L1 * W;
    const Real* down = in + phi4::next(x0, lat.L0) * L1 * W;
    Real left[W], centre[W];
#pragma omp simd
    for (int64_t c = 0; c < W; ++c) {
      left[c] = mid[(L1 - 1) * W + c];
      centre[c] = mid[c];
    }
    for (int64_t x1 = 0; x1 < L1; ++x1) {
      const Real* r = mid + phi4::next(x1, L1) * W;
      const int64_t s = x1 * W;
#pragma omp simd
      for (int64_t c = 0; c < W; ++c) {
        const Real phi = centre[c], right = r[c];
        f(x0 * L1 * W + s + c, phi, (up[s + c] + down[s + c]) + (left[c] + right));
        left[c] = phi;
        centre[c] = right;
      }
    }
  }
}

// p += h_kick F(phi_in); phi_out = phi_in + h_drift p  (as phi4/hmc_stages.h's kick_drift).
template <class Real, int64_t W>
inline void kick_drift(const Real* __restrict in, Real* __restrict out, Real* __restrict mom,
                       phi4::Lattice lat, phi4::ForceCoeffs<Real> k, Real h_drift) {
  for_each_site<Real, W>(in, lat, [&](int64_t i, Real phi, Real nbr) {
    const Real p = phi4::kicked_momentum(mom[i], phi, nbr, k);
    mom[i] = p;
    out[i] = phi4::drifted_field(phi, p, h_drift);
  });
}

template <class Real, int64_t W>
inline void kick(const Real* __restrict in, Real* __restrict mom, phi4::Lattice lat,
                 phi4::ForceCoeffs<Real> k) {
  for_each_site<Real, W>(in, lat, [&](int64_t i, Real phi, Real nbr) {
    mom[i] = phi4::kicked_momentum(mom[i], phi, nbr, k);
  });
}

// Per-lane energy sum_x [s(x) (+ p(x)^2/2)] in the order of core/reductions.h
// (ordered_sum8 within a row, row_chain_sums over rows), vectorised across the
// lanes: within a row, partial sum k takes the sites x1 = k mod 8 in increasing
// x1; the eight partial sums combine in ordered_sum8's tree; rows add in
// increasing x0 from 0.0.
template <class Real, int64_t W, bool kWithMomentum>
inline void energy(const Real* __restrict phi, const Real* __restrict mom, phi4::Lattice lat,
                   double kappa, double lam, double* out) {
  double total[W];
  for (int64_t c = 0; c < W; ++c) total[c] = 0.0;
  for (int64_t x0 = 0; x0 < lat.L0; ++x0) {
    const int64_t row = x0 * lat.L1, down = phi4::next(x0, lat.L0) * lat.L1;
    double acc[8][W];
    for (int k = 0; k < 8; ++k)
      for (int64_t c = 0; c < W; ++c) acc[k][c] = 0.0;
    for (int64_t x1 = 0; x1 < lat.L1; ++x1) {
      const int64_t s = (row + x1) * W, d = (down + x1) * W, r = (row + phi4::next(x1, lat.L1)) * W;
      double* a = acc[x1 % 8];
#pragma omp simd
      for (int64_t c = 0; c < W; ++c) {
        a[c] += phi4::energy_density<kWithMomentum>(phi[s + c], phi[d + c], phi[r + c],
                                                     mom[s + c], kappa, lam);
      }
    }
#pragma omp simd
    for (int64_t c = 0; c < W; ++c)
      total[c] += ((acc[0][c] + acc[1][c]) + (acc[2][c] + acc[3][c])) +
                  ((acc[4][c] + acc[5][c]) + (acc[6][c] + acc[7][c]));
  }
  for (int64_t c = 0; c < W; ++c) out[c] = total[c];
}

// ntraj HMC trajectories of the n <= W chains chain0 .. chain0+n-1 stored
// chain-contiguously at phi (V values each); dH/acc rows of stride ld.  The same
// stage sequence as hmc_trajectories_batch; the field ping-pongs between three
// lane buffers, so neither the "old" copy nor the restore of a rejected
// trajectory moves any data (the accepted buffer is chosen by pointer).
// With n < W the other lanes are padding: they run (from phi = 0, with the
// random numbers of chains chain0+n ..) and their results are dropped -- each
// lane's arithmetic is independent, so the n real chains are unaffected.
template <class Real>
void hmc_block(Real* phi, int64_t n, phi4::Lattice lat, double kappa, double lam, int64_t nmd,
               double tau, int integrator, uint64_t seed, uint64_t chain0, uint64_t traj0,
               int64_t ntraj, double* dH, uint8_t* acc, int64_t ld) {
  constexpr int64_t W = width<Real>();
  const int64_t V = lat.volume();
  // Four arrays of W*V values (field x 3, momenta) in one 64-byte-aligned
  // allocation, each shifted by 5 more cache lines than the previous one: at
  // L = 32 they are 64 KiB long, and arrays whose addresses differ by a multiple
  // of 4 KiB make the loads of one site alias the stores of another (measured:
  // 1200 instead of 1900 Msite-updates/s depending on where malloc put them).
  const int64_t stride = W * V + 5 * W;
  Buffer<Real> buf(4 * stride + W);
  Real* base = buf.data();
  base += (W - (reinterpret_cast<uintptr_t>(base) / sizeof(Real)) % W) % W;
  Real* cur = base;  // the chains' present state
  Real* work[2] = {base + stride, base + 2 * stride};
  Real* mom = base + 3 * stride;
  to_lanes<Real, W>(phi, cur, V, n);
  const double eps = tau / double(nmd);
  double h0[W], h1[W];

  for (int64_t k = 0; k < ntraj; ++k) {
    const uint64_t t = traj0 + uint64_t(k);
    fill_normal_lanes<Real, W>(mom, V, seed, chain0, t, mc::kRngMomentum);
    energy<Real, W, true>(cur, mom, lat, kappa, lam, h0);

    // MD with the integrators' one schedule (mc/md_schedule.h), on lane blocks; nmd >= 1
    // (checked by the bindings), so the end is in work[w ^ 1] below.
    const Real* src = cur;
    int w = 0;
    mc::md_schedule(
        integrator, eps, nmd,
        [&](double dt_kick, double dt_drift) {
          kick_drift<Real, W>(src, work[w], mom, lat, phi4::ForceCoeffs<Real>(kappa, lam, dt_kick),
                              Real(dt_drift));
          src = work[w];
          w ^= 1;
        },
        [&](double dt) { kick<Real, W>(src, mom, lat, phi4::ForceCoeffs<Real>(kappa, lam, dt)); });
    energy<Real, W, true>(src, mom, lat, kappa, lam, h1);

    uint8_t keep[W];
    bool any = false;
    for (int64_t c = 0; c < W; ++c) {
      const double d = h1[c] - h0[c];
      const bool a = mc::metropolis_accept(d, seed, chain0 + uint64_t(c), t);
      if (c < n) {
        dH[c * ld + k] = d;
        acc[c * ld + k] = a ? 1 : 0;
      }
      keep[c] = a ? 1 : 0;
      any = any || a;
    }
    if (!any) continue;
    // The end of MD (src == work[w ^ 1]) becomes the present state; lanes whose
    // trajectory was rejected first get their old values back from cur.
    Real* next = work[w ^ 1];
    bool all = true;
    for (int64_t c = 0; c < W; ++c) all = all && keep[c];
    if (!all) {
      for (int64_t s = 0; s < V; ++s)
#pragma omp simd
        for (int64_t c = 0; c < W; ++c)
          if (!keep[c]) next[s * W + c] = cur[s * W + c];
    }
    work[w ^ 1] = cur;
    cur = next;
  }
  from_lanes<Real, W>(cur, phi, V, n);
}

}  // namespace lanes
}  // namespace cpu
}  // namespace qcdhpc
