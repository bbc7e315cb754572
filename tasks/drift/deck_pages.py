"""Deck pages people read: data quality per expectation, text drift, and a "what this means" line per result.

Each page leads with one sentence in plain words, then a figure (inline SVG), then the figures as a table.
"""

from __future__ import annotations

import html

from tasks.drift.plots import _pyplot, fig_html
from tasks.drift.report import DriftReport, EmbeddingDrift, FeatureDrift, QualityReport

PASS, FAIL = "#2e7d32", "#c62828"
AUC_THRESHOLD, TEXT_ALPHA = 0.65, 0.01  # tasks.drift.text.embedding_drift defaults


def feature_meaning(f: FeatureDrift) -> str:
    """One sentence on what a feature's result means for the model (the rule: significant AND material)."""
    p = f"p {f.p_value:.2g} {'<' if f.significant else '>='} {f.p_threshold:.2g}"
    if f.drifted:
        return f"shifted: beyond chance ({p}) and large enough to matter ({', '.join(f.reasons[1:])}); investigate."
    if f.significant:
        return f"a real but small change ({p}); every effect size is under its threshold: no action."
    if f.material:
        return f"looks large but may be chance at this sample size ({p}): no action."
    return "no meaningful change."


def overall_meaning(report: DriftReport) -> str:
    """The sentence at the top of the drift Deck."""
    names = report.drifted_features
    n = len(report.features)
    if names:
        # column names are the launcher's (a data frame's, and the `columns` input): escaped like every cell
        head = f"{len(names)} of {n} features shifted materially ({', '.join(html.escape(x) for x in names)})"
    else:
        head = f"none of the {n} features shifted materially"
    extra = ""
    if report.embedding is not None:
        extra = "; the text itself changed" if report.embedding.drifted else "; the text did not change materially"
    verdict = "retraining may be needed" if report.drifted else "no action needed"
    return f"<p class='meaning'><b>What this means</b>: {head}{extra}: {verdict}.</p>"


def quality_chart(reports: list[QualityReport]) -> str:
    """Rows that broke each expectation, per batch (green: passed, red: failed)."""
    plt = _pyplot()
    names = [f"{e.expectation}({e.column})" if e.column else e.expectation for e in reports[0].expectations]
    fig, axes = plt.subplots(1, len(reports), figsize=(6 * len(reports), 0.35 * len(names) + 1.6), squeeze=False)
    for ax, r in zip(axes[0], reports, strict=True):
        vals = [100.0 * (e.unexpected or 0) / max(r.rows, 1) for e in r.expectations]
        ax.barh(range(len(vals)), vals, color=[PASS if e.success else FAIL for e in r.expectations])
        for i, (v, e) in enumerate(zip(vals, r.expectations, strict=True)):
            rows = "" if e.unexpected is None else f" ({e.unexpected} rows)"
            label = f" {'passed' if e.success else 'FAILED'}{rows}"
            ax.text(v, i, label, va="center", fontsize=8, color=PASS if e.success else FAIL)
        ax.set_yticks(range(len(vals)), names if ax is axes[0][0] else [""] * len(vals), fontsize=8)
        ax.set_xlabel("rows breaking the expectation (%)")
        ax.set_title(f"{r.batch}: {r.rows} rows, {r.evaluated - len(r.failed)}/{r.evaluated} passed", fontsize=10)
        ax.set_xlim(0, max(max(vals, default=0) * 1.2, 1.0))
        ax.invert_yaxis()
    return fig_html(fig)


def quality_html(suite: str, reports: list[QualityReport]) -> str:
    """The quality Deck: verdict sentence, chart, and every expectation with its outcome and row counts."""
    failed = [r.batch for r in reports if not r.success]
    if failed:
        says = f"the {' and '.join(failed)} batch broke the suite: the drift check stops here (fix the data first)"
    else:
        says = "both batches meet every expectation, so the drift figures below compare clean data"
    head = f"<h3>data quality: suite {html.escape(suite)}</h3><p class='meaning'><b>What this means</b>: {says}.</p>"
    if not reports or not reports[0].expectations:
        return head
    rows = "".join(
        f"<tr><td>{html.escape(r.batch)}</td><td>{html.escape(e.expectation)}</td><td>{html.escape(e.column)}</td>"
        f"<td style='color:{PASS if e.success else FAIL}'><b>{'passed' if e.success else 'FAILED'}</b></td>"
        f"<td>{'' if e.unexpected is None else f'{e.unexpected} of {r.rows}'}</td>"
        f"<td>{html.escape(e.observed[:120])}</td></tr>"
        for r in reports
        for e in r.expectations
    )
    table = (
        "<table><tr><th>batch</th><th>expectation</th><th>column</th><th>result</th><th>rows breaking it</th>"
        f"<th>observed</th></tr>{rows}</table>"
    )
    return head + quality_chart(reports) + table


def _text_meaning(e: EmbeddingDrift) -> str:
    chance = f"permutation p {e.p_value:.3g} ({'<' if e.p_value < TEXT_ALPHA else '>='} {TEXT_ALPHA})"
    size = f"a classifier tells the batches apart with AUC {e.domain_auc:.2f} (0.5 = indistinguishable)"
    if e.drifted:
        verdict = "the current texts differ from the reference in a way a model will notice"
    elif e.p_value < TEXT_ALPHA:
        verdict = f"a real but small difference: the AUC is under {AUC_THRESHOLD}, so no alert"
    else:
        verdict = "the difference is within what chance produces: no alert"
    return f"{verdict}; {size}; {chance}."


def text_drift_html(report: DriftReport) -> str:
    """The text Deck: verdict sentence, a gauge of the domain AUC against chance and the alert threshold, figures."""
    e = report.embedding
    if e is None:
        return "<p>no text column checked</p>"
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 1.8))
    ax.barh([0], [e.domain_auc - 0.5], left=0.5, color=FAIL if e.drifted else PASS, height=0.5)
    ax.axvline(0.5, color="black", linewidth=1)
    ax.axvline(AUC_THRESHOLD, color="black", linestyle="--", linewidth=1)
    ax.text(0.5, 0.42, " chance", fontsize=8, va="bottom")
    ax.text(AUC_THRESHOLD, 0.42, f" alert at {AUC_THRESHOLD}", fontsize=8, va="bottom")
    ax.set_xlim(0.4, 1.0)
    ax.set_ylim(-0.4, 0.7)  # room for the two labels above the bar
    ax.set_yticks([])
    ax.set_xlabel("domain-classifier AUC (reference vs current MiniLM embeddings)")
    ax.set_title(f"{report.dataset}: text drift {'DETECTED' if e.drifted else 'not detected'}", fontsize=10)
    rows = "".join(
        f"<tr><td>{k}</td><td>{v}</td></tr>"
        for k, v in (
            ("texts compared", f"{e.n_ref} reference, {e.n_cur} current"),
            ("MMD² (RBF kernel)", f"{e.mmd2:.4g}"),
            ("permutation p-value", f"{e.p_value:.3g} over {e.permutations} permutations"),
            ("domain AUC", f"{e.domain_auc:.3f}"),
            ("rule", f"drift when p < {TEXT_ALPHA} and AUC >= {AUC_THRESHOLD}"),
        )
    )
    meaning = f"<p class='meaning'><b>What this means</b>: {_text_meaning(e)}</p>"
    return meaning + fig_html(fig) + f"<table>{rows}</table>"
