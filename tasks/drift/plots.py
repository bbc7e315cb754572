"""Deck figures for drift reports (matplotlib rendered to inline SVG, no files, no network)."""

from __future__ import annotations

import html
import io
from typing import Any

import numpy as np

from tasks.drift.effect_size import EffectSizes
from tasks.drift.report import DriftReport


def fig_html(fig: Any) -> str:
    """Render a matplotlib figure as inline SVG and close it."""
    import matplotlib.pyplot as plt

    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    plt.close(fig)
    svg = buf.getvalue()
    return svg[svg.find("<svg") :]


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def effect_size_chart(report: DriftReport) -> str:
    """Horizontal bars of PSI, JS and normalized Wasserstein per feature, with the alert thresholds."""
    plt = _pyplot()
    feats = report.features
    fig, axes = plt.subplots(1, 3, figsize=(12, 0.3 * len(feats) + 1.5), sharey=True)
    names = [f.name for f in feats]
    for ax, key in zip(axes, ("psi", "js", "wasserstein"), strict=True):
        vals = [getattr(f, key) or 0.0 for f in feats]
        colors = ["#c0392b" if f.drifted else "#7f8c8d" for f in feats]
        ax.barh(names, vals, color=colors)
        ax.axvline(report.thresholds[key], color="black", linestyle="--", linewidth=1)
        ax.set_title(key)
    axes[0].invert_yaxis()
    fig.suptitle(f"{report.dataset}: drifted features in red (threshold dashed)")
    return fig_html(fig)


def feature_histograms(es: EffectSizes, report: DriftReport, limit: int = 12) -> str:
    """Reference vs current bin proportions for the most drifted features (last bin = missing)."""
    plt = _pyplot()
    order = np.argsort(-es.js)[:limit]
    cols = 4
    rows = max(1, int(np.ceil(len(order) / cols)))
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.4 * rows), squeeze=False)
    by_name = {f.name: f for f in report.features}
    for ax, i in zip(axes.flat, order, strict=False):
        ref, cur = es.ref_counts[i], es.cur_counts[i]
        used = np.flatnonzero((ref + cur) > 0)
        x = np.arange(len(used))
        ax.bar(x - 0.2, ref[used] / max(ref.sum(), 1), width=0.4, label="reference")
        ax.bar(x + 0.2, cur[used] / max(cur.sum(), 1), width=0.4, label="current")
        f = by_name[es.columns[i]]
        ax.set_title(f"{f.name}  psi={f.psi:.2f} js={f.js:.2f}", color="#c0392b" if f.drifted else "black", fontsize=9)
        ax.set_xticks([])
    for ax in list(axes.flat)[len(order) :]:
        ax.axis("off")
    axes[0, 0].legend(fontsize=7)
    return fig_html(fig)


DEFINITIONS = (
    "<p><b>Rule</b>: a feature drifts when its shift is significant (p below alpha / features, Bonferroni) "
    "and material (PSI, JS or W1/std at or above its threshold). <b>Bins</b>: numeric, the reference's deciles "
    "as (lo, hi] + a missing bin; categorical, the 50 categories most frequent in both batches + other + "
    "missing; bins with an expected count under 5 in the smaller batch pooled into one. <b>PSI</b>: "
    "sum (q - p) ln(q / p), natural log, shares floored at 1e-4 (a divergence). <b>JS</b>: Jensen-Shannon "
    "distance (square root of the divergence), log base 2, in [0, 1]. <b>W1/std</b>: exact Wasserstein-1 "
    "of the non-missing values divided by the reference's std (ddof 0). <b>KS</b>: two-sample "
    "Kolmogorov-Smirnov statistic. <b>p</b>: numeric min(1, 2 min(p chi-square, p KS)), categorical "
    "p chi-square (Pearson, no continuity correction).</p>"
)


def report_table(report: DriftReport) -> str:
    """What the check means, the thresholds, per-feature figures with a plain reading each, then the definitions."""
    from tasks.drift.deck_pages import feature_meaning, overall_meaning

    th = report.thresholds
    rule = (
        f"<p>thresholds: PSI {th.get('psi')}, JS {th.get('js')}, W1/std {th.get('wasserstein')}; "
        f"alpha {th.get('alpha')} over {len(report.features)} features</p>"
    )
    head = (
        "<tr><th>feature</th><th>kind</th><th>PSI</th><th>JS</th><th>W1/std</th><th>KS</th><th>p</th>"
        "<th>significant</th><th>material</th><th>drift</th><th>what this means</th></tr>"
    )
    rows = "".join(
        f"<tr><td>{html.escape(f.name)}</td><td>{f.kind}</td><td>{f.psi:.4f}</td><td>{f.js:.4f}</td>"
        f"<td>{'' if f.wasserstein is None else f'{f.wasserstein:.4f}'}</td>"
        f"<td>{'' if f.ks is None else f'{f.ks:.4f}'}</td><td>{f.p_value:.2g}</td>"
        f"<td>{'yes' if f.significant else 'no'}</td><td>{'yes' if f.material else 'no'}</td>"
        f"<td>{'<b>yes</b>' if f.drifted else 'no'}</td><td>{html.escape(feature_meaning(f))}</td></tr>"
        for f in report.features
    )
    rows_seen = f"{report.n_ref} reference vs {report.n_cur} current rows"
    title = f"<h3>drift check: {html.escape(report.dataset)} ({rows_seen})</h3>"
    return f"{title}{overall_meaning(report)}{rule}<table>{head}{rows}</table>{DEFINITIONS}"
