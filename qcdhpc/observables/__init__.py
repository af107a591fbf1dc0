"""Estimators (`phi4`) and Γ-method error analysis (`errors`) on arrays + metadata.

This package does not know how samples were made (HMC, diffusion, complex Langevin).
"""
