// Molecular-dynamics integrators as one schedule of fused steps, written once
// for every driver (the batch stages, the CPU lane blocks, any family with a
// separable Hamiltonian H = p^2/2 + S(q)).  Host code: it sequences stages.
#pragma once

#include <cstdint>

namespace qcdhpc {
namespace mc {

enum Integrator : int { kLeapfrog = 0, kOmelyan = 1 };

// Omelyan-Mryglod-Folk 2MN parameter, Comput. Phys. Commun. 151 (2003) 272,
// chosen to minimise the leading error coefficient of the second-order scheme.
constexpr double kOmelyanLambda = 0.1931833275037836;

// nmd steps of size eps, reversible and area-preserving.  Adjacent half-kicks
// of consecutive steps are merged (one force per step for leapfrog, two for
// Omelyan) and each kick is fused with the drift after it:
// step(dt_kick, dt_drift) does p += dt_kick F(phi); phi += dt_drift p, and
// kick(dt) the final p += dt F(phi).
template <class Step, class Kick>
inline void md_schedule(int integrator, double eps, int64_t nmd, Step&& step, Kick&& kick) {
  if (nmd <= 0) return;
  if (integrator == kLeapfrog) {
    // p += eps/2 F; phi += eps p; [p += eps F; phi += eps p] x (nmd-1); p += eps/2 F.
    step(0.5 * eps, eps);
    for (int64_t s = 1; s < nmd; ++s) step(eps, eps);
    kick(0.5 * eps);
  } else {
    // Omelyan 2MN, per step: p += l eps F; phi += eps/2 p; p += (1-2l) eps F;
    // phi += eps/2 p; p += l eps F  (the last kick merged with the next step's first).
    const double l = kOmelyanLambda;
    step(l * eps, 0.5 * eps);
    step((1.0 - 2.0 * l) * eps, 0.5 * eps);
    for (int64_t s = 1; s < nmd; ++s) {
      step(2.0 * l * eps, 0.5 * eps);
      step((1.0 - 2.0 * l) * eps, 0.5 * eps);
    }
    kick(l * eps);
  }
}

}  // namespace mc
}  // namespace qcdhpc
