"""HTML for the retraining Decks: the loss curve and the evaluation summary (self-contained, inline PNG)."""

from __future__ import annotations

import base64
import html
import io
from typing import Any


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return f'<img alt="chart" src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}"/>'


def loss_curve_html(losses: list[float], resumed_from_step: int = 0, title: str = "training loss") -> str:
    """A line chart of loss per optimizer step; a dashed line marks the step a run resumed from."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3))
    ax.plot(range(1, len(losses) + 1), losses, marker=".", lw=1)
    if resumed_from_step:
        ax.axvline(resumed_from_step, ls="--", color="grey", label=f"resumed from step {resumed_from_step}")
        ax.legend()
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("cross-entropy")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    return f"<h3>{html.escape(title)}</h3>" + _png(fig)


def summary_html(rows: dict[str, Any], title: str = "retraining summary") -> str:
    """A two-column table of named figures."""
    body = "".join(f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(str(v))}</td></tr>" for k, v in rows.items())
    return f"<h3>{html.escape(title)}</h3><table border='1' cellpadding='4'>{body}</table>"
