// qcdhpc's random streams: which Philox key and counter a Monte Carlo draw uses
// (docs/conventions.md, "Random numbers").  Shared by every family that draws
// per chain and per trajectory (or Langevin step):
//   key     = (seed, global chain index)
//   counter = (block, trajectory, purpose, 0)
// A draw therefore depends on (seed, chain, trajectory) only -- not on batching,
// MPI rank, backend or restarts.
#pragma once

#include "../core/philox.h"

namespace qcdhpc {
namespace mc {

// Counter word 2.  New purposes get new values; existing ones never change.
// kRngLangevinWalker (cl numerics version 2): a quartic walker's noise as one stream of
// normals, four per Philox block (cl/site.h, walker_noise_index).
enum RngPurpose : uint64_t { kRngMomentum = 0, kRngAccept = 1, kRngLangevin = 2, kRngLangevinWalker = 3 };

// Four N(0,1) numbers for block `blk` of a chain's sites (sites 4blk..4blk+3).
// Scalars out, not an array: an array would keep the host compiler from
// vectorising loops whose lanes are chains (cpu/phi4_lanes.h).
QCD_INLINE void normal4(uint64_t seed, uint64_t chain, uint64_t traj, uint64_t purpose,
                        uint64_t blk, double& g0, double& g1, double& g2, double& g3) {
  const Philox4x64 w = philox4x64_10(Philox4x64{{blk, traj, purpose, 0}}, seed, chain);
  box_muller(w.v[0], w.v[1], g0, g1);
  box_muller(w.v[2], w.v[3], g2, g3);
}

// The Metropolis uniform of one trajectory of one chain: word 0 of counter
// (0, traj, kRngAccept, 0), in the open interval (0, 1).
QCD_INLINE double accept_uniform(uint64_t seed, uint64_t chain, uint64_t traj) {
  const Philox4x64 w = philox4x64_10(Philox4x64{{0, traj, kRngAccept, 0}}, seed, chain);
  return uniform_open01(w.v[0]);
}

}  // namespace mc
}  // namespace qcdhpc
