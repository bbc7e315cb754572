"""Statistics of binned counts, one row per feature: PSI, Jensen-Shannon distance, chi-square, sparse pooling.

Each function takes two (features x bins) count matrices, reference and current, with the same bins.

* PSI = sum over bins of (q - p) ln(q / p), natural log, shares floored at ``EPS`` so an empty bin stays
  finite (a symmetric divergence, not a distance; 0 for identical shares, unbounded);
* JS = Jensen-Shannon **distance**: the square root of the JS divergence with log base 2, in [0, 1]
  (``scipy.spatial.distance.jensenshannon(p, q, base=2)``);
* chi-square: Pearson's test of homogeneity of the 2 x bins table, no continuity correction, bins empty in
  both rows dropped (``scipy.stats.chi2_contingency(table, correction=False)``);
* :func:`pool_sparse` merges the bins whose expected count in the smaller batch is below 5 into one bin
  (Cochran's rule), so the chi-square approximation holds and a high-cardinality column's rare categories do
  not inflate PSI and JS with sampling noise.
"""

from __future__ import annotations

import numpy as np

EPS = 1e-4
MIN_EXPECTED = 5.0


def psi(ref: np.ndarray, cur: np.ndarray) -> np.ndarray:
    """Population stability index per row of two count matrices (empty bins smoothed by EPS)."""
    p = np.maximum(ref / np.maximum(ref.sum(axis=1, keepdims=True), 1), EPS)
    q = np.maximum(cur / np.maximum(cur.sum(axis=1, keepdims=True), 1), EPS)
    return np.asarray(((q - p) * np.log(q / p)).sum(axis=1))


def js_distance(ref: np.ndarray, cur: np.ndarray) -> np.ndarray:
    """Jensen-Shannon distance (base 2, in [0, 1]) per row of two count matrices."""
    p = ref / np.maximum(ref.sum(axis=1, keepdims=True), 1)
    q = cur / np.maximum(cur.sum(axis=1, keepdims=True), 1)
    m = (p + q) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        kl_p = np.where(p > 0, p * np.log2(p / m), 0.0).sum(axis=1)
        kl_q = np.where(q > 0, q * np.log2(q / m), 0.0).sum(axis=1)
    return np.asarray(np.sqrt(np.clip((kl_p + kl_q) / 2, 0.0, 1.0)))


def chi2_pvalue(ref: np.ndarray, cur: np.ndarray) -> np.ndarray:
    """Pearson chi-square homogeneity p-value per row of two count matrices (empty bins dropped)."""
    from scipy.stats import chi2

    table = np.stack([ref, cur], axis=1)  # (rows, 2, bins)
    keep = table.sum(axis=1) > 0
    expected = (
        table.sum(axis=2, keepdims=True)
        * table.sum(axis=1, keepdims=True)
        / np.maximum(table.sum(axis=(1, 2), keepdims=True), 1)
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        stat = np.where(keep[:, None, :], (table - expected) ** 2 / np.where(expected > 0, expected, 1), 0.0)
    dof = np.maximum(keep.sum(axis=1) - 1, 1)
    return np.asarray(chi2.sf(stat.sum(axis=(1, 2)), dof))


def pool_sparse(ref: np.ndarray, cur: np.ndarray, min_expected: float = MIN_EXPECTED) -> tuple[np.ndarray, np.ndarray]:
    """Move the bins whose expected count in the smaller batch is below ``min_expected`` into one extra bin.

    Returns both matrices with one more column (the pooled bin, last); pooled bins are zeroed in place.
    """
    n_ref, n_cur = ref.sum(axis=1, keepdims=True), cur.sum(axis=1, keepdims=True)
    expected = (ref + cur) * np.minimum(n_ref, n_cur) / np.maximum(n_ref + n_cur, 1)
    sparse = (expected < min_expected) & ((ref + cur) > 0)
    out = []
    for m in (ref, cur):
        pooled = np.where(sparse, m, 0.0).sum(axis=1, keepdims=True)
        out.append(np.hstack([np.where(sparse, 0.0, m), pooled]))
    return out[0], out[1]
