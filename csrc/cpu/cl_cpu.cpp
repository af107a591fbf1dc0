// CPU backend of the complex Langevin (cl) family: the stages of
// qcdhpc/cl/langevin_stages.h compiled with OpenMP loops, plus the CPU's
// scheduling: quartic walkers in lane blocks (steps outer, a vector loop over
// the block's walkers inner, the block's state in L1), Bose-gas configurations
// in lane blocks of eight, one block per thread (the stage sequence on all eight
// at once, their fields interleaved so that the per-site math runs on contiguous
// vectors; a single configuration runs the stages themselves).  Every walker and
// configuration does the same operations in the same order as on the GPU, so the
// results are the same bits.
#define QCDHPC_BACKEND cpu
#include <algorithm>
#include <vector>

#include "qcdhpc/core/runtime.h"
#include "qcdhpc/cl/backend_api.h"
#include "qcdhpc/cl/langevin_stages.h"

namespace qcdhpc {
namespace cpu {

namespace {

// Walkers per lane block: 128 x 5 doubles of state, well inside L1.
constexpr int64_t kBlock = 128;
// Fewer walkers than this run with the GPU's schedule (quartic_walkers_flat): so the
// CPU tests also run that code path, and compare it with the lane blocks bit for bit.
constexpr int64_t kFlatBelow = 16;

// Normals of the current noise block of nb lanes: g[e][i] = entry e of lane i's block blk
// (cl::walker_normals4 = mc::normal4, the Philox words then the two Box-Muller pairs, each
// loop vectorised on its own: in one loop the compiler gives up on the mix of 64-bit integer
// and double work).  Same numbers as normal4.
inline void quartic_normals(int64_t nb, uint64_t seed, uint64_t walker0, uint64_t blk,
                            uint64_t (*wd)[kBlock], double (*g)[kBlock]) {
  uint64_t* const w[4] = {wd[0], wd[1], wd[2], wd[3]};
  philox4x64_10_lanes(nb, Philox4x64{{0, blk, mc::kRngLangevinWalker, 0}}, seed, walker0, 0, 1, w);
#pragma omp simd
  for (int64_t i = 0; i < nb; ++i) {
    box_muller(wd[0][i], wd[1][i], g[0][i], g[1][i]);
    box_muller(wd[2][i], wd[3][i], g[2][i], g[3][i]);
  }
}

// nb <= kBlock walkers, walker i of the block at z[i], global index walker0 + i.  Steps
// outer, one vector loop over the block's walkers inner, the normals of the current noise
// block in g (a new one every 4th step of real noise, every 2nd of complex).  (Fusing the
// Box-Muller pairs and a block's four steps into one loop, the normals in registers, runs
// ~20% slower with GCC 12: the wider loop body spills.)
template <int kScheme, bool kAdaptive, bool kComplexNoise>
QCD_FLATTEN void quartic_block(cl::C128* z, int64_t nb, cl::QuarticCoeffs c, cl::StepParams p,
                               const double* kbar, double* t, uint8_t* frozen, uint64_t seed,
                               uint64_t walker0, uint64_t step0, int64_t nsteps, int64_t every,
                               cl::C128* records, double* weights, int64_t ld) {
  alignas(64) double zr[kBlock], zi[kBlock], tt[kBlock], kb[kBlock];
  alignas(64) int64_t fl[kBlock];
  for (int64_t i = 0; i < nb; ++i) {
    zr[i] = z[i].re;
    zi[i] = z[i].im;
    tt[i] = t[i];
    fl[i] = frozen[i] ? 1 : 0;
    kb[i] = kAdaptive ? kbar[i] : 0.0;
  }
  // g[e][i]: entry e of lane i's current block of four normals (cl::walker_normals4).
  alignas(64) double g[4][kBlock], rr[kBlock], ri[kBlock], rw[kBlock];
  alignas(64) uint64_t wd[4][kBlock];
  for (int64_t k = 0, r = 0; k < nsteps; ++k) {
    const uint64_t j = cl::walker_noise_index<kComplexNoise>(step0 + uint64_t(k)), q = j & 3;
    if (k == 0 || q == 0) quartic_normals(nb, seed, walker0, j >> 2, wd, g);
    const double* gx = g[q];
    const double* gy = g[kComplexNoise ? q + 1 : q];
#pragma omp simd
    for (int64_t i = 0; i < nb; ++i)
      cl::quartic_walker_step<kScheme, kAdaptive, kComplexNoise>(
          zr[i], zi[i], tt[i], fl[i], kb[i], c, p, gx[i], kComplexNoise ? gy[i] : 0.0, rr[i],
          ri[i], rw[i]);
    if (k == r * every) {
      for (int64_t i = 0; i < nb; ++i) {
        records[i * ld + r] = cl::C128{rr[i], ri[i]};
        weights[i * ld + r] = rw[i];
      }
      ++r;
    }
  }
  for (int64_t i = 0; i < nb; ++i) {
    const bool bad = fl[i] != 0 || !cl::state_ok(cl::C128{zr[i], zi[i]}, p.bound2);
    z[i] = cl::C128{zr[i], zi[i]};
    t[i] = tt[i];
    frozen[i] = bad ? 1 : 0;
  }
}

// ------------------------------------------------------------------ Bose gas --
// Lane blocks of kLanes configurations: the fields of configuration b0 + l as lane l of
// arrays [entry (a, x) = a V + x][re, im][lane], so that every per-site function of
// cl/site.h runs on eight configurations at once with contiguous vector loads (the
// neighbour table is the same for all of them): no gathers, where one configuration per
// loop gathers its 8 D neighbours.  Every configuration does exactly the operations of
// bose_langevin_batch (cl/langevin_stages.h) in the same order; the maxima over sites are
// exact (cl::max_nan), so the order of sites is free; the observables run the stage
// itself on a copy of the configuration.  The lane loops are `GCC ivdep`, not `omp simd`:
// omp simd makes the accessors and the drift's outputs lane-private arrays, which GCC 12
// then fails to vectorise.
constexpr int64_t kLanes = 8;

struct LaneField {  // lane l: site i's (re, im) at f[16 i + l], f[16 i + 8 + l]
  const double* f;
  int64_t l;
  C128 operator()(int64_t i) const { return C128{f[16 * i + l], f[16 * i + 8 + l]}; }
};

// Noise blocks per chunk of the Philox / Box-Muller loops (32 words of 8 lanes each: 8 KiB).
constexpr int64_t kNoiseBlocks = 32;

template <int D, bool kComplexNoise>
QCD_FLATTEN void bose_lane_block(C128* phi, int64_t nl, int64_t N, int64_t V, const int32_t* nb,
                                 cl::BoseCoeffs c, cl::StepParams p, int scheme,
                                 const double* kbar, double* t, uint8_t* frozen, uint64_t seed,
                                 uint64_t field0, uint64_t step0, int64_t nsteps, int64_t every,
                                 C128* dens, C128* phi2, double* kmax_rec, double* w_rec,
                                 int64_t ld) {
  constexpr int64_t L = kLanes;
  const int64_t n2 = 2 * V, nn = cl::bose_noise_len(V, kComplexNoise), nblk = (nn + 3) / 4;
  const bool heun = scheme == cl::kHeun, adaptive = kbar != nullptr;
  std::vector<double> Fv(2 * L * n2, 0.0), Kv(2 * L * n2, 0.0), Pv(heun ? 2 * L * n2 : 0, 0.0);
  std::vector<double> Gv(L * 4 * nblk);
  std::vector<C128> tmp(n2);
  std::vector<double> rows(4 * (V / N));
  alignas(64) uint64_t wd[L * 4 * kNoiseBlocks];
  double *F = Fv.data(), *Kb = Kv.data(), *P = Pv.data(), *G = Gv.data();
  alignas(64) double tl[L], kb[L], eps[L], sx[L], sy[L], mx[L];
  alignas(64) int64_t live[L];
  uint8_t fr[L];
  for (int64_t l = 0; l < L; ++l) {
    const bool in = l < nl;
    tl[l] = in ? t[l] : 0.0;
    kb[l] = in && adaptive ? kbar[l] : 0.0;
    fr[l] = in ? frozen[l] : 1;
    for (int64_t j = 0; j < n2 && in; ++j) {
      F[16 * j + l] = phi[l * n2 + j].re;
      F[16 * j + 8 + l] = phi[l * n2 + j].im;
    }
  }
  // K = drift(F) and mx = max over sites of cl::bose_site_value, every lane.
  auto drift_pass = [&]() {
    for (int64_t l = 0; l < L; ++l) mx[l] = 0.0;
    for (int64_t x = 0; x < V; ++x) {
#pragma GCC ivdep
      for (int64_t l = 0; l < L; ++l) {
        const LaneField f1{F, l}, f2{F + 16 * V, l};
        C128 k1, k2;
        cl::bose_drift_of<D>(f1, f2, nb, x, c, k1, k2);
        Kb[16 * x + l] = k1.re;
        Kb[16 * x + 8 + l] = k1.im;
        Kb[16 * (V + x) + l] = k2.re;
        Kb[16 * (V + x) + 8 + l] = k2.im;
        mx[l] = cl::max_nan(mx[l], cl::bose_site_value(f1(x), f2(x), k1, k2, p.bound2));
      }
    }
  };
  for (int64_t k = 0, r = 0; k < nsteps; ++k) {
    const bool rec = k == r * every;
    drift_pass();
    for (int64_t l = 0; l < L; ++l) {  // bose_langevin_batch's per-configuration step
      double km, e;
      const bool lv = cl::bose_step_control<kComplexNoise>(fr[l], mx[l], adaptive, kb[l], p, km, e,
                                                            sx[l], sy[l], tl[l]);
      eps[l] = e;
      live[l] = lv ? 1 : 0;
      if (rec && l < nl) {
        kmax_rec[l * ld + r] = km;
        w_rec[l * ld + r] = e;
      }
    }
    if (rec) {
      for (int64_t l = 0; l < nl; ++l) {
        for (int64_t j = 0; j < n2; ++j) tmp[j] = C128{F[16 * j + l], F[16 * j + 8 + l]};
        bose_observables<D>(tmp.data(), 1, N, V, nb, c, fr + l, rows.data(), dens + l * ld + r,
                            phi2 + l * ld + r, ld);
      }
      ++r;
    }
    // The noise of this step (bose_noise's numbers): entry j of lane l at G[8 j + l].
    for (int64_t m0 = 0; m0 < nblk; m0 += kNoiseBlocks) {
      const int64_t mb = std::min(kNoiseBlocks, nblk - m0);
      philox4x64_10_key8(mb, Philox4x64{{uint64_t(m0), step0 + uint64_t(k), mc::kRngLangevin, 0}},
                         seed, field0, wd);
      double* g = G + 32 * m0;
      for (int64_t m = 0; m < mb; ++m) {
        const uint64_t* w = wd + 32 * m;
        double* o = g + 32 * m;
#pragma omp simd
        for (int64_t l = 0; l < L; ++l) {
          box_muller(w[l], w[l + 8], o[l], o[l + 8]);
          box_muller(w[l + 16], w[l + 24], o[l + 16], o[l + 24]);
        }
      }
    }
    // Euler step (in place) or Heun predictor (into P), bose_euler.
    double* out = heun ? P : F;
    for (int64_t j = 0; j < n2; ++j) {
#pragma GCC ivdep
      for (int64_t l = 0; l < L; ++l) {
        const C128 z{F[16 * j + l], F[16 * j + 8 + l]}, kk{Kb[16 * j + l], Kb[16 * j + 8 + l]};
        const C128 zn = cl::euler_update<kComplexNoise>(z, kk, eps[l], sx[l], sy[l], G[8 * j + l],
                                                        kComplexNoise ? G[8 * (n2 + j) + l] : 0.0);
        out[16 * j + l] = heun ? zn.re : cl::select(live[l] != 0, zn.re, z.re);
        out[16 * j + 8 + l] = heun ? zn.im : cl::select(live[l] != 0, zn.im, z.im);
      }
    }
    if (heun) {  // corrector, bose_heun_corrector
      for (int64_t x = 0; x < V; ++x) {
#pragma GCC ivdep
        for (int64_t l = 0; l < L; ++l) {
          C128 kt[2];
          cl::bose_drift_of<D>(LaneField{P, l}, LaneField{P + 16 * V, l}, nb, x, c, kt[0], kt[1]);
#pragma GCC unroll 2
          for (int a = 0; a < 2; ++a) {
            const int64_t j = a * V + x;
            const C128 z{F[16 * j + l], F[16 * j + 8 + l]}, kk{Kb[16 * j + l], Kb[16 * j + 8 + l]};
            const C128 zn = cl::heun_update<kComplexNoise>(
                z, kk, kt[a], eps[l], sx[l], sy[l], G[8 * j + l],
                kComplexNoise ? G[8 * (n2 + j) + l] : 0.0);
            F[16 * j + l] = cl::select(live[l] != 0, zn.re, z.re);
            F[16 * j + 8 + l] = cl::select(live[l] != 0, zn.im, z.im);
          }
        }
      }
    }
  }
  drift_pass();  // the final state's runaway test
  for (int64_t l = 0; l < nl; ++l) {
    if (!fr[l] && mx[l] != mx[l]) fr[l] = 1;
    frozen[l] = fr[l];
    t[l] = tl[l];
    for (int64_t j = 0; j < n2; ++j) phi[l * n2 + j] = C128{F[16 * j + l], F[16 * j + 8 + l]};
  }
}

}  // namespace

void quartic_langevin(cl::C128* z, int64_t W, cl::QuarticCoeffs c, cl::StepParams p, int scheme,
                      bool complex_noise, const double* kbar, double* t, uint8_t* frozen,
                      uint64_t seed, uint64_t walker0, uint64_t step0, int64_t nsteps,
                      int64_t every, cl::C128* records, double* weights) {
  const int64_t ld = (nsteps + every - 1) / every, nblocks = (W + kBlock - 1) / kBlock;
  dispatch_quartic(scheme, kbar != nullptr, complex_noise, [&](auto s, auto a, auto n) {
    constexpr int kS = decltype(s)::value;
    constexpr bool kA = decltype(a)::value, kN = decltype(n)::value;
    if (W < kFlatBelow) {  // the GPU's schedule, walker by walker (lanes gain nothing here)
      quartic_walkers_flat<kS, kA, kN>(z, W, c, p, kbar, t, frozen, seed, walker0, step0, nsteps,
                                       every, records, weights, ld);
      return;
    }
#pragma omp parallel for schedule(static) if (nblocks > 1 && get_num_threads() > 1)
    for (int64_t u = 0; u < nblocks; ++u) {
      const int64_t w = u * kBlock;
      quartic_block<kS, kA, kN>(z + w, std::min(kBlock, W - w), c, p, kA ? kbar + w : nullptr,
                                t + w, frozen + w, seed, walker0 + uint64_t(w), step0, nsteps,
                                every, records + w * ld, weights + w * ld, ld);
    }
  });
}

// Configurations to threads when there are at least as many as threads (or the
// batch is small): each runs bose_langevin_batch on B = 1, its stages plain
// vectorised loops (go_parallel() is false inside the region); otherwise the
// stages are parallel over sites.  Same arithmetic per configuration either way.
void bose_langevin(cl::C128* phi, int64_t B, int64_t N, int D, cl::BoseCoeffs c, cl::StepParams p,
                   int scheme, bool complex_noise, const double* kbar, double* t, uint8_t* frozen,
                   uint64_t seed, uint64_t field0, uint64_t step0, int64_t nsteps, int64_t every,
                   cl::C128* dens, cl::C128* phi2, double* kmax, double* weights) {
  const int64_t V = cl::lattice_volume(N, D), ld = (nsteps + every - 1) / every;
  dispatch_dim(D, [&](auto d) {
    constexpr int kD = decltype(d)::value;
    Buffer<int32_t> nb_buf(V * 2 * kD);
    const int32_t* nb = nb_buf.data();
    bose_neighbour_table<kD>(N, V, nb_buf.data());
    auto run = [&](auto cn) {
      constexpr bool kN = decltype(cn)::value;
      if (B >= 2 && (B >= get_num_threads() || B * V < kOmpMinWork)) {
        // Lane blocks of kLanes configurations, one block per thread.
        const int64_t nlb = (B + kLanes - 1) / kLanes;
#pragma omp parallel for schedule(dynamic, 1) if (nlb > 1 && get_num_threads() > 1)
        for (int64_t u = 0; u < nlb; ++u) {
          const int64_t b = u * kLanes;
          bose_lane_block<kD, kN>(phi + 2 * b * V, std::min(kLanes, B - b), N, V, nb, c, p, scheme,
                                  kbar ? kbar + b : nullptr, t + b, frozen + b, seed,
                                  field0 + uint64_t(b), step0, nsteps, every, dens + b * ld,
                                  phi2 + b * ld, kmax + b * ld, weights + b * ld, ld);
        }
      } else if (B >= get_num_threads() || B * V < kOmpMinWork) {
#pragma omp parallel for schedule(dynamic, 1) if (B > 1 && get_num_threads() > 1)
        for (int64_t b = 0; b < B; ++b)
          bose_langevin_batch<kD, kN>(phi + 2 * b * V, 1, N, V, nb, c, p, scheme,
                                      kbar ? kbar + b : nullptr, t + b, frozen + b, seed,
                                      field0 + uint64_t(b), step0, nsteps, every, dens + b * ld,
                                      phi2 + b * ld, kmax + b * ld, weights + b * ld, ld);
      } else {
        bose_langevin_batch<kD, kN>(phi, B, N, V, nb, c, p, scheme, kbar, t, frozen, seed, field0,
                                    step0, nsteps, every, dens, phi2, kmax, weights, ld);
      }
    };
    if (complex_noise)
      run(std::true_type{});
    else
      run(std::false_type{});
  });
}

}  // namespace cpu
}  // namespace qcdhpc
