"""The review report: one self-contained HTML page a compliance reviewer works with, offline.

Verification status first (the first bad record is linked and highlighted in place), then a per-execution view,
a per-document view (outcome; model, version and digest; policy ids and reasons; approvers with roles, reasons
and signature status; the action and where it was posted), every record, search and filters, and lineage graphs
of one execution and of documents laid out by Graphviz. Records are embedded once as compact JSON (strings
interned) and the tables are drawn by a small inline script a page at a time, so 100,000 records stay a few MB.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator
from typing import Any

import orjson

from flytekitplugins.aios_audit.edges import document_of, execution_of
from flytekitplugins.aios_audit.lineage import Tracer
from flytekitplugins.aios_audit.lineage_cases import cases
from flytekitplugins.aios_audit.lite import lite_record
from flytekitplugins.aios_audit.records import AuditRecord
from flytekitplugins.aios_audit.report_graph import execution_dot, render_svgs, trace_dot
from flytekitplugins.aios_audit.report_page import page
from flytekitplugins.aios_audit.stores import seq_runs
from flytekitplugins.aios_audit.verify import VerifyResult
from flytekitplugins.aios_core.settings import Settings

GRAPHED_DOCUMENTS = 8


class _Strings(dict[str, int]):
    """Interned texts: ``s[text]`` is the text's index in the page's string table (added on first use)."""

    def __missing__(self, text: str) -> int:
        self[text] = n = len(self)
        return n


def _info(rec: AuditRecord) -> str:
    """What the record says, short (request ids and documents have columns of their own)."""
    ev, a = rec.event, rec.event.attributes
    if ev.kind == "policy_decision":
        pd = ev.policy_decisions[0] if ev.policy_decisions else {}
        return f"{a.get('action', '')}: {', '.join(pd.get('policy_ids', []))} {'; '.join(pd.get('reasons', []))}"
    if ev.kind == "approval_decision":
        d = a.get("decision", {})
        return f"{d.get('action')} by {d.get('approver')} [{', '.join(d.get('roles', []))}] {d.get('reason', '')}"
    if ev.kind in ("action", "action_refused", "action_authorized"):
        money = f"{a.get('amount') or ''} {a.get('currency') or ''}".strip()
        return f"{a.get('action', '')} {money} {a.get('system_of_record') or a.get('reason') or ''}".strip()
    if ev.kind == "approval_request":
        req = a.get("request", {})
        return f"{req.get('gate', '')} risk {req.get('risk', '')} quorum {req.get('quorum', '')}"
    if ev.kind.startswith("approval_"):
        return str(a.get("reason", "") or ev.status)
    models = ", ".join(f"{m.name}@{m.version}" for m in ev.models)
    return f"{ev.subject[:40]} {models}".strip()


def _request_id(rec: AuditRecord) -> str:
    ev = rec.event
    return ev.subject if ev.kind.startswith("approval_") else str(ev.attributes.get("request_id") or "")


def _scan(tracer: Tracer, start: int, end: int, bad: int | None) -> Iterator[AuditRecord | tuple[int, str]]:
    for seq, entry, leaf, _prev, _chain in tracer.store.scan_raw(start, end):
        try:
            yield lite_record(entry, leaf)
        except Exception as e:  # an edited entry may not parse: keep its place, say why
            yield seq, f"unreadable record ({type(e).__name__}){' - first bad record' if seq == bad else ''}"


def _scan_execution(
    tracer: Tracer, execution: str, limit: int, bad: int | None
) -> Iterator[AuditRecord | tuple[int, str]]:
    """The last ``limit`` records of one execution, read by the edge index's execution column (not a log scan).

    The index is derived data: each record is read from the store by its position, and only the records whose
    sealed entry names the execution are kept (``_Collect`` checks it again), so the index can only leave records
    out, never put another execution's records in. A record the index missed still counts in verification.
    """
    seqs = [s for s, _ in tracer.index.execution_records(execution)][-limit:] if limit > 0 else []
    for first, last in seq_runs(seqs):
        yield from _scan(tracer, first, last, bad)


def _scan_document(
    tracer: Tracer, document: str, limit: int, bad: int | None
) -> Iterator[AuditRecord | tuple[int, str]]:
    """The records of one document's lineage (its trace through the edge index, not a log scan), at most the last
    ``limit`` of them.

    As with an execution, the index only says where to look: each record is read from the store by its position
    and hashed by the verification that precedes the report, so the index can leave records out but not add any.
    """
    seqs = sorted(rec.seq for rec in tracer.trace(document).records.values())
    for first, last in seq_runs(seqs[-limit:] if limit > 0 else []):
        yield from _scan(tracer, first, last, bad)


class _Collect:
    """Streams records into compact rows, executions and (through :func:`cases`) documents."""

    def __init__(self, execution: str | None) -> None:
        self.s = _Strings()
        self.rows: list[list[Any]] = []
        self.execs: dict[str, dict[str, Any]] = {}
        self.doc_exec: dict[str, str] = {}
        self.request_doc: dict[str, str] = {}
        self.execution = execution
        self.last_action_exec = ""

    def feed(self, items: Iterator[AuditRecord | tuple[int, str]]) -> Iterator[AuditRecord]:
        s = self.s
        for item in items:
            if isinstance(item, tuple):
                self.rows.append([item[0], "", s["unreadable"], s[""], s[""], s[""], s[""], s[""], s[item[1]], s[""]])
                continue
            rec, ex = item, execution_of(item)
            if self.execution and self.execution not in (ex, ex.rsplit("/", 1)[-1]):
                continue
            ev, rid = rec.event, _request_id(rec)
            doc = document_of(rec) or self.request_doc.get(rid, "")
            if ev.kind == "approval_request":
                self.request_doc.setdefault(rid, doc)
            task = ev.execution.task_name.rsplit(".", 1)[-1] if ev.execution and ev.execution.task_name else ""
            row = [rec.seq, rec.record_id[:12], s[ev.kind], s[ev.status], s[ev.actor], s[ex], s[task], s[doc]]
            row += [s[_info(rec)], s[rid]]
            self.rows.append(row)
            when = str(rec.recorded_at)
            e = self.execs.setdefault(ex, {"records": 0, "first": when, "kinds": {}})
            e["records"] += 1
            e["last"] = when
            e["kinds"][ev.kind] = e["kinds"].get(ev.kind, 0) + 1
            if doc:
                self.doc_exec.setdefault(doc, ex)
            if ev.kind == "action":
                self.last_action_exec = ex
            yield rec


def _doc_row(c: dict[str, Any], execution: str, s: _Strings) -> list[Any]:
    """``[doc, name, outcome, model, policy, approvals, action, execution]``; repeated texts interned."""
    cl = c["classification"]
    models = ", ".join(f"{m.get('name')}@{m.get('version')} {m.get('digest', '')[:19]}" for m in cl.get("models", []))
    model = (
        f"{cl.get('label') or cl.get('doc_type') or ''} by {models or '?'} route {cl.get('route', '')} "
        f"confidence {cl.get('confidence')}"
        if cl
        else ""
    )
    policy = " | ".join(
        f"{p['effect']}: {', '.join(p['policy_ids'])} ({'; '.join(p['reasons'])})" for p in c["policy_decisions"]
    )
    approvals = " | ".join(
        f"{a['decision']} {a['approver']} [{', '.join(a['roles'])}] {a['reason']!r} {a['signature']}"
        for a in c["approvals"]
    )
    action = " | ".join(
        f"#{a['seq']} {a['status']} {a['action']} {a.get('amount') or ''} {a.get('currency') or ''} -> "
        f"{a.get('system_of_record') or '-'}"
        for a in c["actions"]
    )
    name = (c.get("source") or {}).get("name", "")
    return [s[c["document"]], name, s[c["outcome"]], s[model], s[policy], approvals, action, s[execution]]


def build_report(
    tracer: Tracer,
    result: VerifyResult,
    settings: Settings,
    *,
    execution: str | None = None,
    document: str | None = None,
    limit: int = 100000,
) -> tuple[str, int]:
    """The HTML page and the number of records in it (``settings``: roles and keys signatures are checked with)."""
    with _collector_paused():
        return _build(tracer, result, settings, execution, document, limit)


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cycle collector off while the page's rows are built (restored after, even on error).

    The report makes a few hundred thousand small lists and dicts, none of them in a cycle; with the collector on,
    each generation-2 pass walks all of them again: about a third of the build time at 100,000 records.
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _build(
    tracer: Tracer, result: VerifyResult, settings: Settings, execution: str | None, document: str | None, limit: int
) -> tuple[str, int]:
    size = tracer.store.size()
    col = _Collect(execution)
    if execution:  # one execution: its own records through the index, whatever the log's size
        scanned = _scan_execution(tracer, execution, limit, result.first_bad_seq)
    elif document:  # one document: the records of its lineage through the index, likewise
        scanned = _scan_document(tracer, document, limit, result.first_bad_seq)
    else:
        scanned = _scan(tracer, max(1, size - limit + 1), size, result.first_bad_seq)
    docs = cases(col.feed(scanned), settings)
    graphs = _graphs(tracer, col, docs, execution, document)
    rows = [_doc_row(c, col.doc_exec.get(c["document"], ""), col.s) for c in docs]
    data = {
        "strings": list(col.s),
        "records": col.rows,
        "documents": rows,
        "executions": [{"execution": k, **v} for k, v in col.execs.items()],
        "verification": {"ok": result.ok, "summary": result.summary(), "bad": result.first_bad_seq},
    }
    svgs = render_svgs(src for _, _, src in graphs)
    titles = [(t, d) for t, d, _ in graphs]
    return page(orjson.dumps(data, default=str).decode(), svgs, result, titles), len(col.rows)


def _graphs(
    tracer: Tracer, col: _Collect, docs: list[dict[str, Any]], execution: str | None, document: str | None
) -> list[tuple[str, str, str]]:
    """(title, document or "", DOT source) of each graph to draw."""
    chosen = execution or col.last_action_exec or (next(reversed(col.execs), "") if col.execs else "")
    out: list[tuple[str, str, str]] = []
    if chosen:
        seqs = [s for s, _ in tracer.index.execution_records(chosen)][-20000:]
        # read by runs of consecutive records (an execution's records mostly are), not one query a record
        recs = [
            lite_record(e, leaf) for lo, hi in seq_runs(seqs) for _s, e, leaf, _p, _c in tracer.store.scan_raw(lo, hi)
        ]
        if recs:
            out.append((f"execution {chosen}", "", execution_dot(recs, chosen)))
    picks = [document] if document else _pick_documents(docs, chosen, col)
    for doc in picks:
        tr = tracer.trace(doc)
        if tr.start:
            out.append((f"document {doc}", doc, trace_dot(tr, doc)))
    return out


def _pick_documents(docs: list[dict[str, Any]], execution: str, col: _Collect) -> list[str]:
    mine = [c for c in docs if col.doc_exec.get(c["document"]) == execution] or docs
    ranked = sorted(mine, key=lambda c: (c["outcome"] != "posted", not c["approvals"], -len(c["actions"])))
    return [c["document"] for c in ranked[:GRAPHED_DOCUMENTS]]
