// The numerics version of the phi^4 family: bumped whenever a phi^4 chain's
// bits could change for the same (seed, chain, trajectory, start field) -- new
// operations or a new order of them in any HMC stage, or a decision rule that
// could come out differently at rounding level.  A checkpointed run records it
// (ensemble attribute `kernel_numerics`) and refuses to resume under another
// value (qcdhpc/phi4/ensemble.py), because the continued chain could not equal
// an unbroken one.  Each family has its own version (docs/conventions.md,
// "Numerics versions"): a change to another family's kernels does not touch
// phi^4 resumes, and one to shared code (core/, mc/) bumps every family whose
// bits it can change.  Exported as _qcdhpc_cpu.phi4.numerics_version and
// qcdhpc.kernels.phi4.NUMERICS_VERSION.
//
// History:
//   1: up to 2026-11-30
//   2: 2026-12-01, fused multiply-adds in kick, drift and Box-Muller (qcdhpc::fmadd)
//   3: 2026-12-02, Metropolis test as log_positive(u) < -dH with qcdhpc's own log
//      (mc/metropolis.h) instead of u < exp(-dH) with libm's / CUDA's exp, so host
//      and device decide with the same bits.  The two rules can disagree only when
//      log u and -dH agree to about an ulp (measure zero in practice: the reference
//      ensembles of the change were bit-identical), but a decision that flips would
//      change the rest of the chain, so resumes across the change are refused.
#pragma once

namespace qcdhpc {
namespace phi4 {

constexpr int kNumericsVersion = 3;

}  // namespace phi4
}  // namespace qcdhpc
