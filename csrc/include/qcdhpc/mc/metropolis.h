// The Metropolis test (Metropolis et al. 1953; in HMC, Duane, Kennedy,
// Pendleton, Roweth 1987): accept with probability min(1, exp(-dH)).
//
// Decided as  dH <= 0  or  log(u) < -dH,  u uniform in (0, 1), with qcdhpc's
// own log (core/philox.h, log_positive: branch-free, explicit FMAs) -- not
// u < exp(-dH) with libm's or CUDA's exp, which may differ in the last ulp
// between host and device and so could, in principle, make the CPU and the GPU
// decide differently for the same (dH, u).  For exact arithmetic the two rules
// are the same event; with rounding they can differ only when log(u) and -dH
// agree to about an ulp (tests/test_philox.py measures this).  A NaN dH (a
// diverged trajectory) fails both comparisons and is rejected; dH = +inf is
// rejected, dH = -inf accepted.
#pragma once

#include "../core/philox.h"
#include "streams.h"

namespace qcdhpc {
namespace mc {

// u in (0, 1): the open interval of uniform_open01, so log_positive is finite.
QCD_INLINE bool metropolis_accept(double dH, double u) {
  return dH <= 0.0 || log_positive(u) < -dH;
}

// The test of trajectory `traj` of chain `chain`, with its Philox uniform.
QCD_INLINE bool metropolis_accept(double dH, uint64_t seed, uint64_t chain, uint64_t traj) {
  return metropolis_accept(dH, accept_uniform(seed, chain, traj));
}

}  // namespace mc
}  // namespace qcdhpc
