"""Per-feature drift: effect sizes and significance, vectorized over all columns at once.

NOTE: the decision rule (:func:`tasks.drift.report.feature_drifts`) flags a feature when its shift is both
**significant** and **material**. Significant: the feature's p-value is below ``alpha / k`` for k features
tested (Bonferroni, so the chance that any feature of a same-distribution batch alarms is at most
``alpha``); a numeric feature's p-value is ``min(1, 2 min(p_chi2, p_ks))`` (Bonferroni over its two tests),
a categorical one's is ``p_chi2``. Material: PSI, JS distance or W1/std at or above its materiality
threshold. Significance alone flags trivial shifts at n = 100k; effect size alone flags noise at small n
(two samples of 150 from one distribution give JS about 0.15 over 10 bins). Measured error rates:
``benchmarks/drift_error_rates.py`` and docs/drift.md.

Definitions (what every report states):

* bins: numeric columns use the reference's deciles (interior edges; duplicates dropped for discrete
  columns; a value equal to an edge falls in the bin to its left, ``(lo, hi]``) plus a missing bin;
  categorical columns the 50 categories most frequent in both batches together + "other" + missing (chosen
  on both: chosen on the reference alone they favour its chance-frequent categories); then the bins whose
  expected count in the smaller batch is below 5 are pooled into one (Cochran's rule; ``binned.py``);
* PSI = sum (q - p) ln(q / p) over bins, natural log, shares floored at ``EPS`` = 1e-4 (a divergence);
* JS = Jensen-Shannon **distance** (square root of the divergence), log base 2, in [0, 1];
* W1/std = exact Wasserstein-1 of the two empirical distributions of the non-missing values
  (``scipy.stats.wasserstein_distance``) divided by the reference's population std (ddof 0; by 1 when that
  std is 0, so a constant reference reports W1 in data units);
* p_chi2 = Pearson chi-square test of homogeneity on the bins (no continuity correction, empty bins
  dropped); p_ks = two-sided asymptotic two-sample Kolmogorov-Smirnov test on the non-missing values.

How one pass works (numeric columns): the reference is sorted once (``np.sort(axis=0)``; NaN sorts last)
and its distinct values are kept with their cumulative counts; bin counts of a batch are differences of
``np.searchsorted`` of the few edges into each sorted column; W1 and KS come from one linear merge of the
distinct values of the two columns (``tasks/drift/ecdf.py``); PSI, JS and chi-square run on one padded
(columns x bins) count matrix.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from tasks.drift.binned import EPS, chi2_pvalue, js_distance, pool_sparse, psi
from tasks.drift.ecdf import Runs, ks_pvalue, runs, w1_ks_runs

__all__ = [
    "EPS",
    "EffectSizes",
    "ReferenceProfile",
    "Thresholds",
    "chi2_pvalue",
    "effect_sizes",
    "js_distance",
    "profile_reference",
    "psi",
    "split_columns",
]


@dataclass(frozen=True)
class Thresholds:
    """Materiality thresholds and the family-wise significance level of the decision rule (see NOTE).

    A feature drifts when its p-value is below ``alpha / k`` (k features tested) AND one effect size is at or
    above its threshold. The defaults sit near a small effect (Cohen's d = 0.2): for a normal feature shifted
    by d standard deviations, W1/std = d, and over deciles PSI is 0.031 at d = 0.18 (0.038 at 0.2) and the
    JS distance 0.10 at d = 0.24; a 10-point shift of a category's share (0.5/0.3/0.2 -> 0.4/0.4/0.2) has
    PSI 0.051 and JS 0.096. Below these, a shift counts as immaterial however significant.

    Args:
        psi: PSI materiality threshold (the industry bands 0.1 / 0.25 would miss that 10-point shift).
        js: Jensen-Shannon distance (base 2, in [0, 1]) materiality threshold.
        wasserstein: W1 / reference std materiality threshold (numeric only).
        alpha: family-wise false-alarm level over the features of one check (Bonferroni).
    """

    psi: float = 0.03
    js: float = 0.1
    wasserstein: float = 0.2
    alpha: float = 0.01

    def __post_init__(self) -> None:
        # written as what holds (`0 < x`), so NaN fails it: a NaN threshold made every comparison false and no feature
        # ever drifted, whatever the data; a negative one made every feature drift
        for name, top, hint in (
            ("psi", math.inf, "a finite number above 0"),
            ("js", 1.0, "a number above 0 and at most 1"),
            ("wasserstein", math.inf, "a finite number above 0"),
            ("alpha", 1.0, "a significance level above 0 and at most 1"),
        ):
            value = getattr(self, name)
            if not (0 < value <= top and math.isfinite(value)):
                raise ValueError(f"drift threshold {name}={value!r}: use {hint}")


@dataclass
class ReferenceProfile:
    """What a drift pass needs from the reference batch (computed once, reusable for every batch)."""

    numeric: list[str]
    categorical: list[str]
    edges: list[np.ndarray]  # per numeric column, interior bin edges
    num_counts: np.ndarray  # (n_numeric, max_bins + 1); last bin = missing
    runs: list[Runs]  # per numeric column: distinct non-missing values and cumulative counts (for W1, KS)
    valid: np.ndarray  # (n_numeric,) non-missing values per column
    std: np.ndarray  # (n_numeric,)
    categories: list[pd.Series] = field(default_factory=list)  # per categorical column: count of every category
    cat_missing: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (n_cat,) missing values
    max_categories: int = 50
    n_rows: int = 0


def split_columns(df: pd.DataFrame, columns: list[str] | None = None) -> tuple[list[str], list[str]]:
    """Numeric (non-bool numbers) and categorical (everything else) column names."""
    cols = columns or [str(c) for c in df.columns]
    numeric = [c for c in cols if pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c])]
    return numeric, [c for c in cols if c not in numeric]


def _sorted_numeric(df: pd.DataFrame, cols: list[str]) -> tuple[np.ndarray, np.ndarray]:
    x = np.sort(df[cols].to_numpy(dtype=np.float64, na_value=np.nan), axis=0)
    return x, (~np.isnan(x)).sum(axis=0)


def _bin_counts(x: np.ndarray, valid: np.ndarray, edges: list[np.ndarray], width: int) -> np.ndarray:
    counts = np.zeros((len(edges), width + 1), dtype=np.float64)
    for j, e in enumerate(edges):  # a few searchsorted of ~10 edges per column: microseconds
        cut = np.searchsorted(x[: valid[j], j], e, side="right")
        counts[j, : len(e) + 1] = np.diff(cut, prepend=0, append=valid[j])
    counts[:, width] = len(x) - valid
    return counts


def _cat_counts(profile: ReferenceProfile, df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Reference and current counts over the categories most frequent in BOTH batches + "other" + missing.

    Choosing the bins from the reference alone would pick the categories that are frequent in the reference
    by chance (a winner's curse), and a same-distribution batch would look drifted on high-cardinality columns.
    """
    k = profile.max_categories
    ref, cur = np.zeros((len(profile.categorical), k + 2)), np.zeros((len(profile.categorical), k + 2))
    for j, (c, ref_vc) in enumerate(zip(profile.categorical, profile.categories, strict=True)):
        col = df[c]
        cur_vc = col.astype("object").value_counts(dropna=True)
        top = ref_vc.add(cur_vc, fill_value=0).sort_values(ascending=False, kind="stable").index[:k]
        for out, vc, missing in ((ref, ref_vc, profile.cat_missing[j]), (cur, cur_vc, col.isna().sum())):
            kept = vc.reindex(top, fill_value=0).to_numpy(dtype=np.float64)
            out[j, : len(kept)] = kept
            out[j, k], out[j, k + 1] = vc.sum() - kept.sum(), missing
    return ref, cur


def profile_reference(
    df: pd.DataFrame, columns: list[str] | None = None, *, bins: int = 10, max_categories: int = 50
) -> ReferenceProfile:
    """Profile the reference batch once (see module docstring)."""
    numeric, categorical = split_columns(df, columns)
    x, valid = _sorted_numeric(df, numeric)
    qs = np.linspace(0, 1, bins + 1)[1:-1]
    edges = []
    for j in range(len(numeric)):
        col = x[: valid[j], j]
        edges.append(np.unique(col[np.floor(qs * max(len(col) - 1, 0)).astype(np.int64)]) if len(col) else qs[:0])
    std = np.array([np.std(x[: valid[j], j]) if valid[j] else 0.0 for j in range(len(numeric))])
    cats = [df[c].astype("object").value_counts(dropna=True) for c in categorical]
    return ReferenceProfile(
        numeric=numeric,
        categorical=categorical,
        edges=edges,
        num_counts=_bin_counts(x, valid, edges, bins),
        runs=[runs(x[: valid[j], j]) for j in range(len(numeric))],
        valid=valid,
        std=std,
        categories=cats,
        cat_missing=np.array([float(df[c].isna().sum()) for c in categorical]),
        max_categories=max_categories,
        n_rows=len(df),
    )


@dataclass
class EffectSizes:
    """Raw per-feature effect sizes of one pass, in profile column order (numeric first)."""

    columns: list[str]
    kinds: list[str]
    psi: np.ndarray
    js: np.ndarray
    wasserstein: np.ndarray  # W1 / reference std; NaN for categorical
    ks: np.ndarray  # KS statistic; NaN for categorical
    p_chi2: np.ndarray
    p_ks: np.ndarray  # 1.0 for categorical
    p_value: np.ndarray  # per feature: numeric min(1, 2 min(p_chi2, p_ks)), categorical p_chi2
    missing_ref: np.ndarray
    missing_cur: np.ndarray
    ref_counts: np.ndarray  # (columns, bins) as compared (sparse bins pooled into the last), for plots
    cur_counts: np.ndarray


def effect_sizes(profile: ReferenceProfile, df: pd.DataFrame) -> EffectSizes:
    """Compare ``df`` with the profiled reference: one vectorized pass over every column."""
    missing = [c for c in profile.numeric + profile.categorical if c not in df.columns]
    if missing:
        msg = f"current batch lacks columns {missing} of the reference profile"
        raise KeyError(msg)
    width = profile.num_counts.shape[1] - 1
    x, valid = _sorted_numeric(df, profile.numeric)
    cur_num = _bin_counts(x, valid, profile.edges, width)
    w1, ks = _w1_ks(profile, x, valid)
    ref_cat, cur_cat = _cat_counts(profile, df)
    ref_all, cur_all = pool_sparse(_stack(profile.num_counts, ref_cat), _stack(cur_num, cur_cat))
    n_ref, n_cur = max(profile.n_rows, 1), max(len(df), 1)
    miss_ref = np.concatenate([profile.num_counts[:, -1], ref_cat[:, -1]]) / n_ref
    miss_cur = np.concatenate([cur_num[:, -1], cur_cat[:, -1]]) / n_cur
    n_cat = len(profile.categorical)
    p_chi2 = chi2_pvalue(ref_all, cur_all)
    p_ks = np.concatenate([ks_pvalue(ks, profile.valid, valid), np.ones(n_cat)])
    p_num = np.minimum(1.0, 2 * np.minimum(p_chi2, p_ks))
    return EffectSizes(
        columns=profile.numeric + profile.categorical,
        kinds=["numeric"] * len(profile.numeric) + ["categorical"] * len(profile.categorical),
        psi=psi(ref_all, cur_all),
        js=js_distance(ref_all, cur_all),
        wasserstein=np.concatenate([w1, np.full(n_cat, np.nan)]),
        ks=np.concatenate([ks, np.full(n_cat, np.nan)]),
        p_chi2=p_chi2,
        p_ks=p_ks,
        p_value=np.where(np.arange(len(p_chi2)) < len(profile.numeric), p_num, p_chi2),
        missing_ref=miss_ref,
        missing_cur=miss_cur,
        ref_counts=ref_all,
        cur_counts=cur_all,
    )


def _w1_ks(profile: ReferenceProfile, x: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact W1 / reference std and the KS statistic per numeric column (NaN where a side has no values)."""
    w1, ks = np.full(len(valid), np.nan), np.full(len(valid), np.nan)
    for j in range(len(valid)):
        w1[j], ks[j] = w1_ks_runs(profile.runs[j], runs(x[: valid[j], j]))
    return w1 / np.where(profile.std > 0, profile.std, 1.0), ks


def _stack(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Stack two count matrices, zero-padding bins; each keeps its missing bin in its own last column."""
    width = max(a.shape[1], b.shape[1])
    out = np.zeros((a.shape[0] + b.shape[0], width))
    if a.shape[0]:
        out[: a.shape[0], : a.shape[1]] = a
    if b.shape[0]:
        out[a.shape[0] :, : b.shape[1]] = b
    return out
