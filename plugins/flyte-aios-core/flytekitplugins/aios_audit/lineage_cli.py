"""``aios lineage``: trace a decision to its document, model, policy and approvers (and what it caused); report."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from flytekitplugins.aios_audit.cli import BACKLOG_SHOWN, PUBLIC_KEY_OPTION, catch_up_ids, trusted_for
from flytekitplugins.aios_core.cli import settings_from
from flytekitplugins.aios_core.cli_output import names_stdout, output_path
from flytekitplugins.aios_core.settings import Settings

REF_HELP = (
    "record id (or 8+ hex prefix), #seq, approval request id (apr-...), sha256: digest of a document or output, "
    "model:name[@version], policy:<id> or principal:<name>"
)


def tracer_for(ctx: click.Context, url: str | None, json_mode: bool = False) -> Any:
    """A :class:`~flytekitplugins.aios_audit.lineage.Tracer` over the configured (or given) store."""
    from flytekitplugins.aios_audit.edges import EdgeIndex
    from flytekitplugins.aios_audit.existing import open_reading
    from flytekitplugins.aios_audit.lineage import Tracer

    s = settings_from(ctx)
    # A backlog of record ids shorter than BACKLOG_SHOWN is read from the log's tail (once, then from the store's map
    # of it), not indexed: the governance calls index it a step at a time. A longer one is indexed first, shown as a
    # step.
    store = open_reading(s, url, ids_tail_read=BACKLOG_SHOWN)  # a missing store is an error: nothing created
    catch_up_ids(store, json_mode, least=BACKLOG_SHOWN)
    return Tracer(store, EdgeIndex.for_store(store, s.state_dir))


@click.group()
def lineage() -> None:
    """Trace decisions to documents, models, policies and approvers; write the review report."""


def _describe(rec: Any) -> dict[str, Any]:
    ev, ex = rec.event, rec.event.execution
    return {
        "seq": rec.seq,
        "record_id": rec.record_id,
        "kind": ev.kind,
        "status": ev.status,
        "actor": ev.actor,
        "subject": ev.subject,
        "task": ex.task_name if ex else "",
        "execution": ex.execution_key if ex else "",
        "models": [m.model_dump() for m in ev.models],
    }


def trace_doc(tracer: Any, ref: str, settings: Settings) -> dict[str, Any]:
    """The JSON document of ``aios lineage trace REF`` (``settings``: roles and keys signatures are checked with)."""
    from flytekitplugins.aios_audit.lineage import record_edges, sources
    from flytekitplugins.aios_audit.lineage_cases import cases, models
    from flytekitplugins.aios_audit.stores import shown_ref

    tr = tracer.trace(ref)
    if not tr.start:
        msg = f"{shown_ref(ref)} names nothing in the audit trail: pass a {REF_HELP}"
        raise click.ClickException(msg)

    def records(nodes: list[str]) -> list[dict[str, Any]]:
        found = [tr.records[n] for n in nodes if n in tr.records]
        return [_describe(r) for r in sorted(found, key=lambda r: r.seq)]

    return {
        "ref": ref,
        "resolved": tr.start,
        "start": records(tr.start),
        "upstream": records(tr.upstream),
        "downstream": records(tr.downstream),
        "sources": sources(tr),
        "actions": sorted(r.seq for r in tr.records.values() if r.event.kind == "action"),
        "cases": cases(sorted(tr.records.values(), key=lambda r: r.seq), settings),
        "models": models(tracer, tr),
        "edges": [{"from": a, "to": b, "rel": rel, "digest": via} for a, b, rel, via in record_edges(tr)],
        "typed_edges": [
            {"child": c, "parent": p, "rel": rel, "sealed_in": seq} for c, p, rel, seq in dict.fromkeys(tr.edges)
        ],
        "truncated": tr.truncated,
    }


@lineage.command()
@click.argument("ref")
@click.option("--store", "url", default=None, help="Audit store URL (default: AIOS_AUDIT_STORE).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (the same facts as the text).")
@click.option(
    "--system-of-record", "sor", default=None, help="Where actions are posted (default: the connector's database)."
)
@click.pass_context
def trace(ctx: click.Context, ref: str, url: str | None, as_json: bool, sor: str | None) -> None:
    """Why did REF happen and what did it cause: document, model, policy, approvers, action.

    REF is a record id (or 8+ hex prefix), #seq, an approval request id (apr-...), a sha256: digest of a
    document or output, model:name[@version], policy:<id> or principal:<name>.
    """
    from flytekitplugins.aios_audit.lineage_sor import attach_rows, default_url
    from flytekitplugins.aios_audit.lineage_text import render_text

    settings = settings_from(ctx)
    doc = trace_doc(tracer_for(ctx, url, as_json), ref, settings)
    attach_rows(doc["cases"], sor if sor is not None else default_url(settings))
    click.echo(json.dumps(doc, indent=2, sort_keys=True, default=str) if as_json else render_text(doc))


@lineage.command()
@click.option("--out", type=output_path(), required=True, help="HTML file to write.")
@click.option("--store", "url", default=None, help="Audit store URL (default: AIOS_AUDIT_STORE).")
@click.option("--execution", default=None, help="Only this execution (name or project/domain/name); drawn as a graph.")
@click.option(
    "--document", default=None, help="Only the records of this document's lineage (sha256: digest); drawn as a graph."
)
@click.option(
    "--limit", type=click.IntRange(min=1), default=100000, show_default=True, help="At most the last N records."
)
@click.option(
    "--checkpoint",
    "checkpoint_file",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="Verify only the records after this signed checkpoint (as `aios audit verify --checkpoint`).",
)
@PUBLIC_KEY_OPTION
@click.pass_context
def report(
    ctx: click.Context,
    out: str,
    url: str | None,
    execution: str | None,
    document: str | None,
    limit: int,
    checkpoint_file: str | None,
    public_keys: tuple[str, ...],
) -> None:
    """Write the self-contained review report: verification, executions, documents, records, lineage graphs.

    Without --checkpoint the whole log is verified first (its cost grows with the log); with a trusted checkpoint
    only the records after it are, and the page says so.
    """
    from flytekitplugins.aios_audit.checkpoint import Checkpoint
    from flytekitplugins.aios_audit.incremental import verify_from
    from flytekitplugins.aios_audit.report import build_report
    from flytekitplugins.aios_audit.verify import verify_store, verify_workers
    from flytekitplugins.aios_core.cli_output import working

    settings = settings_from(ctx)
    tracer = tracer_for(ctx, url)
    # a scope that names nothing is a mistake to say so, before the verification (an empty report read as "OK")
    if execution and not tracer.index.execution_records(execution):
        msg = f"no records of execution {execution!r}: name it as project/domain/name or by its name"
        raise click.ClickException(msg)
    if document and not tracer.trace(document).start:
        raise click.ClickException(f"{document!r} names nothing in the audit trail: pass a document's sha256: digest")
    workers = verify_workers(settings.verify_workers)
    cp = Checkpoint.load(checkpoint_file) if checkpoint_file else None
    todo = tracer.store.size() - (min(cp.tree_size, tracer.store.size()) if cp is not None else 0)
    with working("verifying", todo) as progress:
        if cp is None:
            result = verify_store(tracer.store, progress=progress, workers=workers)
        else:
            result = verify_from(tracer.store, cp, trusted_for(ctx, public_keys), progress=progress, workers=workers)
    with working("writing the report", None):
        page, n = build_report(tracer, result, settings, execution=execution, document=document, limit=limit)
    from flytekitplugins.aios_audit.private_files import write_private

    # as every --out: it was written into another user's file (theirs to edit then) and through their link (R14); a
    # missing folder is made 0700 (mkdir(parents=True) made it 0777 under umask 0, and then refused it: R15)
    err = names_stdout(out)  # the line saying so goes beside the report, not into it
    try:
        write_private(out, page)
    except OSError as e:  # a full disk names no file: say which output could not be written
        raise OSError(e.errno, e.strerror, e.filename or str(out)) from None
    click.echo(f"report: {n} records, verification {'OK' if result.ok else 'FAILED'} -> {out}", err=err)
    if not result.ok:
        sys.exit(1)
