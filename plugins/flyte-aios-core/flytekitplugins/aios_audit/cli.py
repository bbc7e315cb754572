"""``aios audit``: verify, show, checkpoint and prove the audit trail.

Exit codes: 0 intact / proof valid, 1 tampering found / proof invalid, 2 usage or configuration error.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from flytekitplugins.aios_core.cli import settings_from
from flytekitplugins.aios_core.cli_output import Column, compact_time, names_stdout, output_path
from flytekitplugins.aios_core.errors import AiosError
from flytekitplugins.aios_core.visible import visible

BACKLOG_SHOWN = 100_000
"""Record ids waiting to be indexed (SQLite's ``audit_ids``) from which a one-shot command's look-ups by id index them
first; a shorter backlog they read from the log's tail (the store's ``ids_tail_read``), a few ms a look-up at ten
thousand records where indexing them first took 1.7-3.1 s at ten million. ``aios lineage`` commands show that
indexing as a step of its own."""


def _store(ctx: click.Context, url: str | None) -> Any:
    """The store a command of this group reads, if it exists (a missing one is an error, and nothing is created)."""
    from flytekitplugins.aios_audit.existing import open_reading

    return open_reading(settings_from(ctx), url, ids_tail_read=BACKLOG_SHOWN)


@click.group()
def audit() -> None:
    """Verify, show, prove and checkpoint the tamper-evident audit trail."""


class _Refused(click.ClickException):
    """A usage or configuration problem: exit 2 (1 means tampering found)."""

    exit_code = 2


PUBLIC_KEY_OPTION = click.option(
    "--public-key",
    "public_keys",
    type=click.Path(exists=True, dir_okay=False),
    multiple=True,
    help="Trust exactly this PEM key (repeatable) instead of trusted_checkpoint_keys.",
)


def trusted_for(ctx: click.Context, public_keys: tuple[str, ...]) -> Any:
    """The checkpoint keys a verifying command trusts: ``--public-key`` files, else ``trusted_checkpoint_keys``."""
    from flytekitplugins.aios_audit.trust import TrustedKeys

    if public_keys:
        return TrustedKeys.from_files(public_keys)
    return TrustedKeys.from_settings(settings_from(ctx))


@audit.command()
@click.option("--store", "url", default=None, help="Audit store URL (default: AIOS_AUDIT_STORE).")
@click.option("--checkpoint", "checkpoint_file", type=click.Path(exists=True, dir_okay=False), default=None)
@PUBLIC_KEY_OPTION
@click.option(
    "--deep", is_flag=True, help="With --checkpoint: walk the whole log (default: only the records after it)."
)
@click.option("--allow-empty", is_flag=True, help="A missing or empty store verifies (as 0 records).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
@click.pass_context
def verify(
    ctx: click.Context,
    url: str | None,
    checkpoint_file: str | None,
    public_keys: tuple[str, ...],
    deep: bool,
    allow_empty: bool,
    as_json: bool,
) -> None:
    """Recompute every hash; with --checkpoint check only the records after that signed tree head.

    --deep (or no checkpoint) walks every record, and with a checkpoint also checks that the first records
    still produce its root: run it on a schedule.
    """
    from flytekitplugins.aios_audit import projections as pj
    from flytekitplugins.aios_audit.checkpoint import Checkpoint
    from flytekitplugins.aios_audit.existing import StoreMissing, open_existing
    from flytekitplugins.aios_audit.incremental import incremental, verify_since
    from flytekitplugins.aios_audit.verify import verify_store, verify_workers

    cp = Checkpoint.load(checkpoint_file) if checkpoint_file else None
    trusted = trusted_for(ctx, public_keys) if cp is not None else None
    try:
        store = open_existing(settings_from(ctx), url, allow_empty=allow_empty)
    except StoreMissing as e:
        raise _Refused(str(e)) from None
    if store is not None and store.size() == 0 and not allow_empty:
        raise _Refused(
            "the audit log is empty: there is nothing to verify. Check --store / AIOS_AUDIT_STORE, or pass "
            "--allow-empty if an empty log is expected"
        )
    if store is None:  # missing, and --allow-empty: nothing was created
        click.echo("OK: 0 records (no audit log there; --allow-empty)")
        return
    from flytekitplugins.aios_core.cli_output import working

    full = cp is None or deep or not incremental(cp)
    size = store.size()
    todo = size - (0 if full or cp is None else min(cp.tree_size, size))
    workers = verify_workers(settings_from(ctx).verify_workers)
    tables = bool(getattr(store, "dialect", ""))
    missing = {g.state: pj.missing_through(store, g) for g in pj.GROUPS} if tables and full else {}
    found: list[Any] = []  # the projection rows the full walk re-derives from each entry it checks
    decisions = _decision_check(ctx) if full else None  # the full walk judges the approval decisions as it goes
    with working("verifying", todo, unit="records", json_mode=as_json) as progress:
        if not full and cp is not None:  # the records after it, their claims and projection rows, each read once
            since = verify_since(store, cp, trusted, progress=progress, workers=workers)
        else:
            rows = (missing, found) if tables else None
            result = verify_store(store, cp, trusted, progress=progress, workers=workers, rows=rows, also=decisions)
    if not full and cp is not None:
        result, projected, note = since.result, [p.line() for p in since.projections], since.note
        claims = [p.line() for p in since.claims] if result.ok else []
        junk: list[str] = []
    else:
        with working("claims, projections", None, unit="records", json_mode=as_json):  # the checks after the walk
            claims = _claims_problems(store) if result.ok else []
            projected, note = [], ""
            if result.ok and tables:  # the walk's findings, then rows naming records the log does not have
                found += pj.beyond(store, missing, full=True, found=found)
                projected, note = [p.line() for p in found], pj.group_notes(missing)
            elif result.ok:
                note = "this store keeps no projection tables"
            junk = _junk_decisions(ctx, store, decisions) if result.ok else []  # a full-walk check
    # SQLite's record-id table, after the checkpoint (or all of it): a missing row hides a record from look-ups by id
    after = 0 if full or cp is None else min(cp.tree_size, size)
    id_rows = getattr(store, "ids_problems", None)
    ids = id_rows(after) if result.ok and id_rows is not None else []
    projected += [f"audit_ids: {line}" for line in ids]
    if as_json:
        doc = {**dataclasses.asdict(result), "claims_problems": claims, "ignored_approval_decisions": junk}
        doc |= {"projection_problems": projected, "projection_note": note}
        click.echo(json.dumps({**doc, "ok": result.ok and not claims and not projected}, default=str))
    else:
        # each line escaped: a tampered record's text must not redraw the auditor's screen over a FAILED line
        click.echo("\n".join(visible(line) for line in result.summary().splitlines()))
        for line in claims:
            click.echo(f"FAILED: claims table differs from the sealed log: {visible(line)}")
        for line in projected:
            click.echo(f"FAILED: projection differs from the sealed log (tampering): {visible(line)}")
        if note:
            click.echo(f"note: {visible(note)}")
        for line in junk:
            click.echo(f"warning: ignored approval {_line_kind(line)} (counts for nothing): {visible(line)}")
    if not result.ok or claims or projected:
        sys.exit(1)


def catch_up_ids(store: Any, json_mode: bool = False, least: int = 0) -> bool | None:
    """Index the record ids appended since the last look-up by id (SQLite's ``audit_ids``, derived data, in
    chunks or by one rebuild of its index), as a progress step, when at least ``least`` wait (fewer are left to the
    next look-up by id).

    A SQLite log written by appends alone (no governance read since) leaves that to the first look-up: 44-48 s for
    ten million records on the project's 2-core VM (255 s in chunks), which a command would otherwise spend
    silently. ``aios audit rebuild-projections`` on a schedule (or any governance read) keeps it small.
    Returns whether the table is up to date (False: a read-only database), None for a store without one.
    """
    from flytekitplugins.aios_core.cli_output import working

    if getattr(store, "catch_up_ids", None) is None:
        return None
    backlog = int(store.ids_backlog())
    if backlog < least:
        return None
    with working("indexing record ids", backlog, unit="records", json_mode=json_mode) as progress:
        return bool(store.catch_up_ids(progress))


def _claims_problems(store: Any) -> list[str]:
    """The whole claims table against the sealed log (the full walk's check)."""
    from flytekitplugins.aios_audit.claims import verify_claims

    return [p.line() for p in verify_claims(store)]


def _line_kind(line: str) -> str:
    """``request`` or ``decision``: what an ignored-approval line is about (``audit_check.line_kind``)."""
    from flytekitplugins.aios_approvals.audit_check import line_kind

    return line_kind(line)


def _decision_check(ctx: click.Context) -> tuple[Any, list[Any]] | None:
    """``(make, parts)``, :func:`.verify.verify_store`'s ``also``: each walking process judges the approval
    decisions of its records (``audit_check.DecisionCheck``). None without the approvals plugin, or when its key
    cannot be had: then :func:`_junk_decisions` reads the log again after the walk (and reports what is wrong)."""
    try:
        from flytekitplugins.aios_approvals import signing
        from flytekitplugins.aios_approvals.audit_check import DecisionCheck
    except ImportError:
        return None
    try:
        key = signing.public_key(settings_from(ctx))
    except (AiosError, ValueError):  # the pass after the walk raises it again, where it always did
        return None
    return (lambda first: DecisionCheck(key, first)), []


def _junk_decisions(ctx: click.Context, store: Any, decisions: tuple[Any, list[Any]] | None) -> list[str]:
    """Decision records whose signature does not verify (reported, never counted); empty without approvals.

    From the parts the walk's processes returned (``decisions``, :func:`_decision_check`), or, without them or when
    a request id used twice across the two halves leaves them short, one pass over the log here."""
    try:
        from flytekitplugins.aios_approvals.audit_check import junk_decisions, merge
        from flytekitplugins.aios_approvals.evaluate import Env
    except ImportError:
        return []
    if decisions is not None and (lines := merge(decisions[1])) is not None:
        return lines
    return junk_decisions(dataclasses.replace(Env.load(settings_from(ctx)), store=store))


@audit.command("rebuild-projections")
@click.option("--store", "url", default=None, help="Audit store URL (default: AIOS_AUDIT_STORE).")
@click.option("--full", is_flag=True, help="Drop the projection tables and rebuild them from every record.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
@click.pass_context
def rebuild_projections(ctx: click.Context, url: str | None, full: bool, as_json: bool) -> None:
    """Build the projection tables from the log (upgrading an existing store in place), verifying as it goes.

    Without --full, fills the rows of the records written before this version (resumable; appends go on). With
    --full, drops the tables and re-derives every row (after `aios audit verify` reported projection tampering).
    """
    from flytekitplugins.aios_audit.existing import StoreMissing, open_existing
    from flytekitplugins.aios_audit.projections import ProjectionTampered, rebuild, verify_projections

    try:
        store = open_existing(settings_from(ctx), url)
    except StoreMissing as e:
        raise _Refused(str(e)) from None
    if store is None or not getattr(store, "dialect", ""):
        raise _Refused("this store keeps no projection tables")

    def progress(done: int, total: int) -> None:
        if not as_json:
            click.echo(f"projections: {done}/{total} records re-derived and verified", err=True)

    indexes = build_log_indexes(store, as_json)
    try:
        rows = rebuild(store, full=full, progress=progress)
    except ProjectionTampered as e:
        click.echo(json.dumps({"ok": False, "error": str(e)}) if as_json else f"FAILED: {visible(str(e))}")
        sys.exit(1)
    problems, note = verify_projections(store)
    ids = catch_up_ids(store, as_json)
    levels, lineage = _upgrade_derived(store, settings_from(ctx).state_dir, as_json)
    failed = [p.line() for p in problems]
    if levels is not None and levels[0] < levels[1]:
        failed.append(
            f"tree levels stop at {levels[0]} of {levels[1]} records: a gap in the log (run aios audit verify)"
        )
    doc: dict[str, Any] = {"ok": not failed, "rows_written": rows, "records": store.size(), "full": full}
    doc |= {"record_id_index": ids, "tree_levels": levels[0] if levels else None, "lineage_index": lineage}
    doc |= {"log_indexes": indexes}
    doc |= {"projection_problems": [p.line() for p in problems], "projection_note": note, "failed": failed}
    if as_json:
        click.echo(json.dumps(doc))
    else:
        click.echo(f"projections rebuilt: {rows} rows written for {doc['records']} records")
        for line in failed:
            click.echo(f"FAILED: {visible(line)}")
    if failed:
        sys.exit(1)


def build_log_indexes(store: Any, quiet: bool) -> list[str]:
    """Build the log's read indexes a large log was opened without (the first step of an upgrade: they serve `aios
    audit show`'s filters; SQLite one write transaction each, PostgreSQL concurrently), a line each; their names."""
    build = getattr(store, "build_indexes", None)
    if build is None:
        return []
    missing = store.missing_indexes()
    if missing and not quiet:
        click.echo(f"log indexes: building {', '.join(missing)} over {store.size()} records", err=True)

    def progress(name: str, seconds: float) -> None:
        if not quiet:
            click.echo(f"log indexes: {name} built in {seconds:.1f} s", err=True)

    return list(build(progress))


def _upgrade_derived(store: Any, state_dir: Path, quiet: bool) -> tuple[tuple[int, int] | None, int | None]:
    """The rest of an upgrade: the stored Merkle tree levels (and, for a store without a complete lineage
    projection, the lineage index file), each brought up to the log's size now with progress (else the first proof
    and the first trace after the upgrade pay for the whole log).

    Returns ``((integrated, size) or None where the store keeps no levels, records indexed for lineage or None
    where the store's lineage projection serves lineage)``.
    """
    from flytekitplugins.aios_audit import nodes
    from flytekitplugins.aios_audit.edges import EdgeIndex

    def say(what: str) -> Callable[[int, int], None]:
        def progress(done: int, total: int) -> None:
            if not quiet:
                click.echo(f"{what}: {done}/{total} records", err=True)

        return progress

    levels = nodes.catch_up(store, say("tree levels"))
    index = EdgeIndex.for_store(store, state_dir)
    if not isinstance(index, EdgeIndex):
        return levels, None
    try:
        indexed = index.catch_up(store, say("lineage index"))
    finally:
        index.close()
    return levels, indexed


@audit.command()
@click.option("--store", "url", default=None, help="Audit store URL (default: AIOS_AUDIT_STORE).")
@click.option(
    "--every",
    type=click.FloatRange(min=0.01, max=86400),
    default=None,
    help="Keep running: integrate whatever is staged every this many seconds, at most a day (a service beside bulk "
    "writers).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object (one line per pass).")
@click.pass_context
def integrate(ctx: click.Context, url: str | None, every: float | None, as_json: bool) -> None:
    """Sequence every acknowledged, staged append now (PostgreSQL batched sequencing; nothing to do on SQLite).

    Writers that use `stage_many` get a durable acknowledgement before their records are sequenced; the next writer
    to find the log's lock free integrates them. This command (once, or with --every as a loop) bounds the delay
    when no writer comes after them.
    """
    import time

    from flytekitplugins.aios_audit.api import audit_log

    # a writer's step, run as a service beside the writers: it may start before the first of them, so it opens (and
    # creates) the store as they do, where the read commands refuse a missing one
    store = audit_log(settings_from(ctx), url=url, emit=False, ids_tail_read=BACKLOG_SHOWN)
    while True:
        t0 = time.perf_counter()
        try:
            n = store.integrate_staged()
        except TimeoutError as e:
            raise _Refused(str(e)) from None
        doc = {"integrated": n, "records": store.size(), "seconds": round(time.perf_counter() - t0, 3)}
        if as_json:
            click.echo(json.dumps(doc))
        elif n or every is None:
            click.echo(f"integrated {n} staged record(s); the log holds {doc['records']} in {doc['seconds']} s")
        if every is None:
            return
        time.sleep(every)


@audit.command()
@click.option("--execution", "--run", "execution", default=None, help="Flyte execution (project/domain/name or name).")
@click.option("--task", default=None, help="Task name (substring).")
@click.option("--kind", default=None, help="Record kind (task, policy_decision, approval_decision, ...).")
@click.option("--actor", default=None, help="Who acted (exact principal, e.g. service:document-pipeline).")
@click.option("--since", type=click.DateTime(), default=None, help="Recorded at or after (UTC).")
@click.option("--until", type=click.DateTime(), default=None, help="Recorded before (UTC).")
@click.option(
    "--limit", type=click.IntRange(min=1), default=50, show_default=True, help="Show the last N matches (1 or more)."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines instead of a table.")
@click.pass_context
def show(ctx: click.Context, /, as_json: bool, limit: int, **filters: Any) -> None:
    """List records with filters, newest last (filtered, ordered and limited in the database)."""
    from flytekitplugins.aios_audit.projections_show import ShowFilter, select_records, unindexed

    store, want = _store(ctx, None), ShowFilter(**filters)
    if getattr(store, "dialect", ""):
        if slow := unindexed(store, want):
            click.echo(
                f"note: this log's index for {', '.join(slow)} is not built yet, so the log is read for it; "
                "`aios audit rebuild-projections` builds it (once, with progress)",
                err=True,
            )
        rows = select_records(store, want, limit)
    else:  # a store without SQL: filter a scan
        rows = [r for r in store.scan() if want.matches(r)][-limit:]
    if as_json:
        for r in rows:
            click.echo(r.model_dump_json())
        return
    from flytekitplugins.aios_core.cli_output import print_table

    print_table(f"audit records ({len(rows)} shown)", SHOW_COLUMNS, [_show_row(r) for r in rows], more=_MORE)


def _short_record(text: str) -> str:
    return text[:8]


SHOW_COLUMNS = [
    Column("seq", key=True),
    Column("recorded (UTC)", short=compact_time),
    Column("kind", min_width=14),
    Column("status", min_width=7, drop=1),
    Column("task", min_width=16, drop=2),
    Column("execution", min_width=12, drop=3),
    Column("actor", min_width=16),
    Column("record id", short=_short_record, drop=4),
]
"""``aios audit show``: at 80 columns the execution, task and record id give way (``--json`` has them)."""
_MORE = "--json has whole records"


def _show_row(r: Any) -> list[str]:
    ex = r.event.execution
    return [
        str(r.seq),
        r.recorded_at.strftime("%Y-%m-%d %H:%M:%S"),
        r.event.kind,
        r.event.status,
        ex.task_name if ex else "",
        ex.execution_key if ex else "",
        r.event.actor,
        r.record_id[:16],
    ]


@audit.command()
@click.option("--out", "out", type=output_path(), required=True, help="Where to write the checkpoint.")
@click.option(
    "--deep",
    is_flag=True,
    help="Walk every record (default: only those after the newest checkpoint this key signed of this log).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
@click.pass_context
def checkpoint(ctx: click.Context, out: str, deep: bool, as_json: bool) -> None:
    """Verify the log and write a signed checkpoint (keep it outside the store's reach).

    The records after the newest checkpoint this key signed of this log (kept in the state folder's checkpoints/)
    are verified, and the log must still extend it; without one, or with --deep, every record is walked. Then the
    Merkle tree levels of the records it covers are stored (those not stored yet), so that proofs against it read
    O(log n) hashes from the first one on; a role that may not write them gets a note, not an error.
    """
    from flytekitplugins.aios_audit.nodes import integrate_through
    from flytekitplugins.aios_audit.proofs import checkpoints_dir, latest_checkpoint, make_checkpoint
    from flytekitplugins.aios_audit.trust import HOW_TO_TRUST, TrustedKeys
    from flytekitplugins.aios_audit.verify import verify_workers
    from flytekitplugins.aios_core.cli_output import working

    settings = settings_from(ctx)
    store = _store(ctx, None)
    previous = latest_checkpoint(checkpoints_dir(settings), store, settings.signing_key)  # continued from
    after = previous.tree_size if previous is not None and not deep else 0  # the records after it are walked
    with working("verifying", store.size() - after, unit="records", json_mode=as_json) as progress:
        workers = verify_workers(settings.verify_workers)
        cp = make_checkpoint(store, settings.signing_key, previous, deep=deep, progress=progress, workers=workers)
    err = names_stdout(out)  # what follows goes beside the checkpoint, not into it
    cp.save(out)
    cp.save(checkpoints_dir(settings) / f"{cp.tree_size:012d}.json")
    with working("storing tree levels", cp.tree_size, unit="records", json_mode=as_json) as progress:
        levels, why_not = integrate_through(store, cp.tree_size, lambda done, _size: progress(done))
    untrusted = bool(TrustedKeys.from_settings(settings).check(cp))
    if as_json:
        doc = {"tree_size": cp.tree_size, "root_hash": cp.root_hash, "key_id": cp.key_id, "out": out}
        doc |= {"levels_stored_through": min(levels, cp.tree_size), "levels_note": why_not}
        click.echo(json.dumps({**doc, "key_trusted": not untrusted, "verified_after": after}, sort_keys=True), err=err)
        return
    what = f"checkpoint: {cp.tree_size} records, root {cp.root_hash}, key {cp.key_name}+{cp.key_id}"
    click.echo(f"{what} -> {out}", err=err)
    if previous is not None:
        how = f"records {after + 1}..{cp.tree_size} verified" if after < cp.tree_size else "no record appended since"
        how = "every record walked (--deep)" if deep else how
        click.echo(f"{how}; extends the checkpoint of {previous.tree_size} records this key signed before", err=err)
    click.echo(f"verifier key (C2SP): {_vkey(settings.signing_key)}", err=err)
    if why_not:
        after_note = "the first proof against this checkpoint integrates them (or reads every leaf)"
        click.echo(f"note: {why_not}; {after_note}", err=err)
    if untrusted:
        click.echo(
            f"note: key {cp.key_id} is not in trusted_checkpoint_keys, so verifiers will refuse it: {HOW_TO_TRUST}",
            err=err,
        )


def _vkey(signing_key: str) -> str:
    from flytekitplugins.aios_audit.checkpoint import KEY_NAME, load_signing_key
    from flytekitplugins.aios_audit.note import raw_public, vkey

    return vkey(KEY_NAME, raw_public(load_signing_key(signing_key).public_key()))


@audit.command()
@click.argument("record")
@click.option("--checkpoint", "checkpoint_file", type=click.Path(exists=True, dir_okay=False), default=None)
@click.option("--out", type=output_path(), default=None, help="Write the proof here (default stdout).")
@click.option("--json", "as_json", is_flag=True, help="With --out: print {out, proof} as JSON, not a sentence.")
@click.pass_context
def prove(ctx: click.Context, record: str, checkpoint_file: str | None, out: str | None, as_json: bool) -> None:
    """Inclusion proof of RECORD (record id or #seq) against a checkpoint (default: a fresh one)."""
    from flytekitplugins.aios_audit.checkpoint import Checkpoint
    from flytekitplugins.aios_audit.proofs import continuing_checkpoint, prove_inclusion

    store = _store(ctx, None)
    cp = Checkpoint.load(checkpoint_file) if checkpoint_file else continuing_checkpoint(store, settings_from(ctx))[0]
    _write(prove_inclusion(store, record, cp), out, as_json)


@audit.command()
@click.option("--from", "old_file", type=click.Path(exists=True, dir_okay=False), required=True)
@click.option("--out", type=output_path(), default=None)
@click.option("--json", "as_json", is_flag=True, help="With --out: print {out, proof} as JSON, not a sentence.")
@click.pass_context
def consistency(ctx: click.Context, old_file: str, out: str | None, as_json: bool) -> None:
    """Consistency proof from an old checkpoint to a fresh checkpoint of the current log."""
    from flytekitplugins.aios_audit.checkpoint import Checkpoint
    from flytekitplugins.aios_audit.proofs import continuing_checkpoint, prove_consistency

    store = _store(ctx, None)
    new = continuing_checkpoint(store, settings_from(ctx))[0]
    _write(prove_consistency(store, Checkpoint.load(old_file), new), out, as_json)


@audit.command("verify-proof")
@click.argument("proof_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--checkpoint", "checkpoint_file", type=click.Path(exists=True, dir_okay=False), required=True)
@PUBLIC_KEY_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
@click.pass_context
def verify_proof(
    ctx: click.Context, proof_file: str, checkpoint_file: str, public_keys: tuple[str, ...], as_json: bool
) -> None:
    """Verify a proof offline against a checkpoint (no store needed)."""
    from flytekitplugins.aios_audit.checkpoint import Checkpoint
    from flytekitplugins.aios_audit.proofs import check_proof
    from flytekitplugins.aios_core.text_files import parse_json, read_text

    doc = parse_json(read_text(proof_file, "proof file"), proof_file)
    ok, reason = check_proof(doc, Checkpoint.load(checkpoint_file), trusted_for(ctx, public_keys))
    if as_json:
        click.echo(json.dumps({"ok": ok, "reason": reason, "proof": proof_file, "checkpoint": checkpoint_file}))
    else:
        click.echo(("VALID: " if ok else "INVALID: ") + visible(reason))
    if not ok:
        sys.exit(1)


def _write(doc: dict[str, Any], out: str | None, as_json: bool = False) -> None:
    text = json.dumps(doc, indent=2, sort_keys=True)
    if out:
        from flytekitplugins.aios_audit.private_files import write_private

        err = names_stdout(out)  # the line saying so goes beside the output, not into it
        write_private(out, text + "\n")
        said = json.dumps({"out": out, "proof": doc}, sort_keys=True) if as_json else f"proof written to {out}"
        click.echo(said, err=err)
    else:
        click.echo(text)


@audit.command("public-key")
@click.option("--out", type=output_path(), default=None, help="Write the PEM here (default stdout).")
@click.pass_context
def public_key(ctx: click.Context, out: str | None) -> None:
    """The public key of the checkpoint signing key: what verifiers list in trusted_checkpoint_keys."""
    from flytekitplugins.aios_audit.checkpoint import key_id, load_signing_key, public_pem

    pem = public_pem(load_signing_key(settings_from(ctx).signing_key))
    if out:
        from flytekitplugins.aios_audit.private_files import write_private

        err = names_stdout(out)  # the line saying so goes beside the PEM, not into it
        write_private(out, pem)
        click.echo(f"public key {key_id(pem)} written to {out}", err=err)
    else:
        click.echo(pem, nl=False)
