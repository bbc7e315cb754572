"""Lineage graphs of the review report, laid out by Graphviz ``dot`` (Debian package ``graphviz``) as inline SVG.

Two drawings: the evidence chain of one document (document -> protected text -> classification by a model
version -> policy decision and its policies -> approval request -> approvers -> authorization -> action), and
the flow of one execution, with records grouped by kind and task (``policy_decision x 120``) so an execution of
thousands of documents stays readable. Every graph of a report is laid out by ONE ``dot`` process.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections import Counter
from collections.abc import Iterable, Sequence

from flytekitplugins.aios_audit.edge_rules import is_record
from flytekitplugins.aios_audit.lineage import Trace
from flytekitplugins.aios_audit.records import AuditRecord
from flytekitplugins.aios_core.visible import visible

_COLOR = {"allow": "#2e7d32", "posted": "#2e7d32", "approve": "#2e7d32", "deny": "#c62828", "reject": "#c62828"}
_SHAPE = {"sha256:": "note", "model:": "component", "policy:": "hexagon", "principal:": "oval"}
MISSING = "graph not drawn: Graphviz `dot` is not installed (apt-get install graphviz)"


def _q(text: str) -> str:
    """A DOT string of ``text``: its lines kept, every other control character and direction mark an escape
    (:func:`.visible.visible`: a record's action or status is someone else's text, drawn in the page's graphs)."""
    lines = [visible(line) for line in text.split("\n")]
    return '"' + "\\n".join(line.replace("\\", "\\\\").replace('"', '\\"') for line in lines) + '"'


def _record_label(rec: AuditRecord) -> str:
    ev = rec.event
    extra = ""
    if ev.kind == "approval_decision":
        d = ev.attributes.get("decision", {})
        extra = f"\n{d.get('action', '')} by {d.get('approver', '')}"
    elif ev.kind == "policy_decision":
        extra = f"\n{ev.status} {ev.attributes.get('action', '')}"
    elif ev.kind == "approval_request":
        req = ev.attributes.get("request", {})
        extra = f"\n{ev.subject}\n{req.get('gate', '')} risk {req.get('risk', '')}"
    elif ev.kind in ("action", "action_refused"):
        a = ev.attributes
        extra = f"\n{ev.status} {a.get('action', '')} {a.get('amount') or ''} {a.get('currency') or ''}"
    elif ev.execution and ev.execution.task_name:
        extra = f"\n{ev.execution.task_name.rsplit('.', 1)[-1]} {ev.status}"
    return f"{ev.kind} #{rec.seq}{extra}"


def _node_label(node: str) -> str:
    if node.startswith("sha256:"):
        return f"{node[:23]}..."
    return node.replace(":", "\n", 1)


def trace_dot(tr: Trace, name: str) -> str:
    """DOT source of a trace: every node it reached and every typed edge, parent on the left."""
    ids = {n: f"n{i}" for i, n in enumerate(tr.nodes())}
    lines = [f"digraph {_q(name)} {{", 'rankdir=LR; node [fontname="Helvetica" fontsize=10 style=filled];']
    for node, nid in ids.items():
        rec = tr.records.get(node)
        if rec is not None:
            color = _COLOR.get(rec.event.status, _COLOR.get(rec.event.attributes.get("decision", {}).get("action"), ""))
            lines.append(
                f'{nid} [shape=box label={_q(_record_label(rec))} fillcolor="#ffffff" color={_q(color or "#1565c0")} '
                f"tooltip={_q(node)} id={_q('rec-' + node[:16])}];"
            )
        elif not is_record(node):
            shape = next((s for p, s in _SHAPE.items() if node.startswith(p)), "ellipse")
            lines.append(f'{nid} [shape={shape} label={_q(_node_label(node))} fillcolor="#f5f5f5" tooltip={_q(node)}];')
    for child, parent, rel, _seq in dict.fromkeys(tr.edges):
        rec = tr.records.get(child)
        if rel == "document" and rec is not None and rec.event.kind not in ("policy_decision", "quarantine"):
            continue  # the chain already leads there through the decision: keep the drawing readable
        if child in ids and parent in ids and (parent in tr.records or not is_record(parent)):
            lines.append(f"{ids[parent]} -> {ids[child]} [label={_q(rel)} fontsize=8];")
    lines.append("}")
    return "\n".join(lines)


def _group(rec: AuditRecord) -> str:
    ex = rec.event.execution
    task = ex.task_name.rsplit(".", 1)[-1] if ex and ex.task_name and rec.event.kind == "task" else ""
    return f"{rec.event.kind} {task}".strip()


def execution_dot(records: Sequence[AuditRecord], name: str) -> str:
    """DOT source of one execution: records grouped by kind and task, edges counted between groups."""
    group = {r.record_id: _group(r) for r in records}
    producers: dict[str, set[str]] = {}
    for r in records:
        for d in r.event.outputs.values():
            producers.setdefault(d, set()).add(group[r.record_id])
    counts: Counter[str] = Counter(group.values())
    statuses: dict[str, Counter[str]] = {}
    edges: Counter[tuple[str, str]] = Counter()
    for r in records:
        g = group[r.record_id]
        statuses.setdefault(g, Counter())[r.event.status] += 1
        for p in r.event.parents:
            if p in group and group[p] != g:
                edges[(group[p], g)] += 1
        for d in r.event.inputs.values():
            edges.update((src, g) for src in producers.get(d, ()) if src != g)
    ids = {g: f"g{i}" for i, g in enumerate(counts)}
    lines = [f"digraph {_q(name)} {{", 'rankdir=LR; node [shape=box fontname="Helvetica" fontsize=10];']
    for g, n in counts.items():
        st = ", ".join(f"{k or '-'} {v}" for k, v in statuses[g].most_common(4))
        lines.append(f"{ids[g]} [label={_q(f'{g} x {n}' if n > 1 else g)} tooltip={_q(st)} xlabel={_q(st)}];")
    lines += [f"{ids[a]} -> {ids[b]} [label={_q(str(n))} fontsize=8];" for (a, b), n in edges.items()]
    lines.append("}")
    return "\n".join(lines)


def render_svgs(sources: Iterable[str], timeout: float = 60.0) -> list[str]:
    """Lay out DOT graphs with one ``dot -Tsvg`` process; inline ``<svg>`` elements in order (or notes)."""
    sources = list(sources)
    dot = shutil.which("dot")
    if not sources:
        return []
    if dot is None:
        return [f'<p class="note">{MISSING}</p>'] * len(sources)
    proc = subprocess.run(
        [dot, "-Tsvg"], input="\n".join(sources), capture_output=True, text=True, timeout=timeout, check=False
    )
    svgs = re.findall(r"<svg\b.*?</svg>", proc.stdout, flags=re.S)
    if proc.returncode != 0 or len(svgs) != len(sources):
        note = f'<p class="note">graph not drawn: dot failed ({proc.stderr.strip()[:200]})</p>'
        return [note] * len(sources)
    return [re.sub(r"<!--.*?-->", "", s, flags=re.S) for s in svgs]
