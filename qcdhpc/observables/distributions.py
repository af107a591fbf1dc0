"""Histograms and distances between distributions (beyond moments; docs/observables.md).

A generator can reproduce ⟨M⟩, χ₂ and U_L and still get the shape of P(M) wrong (e.g. too narrow
peaks with too much weight between them).  We compare samples of a per-configuration quantity
(M, S/V) of two ensembles by

* the Kolmogorov–Smirnov statistic D = sup_x |F_a(x) − F_b(x)| (scipy.stats.ks_2samp), with a
  p-value from the asymptotic Kolmogorov distribution using *effective* sample sizes
  n_eff = n / (2 τ_int): Markov samples are correlated, and scipy's p-value (which assumes
  independent draws) would be far too small for them;
* the Hellinger distance of histograms on common bins, H² = 1 − Σ_i √(p_i q_i) ∈ [0, 1]
  (p, q bin probabilities).  Even two samples of one distribution give H > 0: its noise floor is
  about √(n_bins / (8 n_eff)) for equal sample sizes, so compare with that, not with 0.
"""
from __future__ import annotations

import math

import numpy as np

DEFAULT_BINS = 50
# Peak memory per bin of one histogram on its way to the JSON: the numpy arrays of np.histogram
# (counts, edges, density, temporaries), their Python lists (a float object and a pointer per entry,
# copied once more by json_safe), and the indented JSON text of edges and density (built, then joined).
# Measured: ~0.3 kB per bin and histogram; 0.5 kB leaves room for allocator slack (tests/test_measure_
# refusals.py checks that a real run grows by less than the estimate, and by more than a fifth of it).
BYTES_PER_BIN = 512


def histogram_bytes(bins: int, n_histograms: int) -> int:
    """Estimated peak memory of n_histograms histograms of `bins` bins (for resources.check_fits)."""
    return int(BYTES_PER_BIN) * int(bins) * int(n_histograms)


def histogram(samples, bins=DEFAULT_BINS, range=None) -> dict:
    """{"edges", "density"} of a sample (density integrates to 1 over the edges)."""
    samples = np.asarray(samples, dtype=np.float64).ravel()
    density, edges = np.histogram(samples, bins=bins, range=range, density=True)
    return {"edges": edges.tolist(), "density": density.tolist()}


class FieldHistogram:
    """The 1-point distribution of φ over all sites of all configurations, accumulated batch by
    batch (bounded memory) on fixed bins."""

    def __init__(self, lo: float, hi: float, bins: int = DEFAULT_BINS):
        if not hi > lo:  # a constant field: give the bins a width
            lo, hi = lo - 0.5, hi + 0.5
        self.edges = np.linspace(lo, hi, bins + 1)
        self.counts = np.zeros(bins, dtype=np.int64)

    def add(self, configs) -> None:
        from .arrays import as_numpy

        self.counts += np.histogram(as_numpy(configs).ravel(), bins=self.edges)[0]

    def result(self) -> dict:
        widths = np.diff(self.edges)
        total = self.counts.sum()
        density = self.counts / (total * widths) if total else np.zeros_like(widths)
        return {"edges": self.edges.tolist(), "density": density.tolist()}


def hellinger(a, b, bins=DEFAULT_BINS) -> float:
    """Hellinger distance of the histograms of samples a and b on common equal-width bins spanning both."""
    a, b = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
    edges = np.histogram_bin_edges(np.concatenate([a, b]), bins=bins)
    p = np.histogram(a, bins=edges)[0] / len(a)
    q = np.histogram(b, bins=edges)[0] / len(b)
    return math.sqrt(max(0.0, 1.0 - float(np.sqrt(p * q).sum())))


def ks(a, b, tau_a: float = 0.5, tau_b: float = 0.5) -> dict:
    """{"D", "p_eff"}: two-sample KS statistic and its p-value with n_eff = n/(2τ_int) per sample."""
    from scipy import stats

    a, b = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
    D = float(stats.ks_2samp(a, b).statistic)
    na = len(a) / (2 * max(tau_a, 0.5)) if math.isfinite(tau_a) else len(a)
    nb = len(b) / (2 * max(tau_b, 0.5)) if math.isfinite(tau_b) else len(b)
    # P(D > d) → Q_KS(√(n_a n_b/(n_a+n_b)) d) for large samples (Kolmogorov's limit law).
    p = float(stats.kstwobign.sf(D * math.sqrt(na * nb / (na + nb))))
    return {"D": D, "p_eff": p}


def compare(a, b, tau_a: float = 0.5, tau_b: float = 0.5, bins=DEFAULT_BINS) -> dict:
    """{"ks_D", "ks_p_eff", "hellinger"} of samples a against b."""
    k = ks(a, b, tau_a, tau_b)
    return {"ks_D": k["D"], "ks_p_eff": k["p_eff"], "hellinger": hellinger(a, b, bins)}
