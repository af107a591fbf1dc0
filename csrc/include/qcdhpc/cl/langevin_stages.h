// Complex Langevin: the stages that make Langevin steps, written once.  Each
// including translation unit defines QCDHPC_BACKEND (cpu | cuda) and gets these
// functions in namespace qcdhpc::QCDHPC_BACKEND, on its own parallel_for and
// Buffer.  Per-walker and per-site math: cl/site.h; noise: mc/noise.h
// (mc::fill_normal, purpose mc::kRngLangevin); fixed-order sums: core/reductions.h.
//
// Layouts (all in backend memory, complex128 as C128 = {re, im}):
//   quartic   z (W,), t (W,), frozen (W,) uint8, kbar (W,) or null;
//             records (W, ld) C128, weights (W, ld): record r of walker w at w*ld + r
//   Bose gas  phi (B, 2, V): field b, component a at phi + (2b + a) V; t, frozen, kbar (B,);
//             per record (B, ld): density, phi2 (C128), kmax, weights (double)
// Record r is taken at local step r*every, of the state BEFORE that step's update,
// with the eps of that update as its weight (0 and NaN records once frozen).
#ifndef QCDHPC_BACKEND
#error "define QCDHPC_BACKEND (cpu or cuda) before including cl/langevin_stages.h"
#endif

#include "../core/device_buffer.h"
#include "../core/parallel_for.h"
#include "../core/reductions.h"
#include "../mc/noise.h"
#include "backend_api.h"
#include "site.h"

#include <limits>
#include <type_traits>

