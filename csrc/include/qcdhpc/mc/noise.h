// Noise fills: a batch of fields of N(0,1) Philox draws (HMC momenta, Langevin
// noise), in the stream layout of streams.h.  A stage (it launches): include it
// only from backend translation units, after core/parallel_for.h's choice of
// OpenMP or CUDA.
#pragma once

#include "../core/parallel_for.h"
#include "streams.h"

namespace qcdhpc {
namespace mc {

// out holds B chains of V values each, chain b at out + b*V.  Chain b uses key
// (seed, chain0 + b); block blk of 4 sites uses counter (blk, traj, purpose, 0).
// Draws are made in double and rounded to Real.
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

}  // namespace mc
}  // namespace qcdhpc
