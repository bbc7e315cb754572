"""Self-contained HTML lineage report: inline SVG graph, records table, verification status. No CDN, no JS."""

from __future__ import annotations

import html
from collections.abc import Sequence

from flytekitplugins.aios_audit.lineage import LineageGraph, sources
from flytekitplugins.aios_audit.records import AuditRecord
from flytekitplugins.aios_audit.verify import VerifyResult

_W, _H, _GX, _GY = 190, 44, 70, 22
_COLORS = {"succeeded": "#2e7d32", "failed": "#c62828", "allow": "#2e7d32", "deny": "#c62828"}
_CSS = """
body{font-family:system-ui,sans-serif;margin:24px;color:#222}
.ok{background:#e8f5e9;border:1px solid #2e7d32;padding:8px}
.bad{background:#ffebee;border:1px solid #c62828;padding:8px}
table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ccc;padding:3px 6px;text-align:left}
code{font-size:11px}svg text{font-size:11px;font-family:monospace}
"""


def _depths(g: LineageGraph, ids: Sequence[str]) -> dict[str, int]:
    depth: dict[str, int] = {}
    for rid in ids:  # sequence order: every edge goes from a lower seq to a higher one
        parents = [depth[e.src] for e in g.incoming(rid) if e.src in depth]
        depth[rid] = max(parents) + 1 if parents else 0
    return depth


def _label(rec: AuditRecord) -> str:
    ex = rec.event.execution
    task = (ex.task_name.rsplit(".", 1)[-1] if ex and ex.task_name else "") or rec.event.kind
    return f"#{rec.seq} {task}"[:26]


def svg_graph(g: LineageGraph, ids: Sequence[str]) -> str:
    """Layered SVG of the records ``ids`` (in seq order) and the edges among them."""
    depth = _depths(g, ids)
    rows: dict[int, int] = {}
    pos: dict[str, tuple[int, int]] = {}
    for rid in ids:
        d = depth[rid]
        r = rows.get(d, 0)
        rows[d] = r + 1
        pos[rid] = (10 + d * (_W + _GX), 10 + r * (_H + _GY))
    width = 20 + (max(depth.values(), default=0) + 1) * (_W + _GX)
    height = 20 + max(rows.values(), default=1) * (_H + _GY)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" id="lineage-graph" width="{width}" height="{height}">',
        '<defs><marker id="arrow" markerWidth="8" markerHeight="8" refX="8" refY="4" orient="auto">'
        '<path d="M0,0 L8,4 L0,8 z" fill="#555"/></marker></defs>',
    ]
    for e in g.edges:
        if e.src in pos and e.dst in pos:
            (x1, y1), (x2, y2) = pos[e.src], pos[e.dst]
            dash = ' stroke-dasharray="4 3"' if e.kind == "parent" else ""
            parts.append(
                f'<line class="edge" x1="{x1 + _W}" y1="{y1 + _H // 2}" x2="{x2}" y2="{y2 + _H // 2}" '
                f'stroke="#555"{dash} marker-end="url(#arrow)">'
                f"<title>{html.escape(e.kind + ' ' + e.label)}</title></line>"
            )
    for rid in ids:
        rec, (x, y) = g.records[rid], pos[rid]
        color = _COLORS.get(rec.event.status, "#1565c0")
        parts.append(
            f'<g class="node" data-record="{rid}"><rect x="{x}" y="{y}" width="{_W}" height="{_H}" rx="6" '
            f'fill="#fff" stroke="{color}" stroke-width="2"/>'
            f'<text x="{x + 8}" y="{y + 18}">{html.escape(_label(rec))}</text>'
            f'<text x="{x + 8}" y="{y + 34}" fill="{color}">'
            f"{html.escape(rec.event.kind)} {html.escape(rec.event.status)}</text>"
            f"<title>{rid}</title></g>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _records_table(g: LineageGraph, ids: Sequence[str]) -> str:
    cols = ("seq", "kind", "status", "task", "execution", "inputs", "outputs", "record id")
    head = "<tr>" + "".join(f"<th>{c}</th>" for c in cols) + "</tr>"
    body = []
    for rid in ids:
        rec = g.records[rid]
        ev, ex = rec.event, rec.event.execution
        ins = "<br>".join(f"{html.escape(k)}: <code>{v[:23]}</code>" for k, v in ev.inputs.items())
        outs = "<br>".join(f"{html.escape(k)}: <code>{v[:23]}</code>" for k, v in ev.outputs.items())
        body.append(
            f'<tr class="record"><td>{rec.seq}</td><td>{html.escape(ev.kind)}</td><td>{html.escape(ev.status)}</td>'
            f"<td>{html.escape(ex.task_name if ex else '')}</td><td>{html.escape(ex.execution_key if ex else '')}</td>"
            f"<td>{ins}</td><td>{outs}</td><td><code>{rid}</code></td></tr>"
        )
    return f'<table id="records">{head}{"".join(body)}</table>'


def render_report(g: LineageGraph, ids: Sequence[str], result: VerifyResult, title: str = "Audit lineage") -> str:
    """The full HTML page."""
    status_cls = "ok" if result.ok else "bad"
    srcs = sources(g, ids)
    src_rows = "".join(
        f"<tr><td><code>{html.escape(d)}</code></td><td>{', '.join(f'#{s}' for s in seqs)}</td></tr>"
        for d, seqs in srcs.items()
    )
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>"
        f'<p id="verification" class="{status_cls}">Verification: {html.escape(result.summary())}</p>'
        f"<h2>Lineage graph ({len(ids)} records, {len(g.edges)} edges)</h2>{svg_graph(g, ids)}"
        '<h2>Source documents and data</h2><table id="sources"><tr><th>digest</th><th>consumed by</th></tr>'
        f"{src_rows}</table>"
        f"<h2>Records</h2>{_records_table(g, ids)}</body></html>"
    )
