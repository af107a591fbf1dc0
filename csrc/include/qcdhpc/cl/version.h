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
//   2: 2026-12, quartic walkers' noise as one stream of normals per walker, four per
//      Philox block: step s uses entries n s .. n s + n - 1 (n = 1 real, 2 complex noise),
//      entry j from counter (0, j div 4, kRngLangevinWalker = 3, 0) (cl/site.h,
//      walker_noise_index).  Version 1 drew one block per step and used one of its four
//      normals (real noise).  The Bose gas's noise and all update arithmetic are unchanged.
//   3: 2026-12, CPU build only: the Bose gas's bits are now the header arithmetic everywhere.
//      GCC 12's basic-block SLP had fused some complex products (vfmaddsub) despite
//      -ffp-contract=off, in some stages and inlining contexts (the drift pass for d <= 2, the
//      observables), so CPU Bose-gas runs rounded differently from cl/site.h and from the GPU;
//      cl_cpu.cpp is now built with -fno-tree-slp-vectorize (CMakeLists.txt).  Formulas, noise
//      and the GPU's numbers are unchanged; quartic walkers' bits are unchanged.
#pragma once

namespace qcdhpc {
namespace cl {

constexpr int kNumericsVersion = 3;

}  // namespace cl
}  // namespace qcdhpc
