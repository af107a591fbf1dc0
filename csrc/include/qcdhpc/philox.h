// Philox4x64-10 counter-based random numbers (Salmon, Moraes, Dror, Shaw,
// "Parallel random numbers: as easy as 1, 2, 3", SC'11), host+device.
//
// Bit-compatible with numpy.random.Philox: for a key k and counter c, our
// philox4x64_10(c, k) equals Philox(key=k, counter=c-1).random_raw(4), because
// numpy increments its 256-bit counter *before* encrypting each block.  The
// test suite checks this bit for bit (tests/test_philox.py).
//
// Streams: a draw is addressed by (key, counter) alone, so the same numbers come
// out on CPU and GPU, on any MPI rank, after any restart.  How qcdhpc assigns
// keys and counters is written once in docs/conventions.md ("Random numbers").
#pragma once

#include "config.h"

#include <cmath>

namespace qcdhpc {

struct Philox4x64 {
  uint64_t v[4];
};

// Round multipliers and Weyl key increments of Philox4x64 (Random123 values).
constexpr uint64_t kPhiloxM0 = 0xD2E7470EE14C6C93ULL;
constexpr uint64_t kPhiloxM1 = 0xCA5A826395121157ULL;
constexpr uint64_t kPhiloxW0 = 0x9E3779B97F4A7C15ULL;  // golden ratio
constexpr uint64_t kPhiloxW1 = 0xBB67AE8584CAA73BULL;  // sqrt(3) - 1

QCD_INLINE void mulhilo64(uint64_t a, uint64_t b, uint64_t& hi, uint64_t& lo) {
#if defined(__CUDA_ARCH__)
  lo = a * b;
  hi = __umul64hi(a, b);
#else
  const unsigned __int128 p = static_cast<unsigned __int128>(a) * b;
  lo = static_cast<uint64_t>(p);
  hi = static_cast<uint64_t>(p >> 64);
#endif
}

QCD_INLINE Philox4x64 philox4x64_10(Philox4x64 ctr, uint64_t k0, uint64_t k1) {
  for (int round = 0; round < 10; ++round) {
    if (round > 0) {
      k0 += kPhiloxW0;
      k1 += kPhiloxW1;
    }
    uint64_t hi0, lo0, hi1, lo1;
    mulhilo64(kPhiloxM0, ctr.v[0], hi0, lo0);
    mulhilo64(kPhiloxM1, ctr.v[2], hi1, lo1);
    ctr = Philox4x64{{hi1 ^ ctr.v[1] ^ k0, lo1, hi0 ^ ctr.v[3] ^ k1, lo0}};
  }
  return ctr;
}

// Uniform double in the open interval (0, 1): the top 53 bits, centred in
// their bin, so log(u) in Box-Muller is always finite.
QCD_INLINE double uniform_open01(uint64_t w) {
  return (static_cast<double>(w >> 11) + 0.5) * 0x1.0p-53;
}

// Box-Muller: two open-interval uniforms -> two independent N(0,1) draws.
QCD_INLINE void box_muller(uint64_t wa, uint64_t wb, double& ga, double& gb) {
  const double r = sqrt(-2.0 * log(uniform_open01(wa)));
  const double theta = 6.283185307179586476925286766559 * uniform_open01(wb);
  ga = r * cos(theta);
  gb = r * sin(theta);
}

// What each counter word means in qcdhpc (docs/conventions.md):
//   key     = (seed, global chain index)
//   counter = (block, trajectory, purpose, 0)
enum RngPurpose : uint64_t { kRngMomentum = 0, kRngAccept = 1 };

// Four N(0,1) numbers for block `blk` of a chain's sites (sites 4blk..4blk+3).
QCD_INLINE void normal4(uint64_t seed, uint64_t chain, uint64_t traj, uint64_t purpose,
                        uint64_t blk, double g[4]) {
  const Philox4x64 w = philox4x64_10(Philox4x64{{blk, traj, purpose, 0}}, seed, chain);
  box_muller(w.v[0], w.v[1], g[0], g[1]);
  box_muller(w.v[2], w.v[3], g[2], g[3]);
}

// The Metropolis uniform of one trajectory of one chain.
QCD_INLINE double accept_uniform(uint64_t seed, uint64_t chain, uint64_t traj) {
  const Philox4x64 w = philox4x64_10(Philox4x64{{0, traj, kRngAccept, 0}}, seed, chain);
  return uniform_open01(w.v[0]);
}

}  // namespace qcdhpc
