// CPU backend of the complex Langevin (cl) family: the stages of
// qcdhpc/cl/langevin_stages.h compiled with OpenMP loops, plus the CPU's
// scheduling: quartic walkers in lane blocks (steps outer, a vector loop over
// the block's walkers inner, the block's state in L1), Bose-gas configurations
// one per thread (each runs the whole stage sequence on its own fields, which
// stay in cache).  Every walker and configuration does the same operations in
// the same order as on the GPU, so the results are the same bits.
#define QCDHPC_BACKEND cpu
#include <algorithm>

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
      if (B >= get_num_threads() || B * V < kOmpMinWork) {
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
