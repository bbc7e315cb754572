"""``aios models``: read the model catalog (list, show, history) and ask for a promotion."""

from __future__ import annotations

import itertools
import json
import sys
from collections.abc import Iterator
from typing import Any

import click

from flytekitplugins.aios_catalog.catalog import Catalog
from flytekitplugins.aios_catalog.entries import STAGES
from flytekitplugins.aios_catalog.errors import CatalogError
from flytekitplugins.aios_core.cli import settings_from
from flytekitplugins.aios_core.cli_output import Column, UserError, compact_time, print_table, short_digest
from flytekitplugins.aios_core.errors import AiosError


def _catalog(ctx: click.Context, *, must_exist: bool = True) -> Catalog:
    """The catalog over the configured store. A command that only reads needs the store to exist (a missing one is
    an error naming it, and nothing is created); ``promote`` records its change and creates it (``must_exist``
    false, as for ``list``, which has checked already)."""
    settings = settings_from(ctx)
    if must_exist:
        from flytekitplugins.aios_audit.existing import require_log

        require_log(settings)
    return Catalog(settings)


def _split(model: str) -> tuple[str, str | None]:
    name, _, version = model.partition("@")
    return name, version or None


def _print_table(title: str, columns: list[Column], rows: list[list[str]]) -> None:
    print_table(title, columns, rows)  # cells are escaped there: approvers' roles are written [role]


# What gives way at 80 columns (``drop``: highest first; ``--json`` prints everything):
CATALOG_COLUMNS = [
    Column("name", key=True),
    Column("version", key=True),
    Column("stage", min_width=10),
    Column("owner", min_width=12, drop=2),
    Column("digest", short=short_digest, drop=3),
    Column("data classes", min_width=16, drop=1),
]
HISTORY_COLUMNS = [
    Column("seq", key=True),
    Column("at (UTC)", short=compact_time),
    Column("actor", min_width=14, drop=3),
    Column("op", min_width=8, drop=2),
    Column("model", min_width=12, short=lambda m: "@" + m.partition("@")[2]),  # the title names the model
    Column("stage", min_width=11, short=lambda s: "-> " + s.rpartition("-> ")[2]),
    Column("approved by [role] reason", min_width=20, drop=1),
    Column("reason", min_width=12, drop=4),
    Column("record", short=lambda r: r[:8], drop=5),
]
LINEAGE_COLUMNS = [
    Column("model", min_width=18),
    Column("digest", short=short_digest, drop=5),
    Column("training data", min_width=16, drop=1, short=lambda d: ", ".join(map(short_digest, d.split(", ")))),
    Column("training", min_width=12, drop=2),
    Column("evaluation", min_width=10, drop=3),
    Column("drift trigger", min_width=13, drop=4),
]


def _unknown(cat: Catalog, name: str, version: str | None) -> UserError:
    """No such model (or version): name what the catalog holds (the first few) and what to run."""
    if version and next(cat.entries(name), None) is not None:
        known = _some(e.version for e in cat.entries(name))
        return UserError(f"{name} has no version {version!r} (known: {known}); see `aios models list --name {name}`")
    return UserError(f"no model {name!r} in the catalog (known: {_some(cat.names())}); see `aios models list`")


def _some(items: Any, most: int = 20) -> str:
    """The first ``most`` of ``items`` joined, and how the rest was cut (a catalog may hold thousands)."""
    first = list(itertools.islice(items, most + 1))
    return ", ".join(first[:most]) + (", ..." if len(first) > most else "") if first else "none"


@click.group()
def models() -> None:
    """Model catalog: every model the pack uses or produces, with stage, digests and metrics."""


