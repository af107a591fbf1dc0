"""Complex Langevin (CL): models with complex actions and their exact references.

    models.py     Quartic (S = σ₀z²/2 + λz⁴/4, complex σ₀) and BoseGas (relativistic Bose gas at
                  chemical potential μ on an N^d lattice): validated parameters (pure Python at import)
                  with action, drift = −∂S and the observables' per-configuration estimators
    exact.py      exact references the CL family is tested against: quartic Z, moments and cumulants
                  (quadrature and closed forms); free Bose gas ⟨φ*φ⟩, ⟨n⟩, ln Z by the lattice
                  Fourier sum

Later: kernels (CL updates), driver (runs on qcdhpc/run), observables.
"""
