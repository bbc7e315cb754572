"""``aios audit``: verify, show, checkpoint and prove the audit trail.

Exit codes: 0 intact / proof valid, 1 tampering found / proof invalid, 2 usage or configuration error.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

import click

from flytekitplugins.aios_core.cli import settings_from


def _store(ctx: click.Context, url: str | None) -> Any:
    from flytekitplugins.aios_audit.api import audit_log

    return audit_log(settings_from(ctx), url=url, emit=False)


@click.group()
def audit() -> None:
    """Verify, show, prove and checkpoint the tamper-evident audit trail."""


@audit.command()
@click.option("--store", "url", default=None, help="Audit store URL (default: AIOS_AUDIT_STORE).")
@click.option("--checkpoint", "checkpoint_file", type=click.Path(exists=True, dir_okay=False), default=None)
@click.option("--public-key", type=click.Path(exists=True, dir_okay=False), default=None, help="Trusted PEM.")
@click.pass_context
def verify(ctx: click.Context, url: str | None, checkpoint_file: str | None, public_key: str | None) -> None:
    """Recompute every hash; with --checkpoint also check the log still extends that signed tree head."""
    from flytekitplugins.aios_audit.checkpoint import Checkpoint
    from flytekitplugins.aios_audit.verify import verify_store

    cp = Checkpoint.load(checkpoint_file) if checkpoint_file else None
    trusted = Path(public_key).read_text(encoding="utf-8") if public_key else None
    result = verify_store(_store(ctx, url), cp, trusted)
    click.echo(result.summary())
    if not result.ok:
        sys.exit(1)


@audit.command()
@click.option("--execution", default=None, help="Flyte execution (project/domain/name or just name).")
@click.option("--task", default=None, help="Task name (substring).")
@click.option("--kind", default=None, help="Record kind (task, policy_decision, approval_decision, ...).")
@click.option("--since", type=click.DateTime(), default=None, help="Recorded at or after (UTC).")
@click.option("--until", type=click.DateTime(), default=None, help="Recorded before (UTC).")
@click.option("--limit", type=int, default=50, show_default=True, help="Show the last N matches.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines instead of a table.")
@click.pass_context
def show(ctx: click.Context, /, as_json: bool, limit: int, **filters: Any) -> None:
    """List records with filters, newest last."""
    rows = [r for r in _store(ctx, None).scan() if _match(r, **filters)][-limit:] if limit > 0 else []
    if as_json:
        for r in rows:
            click.echo(r.model_dump_json())
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"audit records ({len(rows)} shown)")
    for col in ("seq", "recorded (UTC)", "kind", "status", "task", "execution", "actor", "record id"):
        table.add_column(col, overflow="fold")
    for r in rows:
        ex = r.event.execution
        table.add_row(
            str(r.seq),
            r.recorded_at.strftime("%Y-%m-%d %H:%M:%S"),
            r.event.kind,
            r.event.status,
            ex.task_name if ex else "",
            ex.execution_key if ex else "",
            r.event.actor,
            r.record_id[:16],
        )
    Console().print(table)


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    return value.replace(tzinfo=dt.UTC) if value is not None and value.tzinfo is None else value


def _match(r: Any, execution: str | None, task: str | None, kind: str | None, since: Any, until: Any) -> bool:
    ex = r.event.execution
    if kind and r.event.kind != kind:
        return False
    if execution and not (ex and execution in (ex.execution_key, ex.name)):
        return False
    if task and not (ex and task in ex.task_name):
        return False
    since, until = _utc(since), _utc(until)
    return not ((since and r.recorded_at < since) or (until and r.recorded_at >= until))


@audit.command()
@click.option("--out", "out", type=click.Path(dir_okay=False), required=True, help="Where to write the checkpoint.")
@click.pass_context
def checkpoint(ctx: click.Context, out: str) -> None:
    """Verify the log and write a signed checkpoint (keep it outside the store's reach)."""
    from flytekitplugins.aios_audit.proofs import make_checkpoint

    settings = settings_from(ctx)
    cp = make_checkpoint(_store(ctx, None), settings.signing_key)
    cp.save(out)
    cp.save(settings.state_dir / "checkpoints" / f"{cp.tree_size:012d}.json")
    click.echo(f"checkpoint: {cp.tree_size} records, root {cp.root_hash}, key {cp.key_id} -> {out}")


@audit.command()
@click.argument("record")
@click.option("--checkpoint", "checkpoint_file", type=click.Path(exists=True, dir_okay=False), default=None)
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="Write the proof here (default stdout).")
@click.pass_context
def prove(ctx: click.Context, record: str, checkpoint_file: str | None, out: str | None) -> None:
    """Inclusion proof of RECORD (record id or #seq) against a checkpoint (default: a fresh one)."""
    from flytekitplugins.aios_audit.checkpoint import Checkpoint
    from flytekitplugins.aios_audit.proofs import make_checkpoint, prove_inclusion

    store = _store(ctx, None)
    cp = Checkpoint.load(checkpoint_file) if checkpoint_file else make_checkpoint(store, settings_from(ctx).signing_key)
    _write(prove_inclusion(store, record, cp), out)


@audit.command()
@click.option("--from", "old_file", type=click.Path(exists=True, dir_okay=False), required=True)
@click.option("--out", type=click.Path(dir_okay=False), default=None)
@click.pass_context
def consistency(ctx: click.Context, old_file: str, out: str | None) -> None:
    """Consistency proof from an old checkpoint to a fresh checkpoint of the current log."""
    from flytekitplugins.aios_audit.checkpoint import Checkpoint
    from flytekitplugins.aios_audit.proofs import make_checkpoint, prove_consistency

    store = _store(ctx, None)
    new = make_checkpoint(store, settings_from(ctx).signing_key)
    _write(prove_consistency(store, Checkpoint.load(old_file), new), out)


@audit.command("verify-proof")
@click.argument("proof_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--checkpoint", "checkpoint_file", type=click.Path(exists=True, dir_okay=False), required=True)
@click.option("--public-key", type=click.Path(exists=True, dir_okay=False), default=None, help="Trusted PEM.")
def verify_proof(proof_file: str, checkpoint_file: str, public_key: str | None) -> None:
    """Verify a proof offline against a checkpoint (no store needed)."""
    from flytekitplugins.aios_audit.checkpoint import Checkpoint
    from flytekitplugins.aios_audit.proofs import check_proof

    try:
        doc = json.loads(Path(proof_file).read_text(encoding="utf-8"))
    except ValueError as e:
        raise click.ClickException(f"{proof_file} is not JSON: {e}") from e
    trusted = Path(public_key).read_text(encoding="utf-8") if public_key else None
    ok, reason = check_proof(doc, Checkpoint.load(checkpoint_file), trusted)
    click.echo(("VALID: " if ok else "INVALID: ") + reason)
    if not ok:
        sys.exit(1)


def _write(doc: dict[str, Any], out: str | None) -> None:
    text = json.dumps(doc, indent=2, sort_keys=True)
    if out:
        Path(out).write_text(text + "\n", encoding="utf-8")
        click.echo(f"proof written to {out}")
    else:
        click.echo(text)
