"""Tables of the document pipeline's Decks as plain HTML: the batch summary's tables and the validation report of
a table that passed its pandera schema.

``DataFrame.to_html`` took about 25 ms for the summary's 200 result rows on a 2-core host, and
flytekitplugins-pandera's report, built with great_tables whatever the outcome, 45-80 ms for a five-row preview of a
29-column table: together 0.2-0.3 s of the pipeline's ``summarize``, a tenth of a 400-document batch's non-model
time. These render the same cells (every value escaped, floats as pandas shows them) in about a millisecond. A
table that failed validation still gets the plugin's own error report (its failure-case tables are what a reader
needs then).
"""

from __future__ import annotations

import html
import math
from typing import Any

from flytekitplugins.aios_core.visible import visible

PREVIEW_ROWS = 5
"""Rows of a validation report's preview (the plugin's ``DATA_PREVIEW_HEAD``)."""
CELL_CHARS = 200
"""Characters of one cell shown; longer values end in an ellipsis (a redacted text can be pages long)."""

STYLE = (
    "<style>table.aios{border-collapse:collapse;margin:0 0 1em 0;font-size:13px}"
    "table.aios th,table.aios td{border:1px solid #ddd;padding:2px 6px;text-align:left;vertical-align:top}"
    "table.aios caption{text-align:left;font-weight:bold;background:#f2fae2;padding:4px 6px}"
    "table.aios pre{margin:0;white-space:pre-wrap}</style>"
)
"""The tables' style, once per Deck (a Deck's HTML is inlined in Flyte's page)."""


def cell(value: Any) -> str:
    """One value as a cell's escaped text: floats with six decimals (pandas' display precision; NaN as ``NaN``),
    anything else as ``str``, cut to :data:`CELL_CHARS`, its control characters and direction marks shown as escapes
    (a document's text is its sender's: a right-to-left override in a vendor name would reverse what ops read)."""
    if isinstance(value, float):
        text = "NaN" if math.isnan(value) else f"{value:.6f}"
    else:
        text = str(value)
    if len(text) > CELL_CHARS:
        text = text[:CELL_CHARS] + "\u2026"
    return html.escape(visible(text))


def table_html(df: Any, limit: int, caption: str = "") -> str:
    """The first ``limit`` rows of ``df`` (a ``pandas.DataFrame``) as an HTML table, its columns as the header."""
    parts = ['<table class="aios">']
    if caption:
        parts.append(f"<caption>{html.escape(caption)}</caption>")
    parts += ["<thead><tr>", *(f"<th>{cell(c)}</th>" for c in df.columns), "</tr></thead><tbody>"]
    for row in df.head(limit).itertuples(index=False, name=None):
        parts += ["<tr>", *(f"<td>{cell(v)}</td>" for v in row), "</tr>"]
    parts.append("</tbody></table>")
    return "".join(parts)


def passed_report_html(df: Any, schema: Any) -> str:
    """The validation report of ``df`` (a ``pandas.DataFrame``) that passed ``schema`` (a pandera
    ``DataFrameSchema``): the plugin's success report's content (schema name, shape, no schema or data errors, the
    schema, the first :data:`PREVIEW_ROWS` rows)."""
    rows, cols = df.shape
    summary = [
        ("Schema Name", html.escape(str(schema.name))),
        ("Shape", f"{rows} rows x {cols} columns"),
        ("Total schema errors", "0"),
        ("Total data errors", "0"),
        ("Schema Object", f"<pre>{html.escape(repr(schema))}</pre>"),
    ]
    parts = [
        STYLE,
        '<table class="aios"><caption>Summary</caption><tr><th>Metadata</th><th>Value</th></tr>',
        *(f"<tr><th>{name}</th><td>{value}</td></tr>" for name, value in summary),
        "</table>",
        table_html(df, PREVIEW_ROWS, "Data Preview"),
    ]
    return "".join(parts)