namespace qcdhpc {
namespace QCDHPC_BACKEND {

using cl::C128;

// ------------------------------------------------------------------ quartic --

// Walkers [0, W) each in one thread, all nsteps in registers: one launch per
// call (what the GPU runs; the CPU runs lane blocks of the same step,
// csrc/cpu/cl_cpu.cpp).  Walker w is global walker walker0 + w; step k is
// global step step0 + k.
template <int kScheme, bool kAdaptive, bool kComplexNoise>
void quartic_walkers_flat(C128* z, int64_t W, cl::QuarticCoeffs c, cl::StepParams p,
                          const double* kbar, double* t, uint8_t* frozen, uint64_t seed,
                          uint64_t walker0, uint64_t step0, int64_t nsteps, int64_t every,
                          C128* records, double* weights, int64_t ld) {
  parallel_for(W, QCD_LAMBDA(int64_t w) {
    double zr = z[w].re, zi = z[w].im, tw = t[w];
    int64_t fl = frozen[w] ? 1 : 0;
    const double kb = kAdaptive ? kbar[w] : 0.0;
    double g0 = 0.0, g1 = 0.0, g2 = 0.0, g3 = 0.0;  // the current block of the noise stream
    for (int64_t k = 0, r = 0; k < nsteps; ++k) {
      const uint64_t j = cl::walker_noise_index<kComplexNoise>(step0 + uint64_t(k)), q = j & 3;
      if (k == 0 || q == 0) cl::walker_normals4(seed, walker0 + uint64_t(w), j >> 2, g0, g1, g2, g3);
      const double gx = cl::pick4(q, g0, g1, g2, g3);
      const double gy = kComplexNoise ? cl::pick4(q + 1, g0, g1, g2, g3) : 0.0;
      double rr, ri, rw;
      cl::quartic_walker_step<kScheme, kAdaptive, kComplexNoise>(zr, zi, tw, fl, kb, c, p, gx, gy,
                                                                 rr, ri, rw);
      if (k == r * every) {
        records[w * ld + r] = C128{rr, ri};
        weights[w * ld + r] = rw;
        ++r;
      }
    }
    fl = (fl != 0 || !cl::state_ok(C128{zr, zi}, p.bound2)) ? 1 : 0;  // the final state
    z[w] = C128{zr, zi};
    t[w] = tw;
    frozen[w] = uint8_t(fl);
  });
  synchronize();
}

// Calls f(integral_constant<int, kScheme>, bool_constant<kAdaptive>, bool_constant<kComplexNoise>).
template <class F>
inline void dispatch_quartic(int scheme, bool adaptive, bool complex_noise, F&& f) {
  using E = std::integral_constant<int, cl::kEuler>;
  using H = std::integral_constant<int, cl::kHeun>;
  using T = std::true_type;
  using N = std::false_type;
  if (scheme == cl::kHeun) {
    if (adaptive) complex_noise ? f(H{}, T{}, T{}) : f(H{}, T{}, N{});
    else complex_noise ? f(H{}, N{}, T{}) : f(H{}, N{}, N{});
  } else {
    if (adaptive) complex_noise ? f(E{}, T{}, T{}) : f(E{}, T{}, N{});
    else complex_noise ? f(E{}, N{}, T{}) : f(E{}, N{}, N{});
  }
}

// Calls f(integral_constant<int, D>) for D = 1..4.
template <class F>
inline void dispatch_dim(int D, F&& f) {
  switch (D) {
    case 1: f(std::integral_constant<int, 1>{}); break;
    case 2: f(std::integral_constant<int, 2>{}); break;
    case 3: f(std::integral_constant<int, 3>{}); break;
    default: f(std::integral_constant<int, 4>{}); break;
  }
}

// ------------------------------------------------------ shared entry points --
// The entry points (cl/backend_api.h) that both backends run the same way are
// defined here, once; quartic_langevin and bose_langevin, which each backend
// schedules its own way, are in csrc/cpu/cl_cpu.cpp and csrc/cuda/cl_cuda.cu.

// |K(z)| per walker.
void quartic_kmax(const C128* z, int64_t W, cl::QuarticCoeffs c, double* out) {
  parallel_for(W, QCD_LAMBDA(int64_t w) { out[w] = sqrt(norm2(cl::quartic_drift(z[w], c))); });
  synchronize();
}

// ----------------------------------------------------------------- Bose gas --

// The neighbour table of the N^D lattice: V rows of 2D int32 (cl::bose_neighbours).
template <int D>
void bose_neighbour_table(int64_t N, int64_t V, int32_t* nb) {
  parallel_for(V, QCD_LAMBDA(int64_t x) { cl::bose_neighbours<D>(x, N, nb + x * (2 * D)); });
}

// K = drift(phi) at every site of every configuration not frozen (frozen may be
// null), and site[b V + x] = cl::bose_site_value (max_a |K_a|^2, NaN if the
// state has run away there).
template <int D>
void bose_drift_pass(const C128* phi, C128* K, double* site, const uint8_t* frozen, int64_t B,
                     int64_t V, const int32_t* nb, cl::BoseCoeffs c, double bound2) {
  parallel_for_2d(B, V, QCD_LAMBDA(int64_t b, int64_t x) {
    if (frozen && frozen[b]) return;
    const C128* f1 = phi + 2 * b * V;
    const C128* f2 = f1 + V;
    C128 k1, k2;
    cl::bose_drift<D>(f1, f2, nb, x, c, k1, k2);
    K[2 * b * V + x] = k1;
    K[2 * b * V + V + x] = k2;
    site[b * V + x] = cl::bose_site_value(f1[x], f2[x], k1, k2, bound2);
  });
}

// Chunk of the per-configuration maximum: site values in chunks of kChunk.
constexpr int64_t kMaxChunk = 64;

// out[b] = max over x of site[b V + x] (NaN-propagating: cl::max_nan), in two
// stages (chunks, then chunks of a configuration); chunk holds B * ceil(V / kMaxChunk).
inline void bose_field_max(const double* site, int64_t B, int64_t V, const uint8_t* frozen,
                           double* chunk, double* out) {
  const int64_t nch = (V + kMaxChunk - 1) / kMaxChunk;
  parallel_for_2d(B, nch, QCD_LAMBDA(int64_t b, int64_t j) {
    if (frozen && frozen[b]) return;
    const int64_t x1 = (j + 1) * kMaxChunk < V ? (j + 1) * kMaxChunk : V;
    double m = 0.0;
    for (int64_t x = j * kMaxChunk; x < x1; ++x) m = cl::max_nan(m, site[b * V + x]);
    chunk[b * nch + j] = m;
  });
  parallel_for(B, QCD_LAMBDA(int64_t b) {
    if (frozen && frozen[b]) return;
    double m = 0.0;
    for (int64_t j = 0; j < nch; ++j) m = cl::max_nan(m, chunk[b * nch + j]);
    out[b] = m;
  });
}

// The observables (B4), (B5) of every configuration not frozen (frozen may be
// null): per row of N sites (rows r = 0 .. V/N - 1, sites rN .. rN + N - 1) four
// ordered_sum8 sums (Re n, Im n, Re phi*phi, Im phi*phi), then the rows in
// increasing r, then / V.  rows holds 4 B V/N doubles.  Written to
// dens[b * ld], phi2[b * ld] (NaN for frozen configurations).
template <int D>
void bose_observables(const C128* phi, int64_t B, int64_t N, int64_t V, const int32_t* nb,
                      cl::BoseCoeffs c, const uint8_t* frozen, double* rows, C128* dens,
                      C128* phi2, int64_t ld) {
  const int64_t nrows = V / N;
  parallel_for_2d(B, nrows, QCD_LAMBDA(int64_t b, int64_t r) {
    if (frozen && frozen[b]) return;
    const C128* f1 = phi + 2 * b * V;
    const C128* f2 = f1 + V;
    const int64_t x0 = r * N;
    auto dn = [&](int64_t j) {
      const int64_t x = x0 + j, fw = nb[x * (2 * D)];
      return cl::bose_density_term(f1[x], f2[x], f1[fw], f2[fw], c);
    };
    auto p2 = [&](int64_t j) { return cl::bose_phi2_term(f1[x0 + j], f2[x0 + j]); };
    double* o = rows + 4 * (b * nrows + r);
    o[0] = ordered_sum8(N, [&](int64_t j) { return dn(j).re; });
    o[1] = ordered_sum8(N, [&](int64_t j) { return dn(j).im; });
    o[2] = ordered_sum8(N, [&](int64_t j) { return p2(j).re; });
    o[3] = ordered_sum8(N, [&](int64_t j) { return p2(j).im; });
  });
  parallel_for(B, QCD_LAMBDA(int64_t b) {
    if (frozen && frozen[b]) {
      dens[b * ld] = cl::complex_nan();
      phi2[b * ld] = cl::complex_nan();
      return;
    }
    double s[4] = {0.0, 0.0, 0.0, 0.0};
    for (int64_t r = 0; r < nrows; ++r)
      for (int k = 0; k < 4; ++k) s[k] += rows[4 * (b * nrows + r) + k];
    const double v = double(V);
    dens[b * ld] = C128{s[0] / v, s[1] / v};
    phi2[b * ld] = C128{s[2] / v, s[3] / v};
  });
}

// Euler step (out = phi) or Heun predictor (out = scratch) on every entry (a, x):
//   out = (phi + eps K) + noise.
template <bool kComplexNoise>
void bose_euler(const C128* phi, const C128* K, C128* out, int64_t B, int64_t V,
                const uint8_t* frozen, const double* eps, const double* sx, const double* sy,
                const double* noise, int64_t nn) {
  parallel_for_2d(B, 2 * V, QCD_LAMBDA(int64_t b, int64_t j) {
    if (frozen[b]) return;
    const int64_t e = 2 * b * V + j;
    const double* g = noise + b * nn;
    out[e] = cl::euler_update<kComplexNoise>(phi[e], K[e], eps[b], sx[b], sy[b], g[j],
                                              kComplexNoise ? g[2 * V + j] : 0.0);
  });
}

// Heun corrector: K~ = drift(phi~) at each site, then for a = 1, 2
//   phi = (phi + (eps/2)(K + K~)) + noise   (in place: a site reads only its own phi).
template <int D, bool kComplexNoise>
void bose_heun_corrector(C128* phi, const C128* K, const C128* pred, int64_t B, int64_t V,
                         const int32_t* nb, cl::BoseCoeffs c, const uint8_t* frozen,
                         const double* eps, const double* sx, const double* sy,
                         const double* noise, int64_t nn) {
  parallel_for_2d(B, V, QCD_LAMBDA(int64_t b, int64_t x) {
    if (frozen[b]) return;
    C128 kt[2];
    cl::bose_drift<D>(pred + 2 * b * V, pred + 2 * b * V + V, nb, x, c, kt[0], kt[1]);
    const double* g = noise + b * nn;
    for (int a = 0; a < 2; ++a) {
      const int64_t j = a * V + x, e = 2 * b * V + j;
      phi[e] = cl::heun_update<kComplexNoise>(phi[e], K[e], kt[a], eps[b], sx[b], sy[b], g[j],
                                              kComplexNoise ? g[2 * V + j] : 0.0);
    }
  });
}

// The Bose gas's noise of one step into noise (B, n): mc::fill_normal's numbers, bit for bit
// (purpose kRngLangevin; qcdhpc.kernels.cl.langevin_noise).  The GPU runs fill_normal itself.
// On the CPU the same Philox blocks and Box-Muller pairs are evaluated in separate loops over
// chunks of kNoiseChunk blocks: each loop vectorises (Philox words, then the double-precision
// Box-Muller), whereas fill_normal's one loop mixing both runs at about half the speed
// (11 vs 6 ns per site of real noise on a Sapphire Rapids core, docs/benchmarks.md).
constexpr int64_t kNoiseChunk = 64;

inline void bose_noise(double* out, int64_t B, int64_t n, uint64_t seed, uint64_t field0,
                       uint64_t step) {
#if defined(__CUDACC__)
  mc::fill_normal(out, B, n, seed, field0, step, mc::kRngLangevin);
#else
  const int64_t nfull = n / 4, nch = (nfull + kNoiseChunk - 1) / kNoiseChunk;
  parallel_for(B * nch, [=](int64_t u) {
    const int64_t b = u / nch, c0 = (u - b * nch) * kNoiseChunk;
    const int64_t m = nfull - c0 < kNoiseChunk ? nfull - c0 : kNoiseChunk;
    alignas(64) uint64_t wd[4][kNoiseChunk];
    alignas(64) double g[4][kNoiseChunk];
    const uint64_t key1 = field0 + uint64_t(b);
    uint64_t* const w[4] = {wd[0], wd[1], wd[2], wd[3]};
    philox4x64_10_lanes(m, Philox4x64{{uint64_t(c0), step, mc::kRngLangevin, 0}}, seed, key1, 1, 0, w);
#pragma omp simd
    for (int64_t i = 0; i < m; ++i) {
      box_muller(wd[0][i], wd[1][i], g[0][i], g[1][i]);
      box_muller(wd[2][i], wd[3][i], g[2][i], g[3][i]);
    }
    double* o = out + b * n + 4 * c0;
    for (int64_t i = 0; i < m; ++i)
      for (int e = 0; e < 4; ++e) o[4 * i + e] = g[e][i];
  });
  if (n % 4) {  // the last, partial block of each configuration, as fill_normal
    parallel_for(B, [=](int64_t b) {
      double g[4];
      mc::normal4(seed, field0 + uint64_t(b), step, mc::kRngLangevin, uint64_t(nfull), g[0], g[1],
                  g[2], g[3]);
      for (int64_t k = 0; k < n - 4 * nfull; ++k) out[b * n + 4 * nfull + k] = g[k];
    });
  }
#endif
}

// nsteps Langevin steps of B Bose-gas configurations, stage by stage over the
// batch (what the GPU runs; the CPU calls it per configuration, cl_cpu.cpp).
// Per step k (global step step0 + k):
//   drift pass (K, site values) -> per-configuration max -> runaway test, eps,
//   t, records of kmax and weight -> [record step: observables] -> noise ->
//   Euler update, or Heun predictor + corrector.
// After the last step the final state gets the runaway test.  nb: the
// neighbour table (bose_neighbour_table), shared by all configurations.
template <int D, bool kComplexNoise>
void bose_langevin_batch(C128* phi, int64_t B, int64_t N, int64_t V, const int32_t* nb,
                         cl::BoseCoeffs c, cl::StepParams p, int scheme, const double* kbar,
                         double* t, uint8_t* frozen, uint64_t seed, uint64_t field0,
                         uint64_t step0, int64_t nsteps, int64_t every, C128* dens, C128* phi2,
                         double* kmax_rec, double* w_rec, int64_t ld) {
  const int64_t n = 2 * B * V, nn = cl::bose_noise_len(V, kComplexNoise);
  const int64_t nch = (V + kMaxChunk - 1) / kMaxChunk;
  Buffer<C128> K_buf(n), pred_buf(scheme == cl::kHeun ? n : 0);
  Buffer<double> site_buf(B * V), chunk_buf(B * nch), max_buf(B), eps_buf(B), sx_buf(B), sy_buf(B);
  Buffer<double> noise_buf(B * nn), rows_buf(4 * B * (V / N));
  C128 *K = K_buf.data(), *pred = pred_buf.data();
  double *site = site_buf.data(), *mx = max_buf.data(), *eps = eps_buf.data();
  double *sx = sx_buf.data(), *sy = sy_buf.data(), *noise = noise_buf.data();
  const bool adaptive = kbar != nullptr;

  for (int64_t k = 0, r = 0; k < nsteps; ++k) {
    const bool rec = k == r * every;
    const int64_t rr = r;
    bose_drift_pass<D>(phi, K, site, frozen, B, V, nb, c, p.bound2);
    bose_field_max(site, B, V, frozen, chunk_buf.data(), mx);
    parallel_for(B, QCD_LAMBDA(int64_t b) {
      double km, e;
      cl::bose_step_control<kComplexNoise>(frozen[b], mx[b], adaptive, adaptive ? kbar[b] : 0.0, p, km, e,
                                           sx[b], sy[b], t[b]);
      eps[b] = e;
      if (rec) {
        kmax_rec[b * ld + rr] = km;
        w_rec[b * ld + rr] = e;
      }
    });
    if (rec) bose_observables<D>(phi, B, N, V, nb, c, frozen, rows_buf.data(), dens + rr, phi2 + rr, ld);
    bose_noise(noise, B, nn, seed, field0, step0 + uint64_t(k));
    if (scheme == cl::kHeun) {
      bose_euler<kComplexNoise>(phi, K, pred, B, V, frozen, eps, sx, sy, noise, nn);
      bose_heun_corrector<D, kComplexNoise>(phi, K, pred, B, V, nb, c, frozen, eps, sx, sy, noise, nn);
    } else {
      bose_euler<kComplexNoise>(phi, K, phi, B, V, frozen, eps, sx, sy, noise, nn);
    }
    r += rec ? 1 : 0;
  }
  // The final state's runaway test.
  bose_drift_pass<D>(phi, K, site, frozen, B, V, nb, c, p.bound2);
  bose_field_max(site, B, V, frozen, chunk_buf.data(), mx);
  parallel_for(B, QCD_LAMBDA(int64_t b) {
    if (!frozen[b] && mx[b] != mx[b]) frozen[b] = 1;
  });
  synchronize();
}

// The drift (B3) of every configuration into out (B, 2, V).
void bose_drift(const C128* phi, int64_t B, int64_t N, int D, cl::BoseCoeffs c, C128* out) {
  const int64_t V = cl::lattice_volume(N, D);
  dispatch_dim(D, [&](auto d) {
    constexpr int kD = decltype(d)::value;
    Buffer<int32_t> nb(V * 2 * kD);
    Buffer<double> site(B * V);
    bose_neighbour_table<kD>(N, V, nb.data());
    bose_drift_pass<kD>(phi, out, site.data(), nullptr, B, V, nb.data(), c, std::numeric_limits<double>::infinity());
  });
  synchronize();
}

// K_max = max over (a, x) of |K_a(x)| per configuration (NaN if phi is not finite).
void bose_kmax(const C128* phi, int64_t B, int64_t N, int D, cl::BoseCoeffs c, double* out) {
  const int64_t V = cl::lattice_volume(N, D), nch = (V + kMaxChunk - 1) / kMaxChunk;
  dispatch_dim(D, [&](auto d) {
    constexpr int kD = decltype(d)::value;
    Buffer<int32_t> nb(V * 2 * kD);
    Buffer<C128> K(2 * B * V);
    Buffer<double> site(B * V), chunk(B * nch);
    bose_neighbour_table<kD>(N, V, nb.data());
    bose_drift_pass<kD>(phi, K.data(), site.data(), nullptr, B, V, nb.data(), c, std::numeric_limits<double>::infinity());
    bose_field_max(site.data(), B, V, nullptr, chunk.data(), out);
  });
  parallel_for(B, QCD_LAMBDA(int64_t b) { out[b] = sqrt(out[b]); });
  synchronize();
}

// The density (B4) and <phi* phi> (B5) of every configuration, (B,) each.
void bose_observables(const C128* phi, int64_t B, int64_t N, int D, cl::BoseCoeffs c, C128* dens,
                      C128* phi2) {
  const int64_t V = cl::lattice_volume(N, D);
  dispatch_dim(D, [&](auto d) {
    constexpr int kD = decltype(d)::value;
    Buffer<int32_t> nb(V * 2 * kD);
    Buffer<double> rows(4 * B * (V / N));
    bose_neighbour_table<kD>(N, V, nb.data());
    bose_observables<kD>(phi, B, N, V, nb.data(), c, nullptr, rows.data(), dens, phi2, 1);
  });
  synchronize();
}

// The Langevin noise of B walkers / configurations at one step: out (B, n),
// row b from key (seed, offset + b), counters (blk, step, kRngLangevin, 0).
void langevin_noise(double* out, int64_t B, int64_t n, uint64_t seed, uint64_t offset,
                    uint64_t step) {
  bose_noise(out, B, n, seed, offset, step);  // = mc::fill_normal(..., mc::kRngLangevin)
  synchronize();
}

// The noise of W quartic walkers at one step: out (W, n), out[w n + i] = entry
// n step + i of walker offset + w's stream (cl::walker_noise_index; n = 1 or 2 in the kernels).
void quartic_noise(double* out, int64_t W, int64_t n, uint64_t seed, uint64_t offset,
                   uint64_t step) {
  parallel_for(W, QCD_LAMBDA(int64_t w) {
    for (int64_t i = 0; i < n; ++i) {
      const uint64_t j = uint64_t(n) * step + uint64_t(i);
      double g0, g1, g2, g3;
      cl::walker_normals4(seed, offset + uint64_t(w), j >> 2, g0, g1, g2, g3);
      out[w * n + i] = cl::pick4(j & 3, g0, g1, g2, g3);
    }
  });
  synchronize();
}

}  // namespace QCDHPC_BACKEND
}  // namespace qcdhpc
