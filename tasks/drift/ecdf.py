"""Exact two-sample statistics of empirical distributions: Wasserstein-1 and Kolmogorov-Smirnov.

For samples ``a`` (n values) and ``b`` (m values) with empirical CDFs F and G:

* W1 = integral over the real line of |F(x) - G(x)| dx, exactly (the definition
  ``scipy.stats.wasserstein_distance`` computes; in the units of the data);
* KS D = sup |F(x) - G(x)|, and its two-sided asymptotic p-value (Smirnov's limit law, as
  ``scipy.stats.ks_2samp(method="asymp")``: ``kstwo.sf(D, round(n m / (n + m)))``).

Both come from one stable merge of the distinct values of the two already sorted samples (timsort merges
two sorted runs in linear time); the cumulative count of the last run of each sample seen along the merge
is n F and m G at every merged point. A value present in both samples appears twice with width 0 between,
so the KS maximum skips it. A column costs O(n + m) after the sorts the drift pass does anyway, and much
less on tied columns.
"""

from __future__ import annotations

import math

import numpy as np

Runs = tuple[np.ndarray, np.ndarray]  # distinct sorted values, and how many values are <= each (int64)


def runs(x: np.ndarray) -> Runs:
    """Compress a sorted 1-D sample without NaN into its distinct values and cumulative counts.

    Real columns are heavily tied (minutes, codes, distances), so the merge below runs over the distinct
    values only; the drift profile keeps the reference's runs.
    """
    if len(x) == 0:
        return x, np.zeros(0, dtype=np.int64)
    ends = np.flatnonzero(x[1:] != x[:-1])
    if len(ends) == len(x) - 1:  # all distinct: nothing to compress
        return x, np.arange(1, len(x) + 1, dtype=np.int64)
    ends = np.append(ends, len(x) - 1)
    return x[ends], ends + 1


def w1_ks_runs(a: Runs, b: Runs) -> tuple[float, float]:
    """Exact W1 and KS statistic of two samples given as :func:`runs` (NaN, NaN when one is empty)."""
    (va, ca), (vb, cb) = a, b
    if len(va) == 0 or len(vb) == 0:
        return math.nan, math.nan
    n, m = int(ca[-1]), int(cb[-1])
    values = np.concatenate([va, vb])
    order = np.argsort(values, kind="stable")  # two sorted runs: one linear merge
    width = np.diff(values[order])
    # each run moves n m (F - G) by +m or -n per value: integer running sums, so F - G is exact
    if len(va) == n and len(vb) == m:  # no ties inside either sample: every step is one value
        steps = np.where(order[:-1] < n, m, -n)
    else:
        steps = np.concatenate([np.diff(ca, prepend=0) * m, np.diff(cb, prepend=0) * -n])[order[:-1]]
    gap = np.abs(np.cumsum(steps)) * (1.0 / (n * m))
    ks = float(gap.max(where=width > 0, initial=0.0))
    w1 = float(np.multiply(gap, width, out=gap).sum())  # not np.dot: BLAS threads cost more than they save
    return w1, ks


def w1_ks_sorted(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Exact W1 and KS statistic of two sorted 1-D samples without NaN (NaN, NaN when one is empty).

    Args:
        a: first sample, sorted ascending.
        b: second sample, sorted ascending.
    """
    return w1_ks_runs(runs(a), runs(b))


def ks_pvalue(d: np.ndarray, n: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Two-sided asymptotic KS p-values for statistics ``d`` of samples of sizes ``n`` and ``m``.

    Where a size is 0 or ``d`` is NaN the p-value is 1.0 (no evidence of a difference).
    """
    from scipy.stats import kstwo

    n_f, m_f = np.asarray(n, dtype=np.float64), np.asarray(m, dtype=np.float64)
    en = np.round(np.divide(n_f * m_f, n_f + m_f, out=np.zeros_like(n_f), where=(n_f + m_f) > 0))
    ok = (en >= 1) & ~np.isnan(d)
    p = np.ones_like(en)
    if ok.any():
        p[ok] = np.clip(kstwo.sf(np.asarray(d)[ok], en[ok]), 0.0, 1.0)
    return p
