"""``aios lineage``: trace an output back to its sources and forward to the actions taken; HTML report."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from flytekitplugins.aios_core.cli import settings_from


def _graph(ctx: click.Context, url: str | None) -> tuple[Any, Any]:
    from flytekitplugins.aios_audit.api import audit_log
    from flytekitplugins.aios_audit.lineage import build_graph

    store = audit_log(settings_from(ctx), url=url, emit=False)
    return store, build_graph(store.scan())


@click.group()
def lineage() -> None:
    """Trace outputs to documents, models, policies and approvers; render a report."""


def _describe(rec: Any) -> dict[str, Any]:
    ev, ex = rec.event, rec.event.execution
    return {
        "seq": rec.seq,
        "record_id": rec.record_id,
        "kind": ev.kind,
        "status": ev.status,
        "task": ex.task_name if ex else "",
        "execution": ex.execution_key if ex else "",
        "inputs": ev.inputs,
        "outputs": ev.outputs,
        "models": [m.model_dump() for m in ev.models],
        "policy_decisions": len(ev.policy_decisions),
        "approvals": len(ev.approvals),
    }


def trace_doc(g: Any, ref: str) -> dict[str, Any]:
    """Upstream records, source digests, downstream records and actions for ``ref``."""
    from flytekitplugins.aios_audit.lineage import resolve, sources, walk

    start = resolve(g, ref)
    if not start:
        msg = f"{ref!r} names no record: pass a record id (or a unique prefix of 8+ chars), #seq, or a sha256: digest"
        raise click.ClickException(msg)
    up = walk(g, start, forward=False)
    down = walk(g, start, forward=True)
    return {
        "ref": ref,
        "start": [_describe(g.records[r]) for r in start],
        "upstream": [_describe(g.records[r]) for r in up],
        "sources": sources(g, [*up, *start]),
        "downstream": [_describe(g.records[r]) for r in down],
        "actions": [g.records[r].seq for r in down if g.records[r].event.kind == "action"],
        "edges": [
            {"from": g.records[e.src].seq, "to": g.records[e.dst].seq, "kind": e.kind, "digest": e.label}
            for e in g.edges
            if {e.src, e.dst} <= {*up, *start, *down}
        ],
    }


@lineage.command()
@click.argument("ref")
@click.option("--store", "url", default=None, help="Audit store URL (default: AIOS_AUDIT_STORE).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def trace(ctx: click.Context, ref: str, url: str | None, as_json: bool) -> None:
    """Walk lineage edges from REF (record id, #seq or sha256: digest) back to sources and forward to actions."""
    _, g = _graph(ctx, url)
    doc = trace_doc(g, ref)
    if as_json:
        click.echo(json.dumps(doc, indent=2, sort_keys=True))
        return
    from rich.console import Console
    from rich.tree import Tree

    def line(d: dict[str, Any]) -> str:
        return f"#{d['seq']} {d['kind']} {d['task']} ({d['status']}) {d['record_id'][:12]}"

    root = Tree(f"[bold]lineage of {ref}[/bold]")
    for name, key in (("start", "start"), ("upstream (derives from)", "upstream"), ("downstream", "downstream")):
        branch = root.add(f"{name}: {len(doc[key])}")
        for d in doc[key]:
            branch.add(line(d))
    src = root.add(f"sources (never produced by a governed step): {len(doc['sources'])}")
    for digest, seqs in doc["sources"].items():
        src.add(f"{digest} consumed by {', '.join(f'#{s}' for s in seqs)}")
    root.add(f"actions taken: {', '.join(f'#{s}' for s in doc['actions']) or 'none'}")
    Console().print(root)


@lineage.command()
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="HTML file to write.")
@click.option("--store", "url", default=None, help="Audit store URL (default: AIOS_AUDIT_STORE).")
@click.option("--execution", default=None, help="Only records of this execution (name or project/domain/name).")
@click.option("--limit", type=int, default=500, show_default=True, help="At most the last N records.")
@click.pass_context
def report(ctx: click.Context, out: str, url: str | None, execution: str | None, limit: int) -> None:
    """Write a self-contained HTML report: lineage graph (inline SVG), records, verification status."""
    from flytekitplugins.aios_audit.report import render_report
    from flytekitplugins.aios_audit.verify import verify_store

    store, g = _graph(ctx, url)
    ids = [rid for rid, r in g.records.items() if _in_execution(r, execution)][-limit:]
    result = verify_store(store)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(render_report(g, ids, result), encoding="utf-8")
    click.echo(f"report: {len(ids)} records, verification {'OK' if result.ok else 'FAILED'} -> {out}")
    if not result.ok:
        sys.exit(1)


def _in_execution(rec: Any, execution: str | None) -> bool:
    ex = rec.event.execution
    return execution is None or (ex is not None and execution in (ex.name, ex.execution_key))