@models.command("list")
@click.option("--name", default=None, help="Only versions of this model.")
@click.option("--stage", type=click.Choice(STAGES), default=None, help="Only this stage.")
@click.option(
    "--limit",
    type=click.IntRange(min=0, max=sys.maxsize),
    default=100,
    show_default=True,
    help="Show the first N entries (0: all, streamed).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def list_models(ctx: click.Context, name: str | None, stage: Any, limit: int, as_json: bool) -> None:
    """List catalog entries by name, then registration order (one name's versions in memory at a time)."""
    from flytekitplugins.aios_audit.existing import absent_note

    if note := absent_note(settings_from(ctx)):  # no store yet: no entry, and none is created (nor seeded) by looking
        click.echo(note, err=True)
        found: Iterator[Any] = iter(())
    else:
        found = _catalog(ctx, must_exist=False).entries(name, stage)  # it exists: checked just above
    if limit == 0 and as_json:  # every entry, written as it is folded
        click.echo("[", nl=False)
        for i, e in enumerate(found):
            click.echo(("," if i else "") + "\n  " + e.model_dump_json(), nl=False)
        click.echo("\n]")
        return
    entries = list(itertools.islice(found, limit or None))
    more = bool(limit) and next(found, None) is not None
    if as_json:
        click.echo(json.dumps([e.model_dump(mode="json") for e in entries], indent=2))
    else:
        rows = [[e.name, e.version, e.stage, e.owner, e.digest, ", ".join(e.allowed_data_classes)] for e in entries]
        _print_table("model catalog", CATALOG_COLUMNS, rows)
    if more:
        last = entries[-1].model_id
        msg = f"showing the first {limit} entries (to {last}); more match: narrow with --name or --stage, or --limit 0"
        click.echo(msg, err=True)


@models.command("show")
@click.argument("model")
@click.option("--json", "as_json", is_flag=True, help="Accepted for scripts: `show` always prints JSON.")
@click.pass_context
def show(ctx: click.Context, model: str, as_json: bool) -> None:
    """Show MODEL (``name@version``, or ``name`` for its champion) as JSON."""
    cat = _catalog(ctx)
    name, version = _split(model)
    entry = cat.get(name, version) if version else cat.champion(name)
    if entry is None and (version or next(cat.entries(name), None) is None):
        raise _unknown(cat, name, version)
    if entry is None:
        known = _some(e.version for e in cat.entries(name))
        msg = f"{name} has no champion; name a version (name@version). Known: {known}"
        raise click.ClickException(msg)
    click.echo(entry.model_dump_json(indent=2))


def _approvers(change: Any) -> str:
    """Who approved a stage change: approver [roles] "reason" per counted decision of its approvals."""
    out = [
        f"{d.get('approver', '?')} [{', '.join(d.get('roles', [])) or 'no role'}] {d.get('reason', '')!r}"
        for a in change.approvals
        for d in a.get("decisions", [])
        if d.get("action", "approve") == "approve"
    ]
    return "; ".join(out) or ("policy allowed, no approval needed" if change.op == "promote" else "-")


def _lineage(ctx: click.Context, ids: list[str]) -> dict[str, dict[str, Any]]:
    """model id -> training data, training record, evaluations and drift triggers (from the lineage index)."""
    from flytekitplugins.aios_audit.lineage_cases import model_summary
    from flytekitplugins.aios_audit.lineage_cli import tracer_for

    tracer = tracer_for(ctx, None)
    return {m: model_summary(tracer, f"model:{m}") for m in ids}


@models.command("history")
@click.argument("model")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def history(ctx: click.Context, model: str, as_json: bool) -> None:
    """Show every recorded change of MODEL (``name`` or ``name@version``): who, approved by whom, why, lineage."""
    name, version = _split(model)
    cat = _catalog(ctx)
    changes = cat.history(name, version)
    if not changes:
        raise _unknown(cat, name, version)
    lineage = _lineage(ctx, list(dict.fromkeys(c.model_id for c in changes)))
    if as_json:
        out = [
            {**c.model_dump(mode="json"), "approved_by": _approvers(c), "lineage": lineage.get(c.model_id, {})}
            for c in changes
        ]
        click.echo(json.dumps(out, indent=2, default=str))
        return
    rows = [
        [
            str(c.seq),
            c.recorded_at.strftime("%Y-%m-%d %H:%M:%S"),
            c.actor,
            c.op,
            c.model_id,
            f"{c.from_stage or '-'} -> {c.to_stage or '-'}",
            _approvers(c),
            c.reason,
            c.record_id[:12],
        ]
        for c in changes
    ]
    _print_table(f"history of {model}", HISTORY_COLUMNS, rows)
    _print_table(f"lineage of {model}", LINEAGE_COLUMNS, [
        [
            m,
            s["digest"][:23],
            "\n".join(s["training_data"]) or "-",
            ", ".join(f"#{t['seq']} ({t['trigger'] or 'on demand'})" for t in s["training"]) or "-",
            ", ".join(f"#{e['seq']}" for e in s["evaluations"]) or "-",
            ", ".join(f"#{d['seq']} {d['status']}" for d in s["drift_triggers"]) or "-",
        ]
        for m, s in lineage.items()
    ])  # fmt: skip


@models.command("promote")
@click.argument("model")
@click.option("--evidence", "evidence_json", required=True, help="JSON object the policy reads (or @file.json).")
@click.option("--approval", "approval_id", default=None, help="Approved request id when the policy asks for one.")
@click.pass_context
def promote(ctx: click.Context, model: str, evidence_json: str, approval_id: str | None) -> None:
    """Ask to promote MODEL (``name@version``) under policy promote_model, as the configured principal."""
    name, version = _split(model)
    if version is None:
        raise click.BadParameter("name the version: name@version", param_hint="MODEL")
    from flytekitplugins.aios_core.text_files import parse_json, read_text

    if evidence_json.startswith("@"):
        evidence = parse_json(read_text(evidence_json[1:], "evidence file"), evidence_json[1:])
    else:
        evidence = parse_json(evidence_json, "--evidence")
    if not isinstance(evidence, dict):
        raise UserError(
            f"--evidence must be one JSON object (the fields the policy reads), not {type(evidence).__name__}"
        )
    try:
        entry = _catalog(ctx, must_exist=False).promote(
            name, version, actor=settings_from(ctx).actor, evidence=evidence, approval_request_id=approval_id
        )
    except (AiosError, CatalogError) as e:
        raise UserError(str(e)) from e
    click.echo(f"{entry.model_id} is now champion")
