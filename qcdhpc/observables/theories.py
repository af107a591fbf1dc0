"""Which observables `qcdhpc measure` takes for a file: one module per theory, chosen by the container's
`theory` attribute (legacy ensemble files are φ⁴).

A theory module provides (see phi4.py, the first one):

    NAME                      the theory attribute it serves
    check_layout(site, dtype) ValueError for configurations its estimators cannot take
    primaries(configs, params) per-configuration series {name: (B,) or (B, k)} of a batch; params =
                              the file's attributes (couplings)
    derive(means, site_shape) ensemble quantities from the primaries' means (Obs or jackknife samples)
    MAIN, HISTORY             the `observables` keys of the JSON (HISTORY: from an HMC history, else null)
    SCALAR_EXTRAS, VECTOR_EXTRAS   the `extras` keys
    TABLE_ROWS, TABLE_VECTORS      rows of measure's table
    DISTRIBUTIONS, FIELD_HISTOGRAM histograms {key: per-configuration primary}; key of the field's own
    COUPLINGS                 attributes that must agree for `--combine`

A theory of Langevin walkers (a `walkers` container) provides instead NAME, KINDS = ("walkers",),
measure_container(c) -> the JSON result, and print_table(result) (cl_quartic.py).

To add a theory: write its module here in qcdhpc/observables and add it to THEORIES.  Nothing in this
package may depend on how the configurations were generated.
"""
from __future__ import annotations

import importlib

THEORIES = {"phi4": "qcdhpc.observables.phi4", "cl-quartic": "qcdhpc.observables.cl_quartic",
            "cl-bose": "qcdhpc.observables.cl_bose"}


def known() -> tuple:
    return tuple(sorted(THEORIES))


def observables_for(theory, source=None):
    """The observable module of `theory`; ValueError (naming `source`) for a theory without one."""
    where = f"{source}: " if source is not None else ""
    if theory is None:
        raise ValueError(f"{where}the file names no theory (root attribute 'theory'), so measure cannot "
                         f"choose its observables (known: {', '.join(known())})")
    if theory not in THEORIES:
        raise ValueError(f"{where}no observables for theory {theory!r} (measure knows: {', '.join(known())})")
    return importlib.import_module(THEORIES[theory])
