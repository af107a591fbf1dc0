// The numerics version of the complex Langevin (cl) family: bumped whenever a
// walker's or field's bits could change for the same (seed, index, step, start)
// -- new operations or a new order of them in a Langevin stage, another noise
// layout, another runaway rule.  Recorded by checkpointed CL runs, which refuse
// to resume under another value (docs/conventions.md, "Numerics versions").
// Exported as _qcdhpc_cpu.cl.numerics_version and qcdhpc.kernels.cl.NUMERICS_VERSION.
//
// History:
//   1: 2026-12, first recorded arithmetic: Euler-Maruyama and stochastic Heun,
//      fixed or adaptive step (Aarts, James, Seiler, Stamatescu, PLB 687 (2010)
//      154), real or complex noise, quartic walkers and the Bose gas (cl/site.h,
//      cl/langevin_stages.h), noise counters (blk, step, kRngLangevin, 0).
#pragma once

namespace qcdhpc {
namespace cl {

constexpr int kNumericsVersion = 1;

}  // namespace cl
}  // namespace qcdhpc
