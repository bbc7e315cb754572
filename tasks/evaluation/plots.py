"""Deck figures of an evaluation: reliability diagram, confusion matrices, latency (inline SVG)."""

from __future__ import annotations

import html

from tasks.drift.plots import _pyplot, fig_html
from tasks.evaluation.report import EvaluationReport


def reliability_diagram(report: EvaluationReport) -> str:
    """Accuracy vs confidence per bin for both models, with the diagonal of perfect calibration."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 4.5))
    ax.plot([0, 1], [0, 1], "k--", linewidth=1, label="perfect")
    for fig_m, style in ((report.champion, "o-"), (report.candidate, "s-")):
        conf = [r[0] for r in fig_m.reliability]
        acc = [r[1] for r in fig_m.reliability]
        ax.plot(conf, acc, style, label=f"{fig_m.model} (ECE {fig_m.ece:.3f})")
    ax.set_xlabel("mean confidence")
    ax.set_ylabel("accuracy")
    ax.set_xlim(0.45, 1.0)
    ax.legend(fontsize=7)
    ax.set_title("reliability diagram")
    return fig_html(fig)


def confusion_matrices(report: EvaluationReport) -> str:
    """Side-by-side confusion matrices (rows true, columns predicted)."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.8), gridspec_kw={"wspace": 0.45})
    for ax, m in zip(axes, (report.champion, report.candidate), strict=True):
        ax.imshow(m.confusion, cmap="Blues", vmin=0)
        dark = max((max(row) for row in m.confusion), default=0) / 2
        for i, row in enumerate(m.confusion):
            for j, v in enumerate(row):
                ax.text(j, i, str(v), ha="center", va="center", color="white" if v > dark else "black", fontsize=11)
        ax.set_xticks(range(len(m.labels)), m.labels)
        ax.set_yticks(range(len(m.labels)), m.labels)
        ax.set_xlabel("predicted label")
        if ax is axes[0]:
            ax.set_ylabel("true label")
        ax.set_title(f"{m.model}\nacc {m.accuracy:.3f}  macro-F1 {m.macro_f1:.3f}", fontsize=9)
    return fig_html(fig)


MEANING = {
    "pending": "the figures are in; policy promote_model decides in the next step (see its Deck and the run output)",
    "promote": "policy allowed it: the candidate is now the champion",
    "needs_approval": "the candidate may replace the champion once a model approver signs off (request {rid})",
    "keep": "the champion stays: the candidate did not meet the promotion policy",
}


def decision_html(report: EvaluationReport) -> str:
    """The decision with a plain reading of it and the policy's reasons."""
    says = MEANING[report.decision].format(rid=html.escape(report.approval_request_id or "-"))
    reasons = "".join(f"<li>{html.escape(r)}</li>" for r in report.reasons)
    return (
        f"<h3>decision: {html.escape(report.decision)}</h3><p class='meaning'><b>What this means</b>: {says}.</p>"
        + (f"<ul>{reasons}</ul>" if reasons else "")
    )


def summary_table(report: EvaluationReport) -> str:
    """HTML table of the headline figures and the decision."""
    rows = []
    for key in (
        "accuracy",
        "macro_f1",
        "ece",
        "latency_ms_p50",
        "latency_ms_p95",
        "latency_ms_p99",
        "cost_per_1k_docs_usd",
    ):
        rows.append(
            f"<tr><td>{key}</td><td>{getattr(report.champion, key)}</td><td>{getattr(report.candidate, key)}</td></tr>"
        )
    c = report.comparison
    return (
        decision_html(report) + f"<p>accuracy delta {c.accuracy_delta:+.4f} (95% paired bootstrap {c.bootstrap_ci}), "
        f"McNemar exact p = {c.mcnemar_p:.3g}, n = {report.n_test}</p>"
        f"<table><tr><th></th><th>champion {html.escape(report.champion.model)}</th>"
        f"<th>candidate {html.escape(report.candidate.model)}</th></tr>" + "".join(rows) + "</table>"
    )
