"""Observables of lattice ensembles with honest errors (definitions: docs/observables.md).

    theories.py       which observable set a container gets, by its `theory` attribute
    phi4.py           the φ⁴ set: per-configuration estimators (M, S/V, φ moments) and the functions of
                      their means (χ₂, U_L, C(t), m_eff) — on batched numpy arrays or torch tensors
    correlator.py     zero-momentum time-slice correlator c(t), cosh effective mass
    distributions.py  histograms, KS and Hellinger distances between ensembles
    errors.py         Γ-method (pyerrors) for Markov chains, delete-one jackknife for independent samples;
                      the pyerrors file of the Obs
    measure.py        container files → JSON result; several files side by side, or as replicas
    format.py         value(error) and n_σ text, for measure's tables and the report
    arrays.py         numpy / torch batches → numpy
    plots.py          matplotlib figures of a comparison

This package does not know how samples were made (HMC, diffusion, complex Langevin).
"""
