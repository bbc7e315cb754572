"""``aios models``: read the model catalog (list, show, history) and ask for a promotion."""

from __future__ import annotations

import json
from typing import Any

import click

from flytekitplugins.aios_catalog.catalog import Catalog
from flytekitplugins.aios_catalog.entries import STAGES
from flytekitplugins.aios_catalog.errors import CatalogError
from flytekitplugins.aios_core.cli import settings_from
from flytekitplugins.aios_core.errors import AiosError


def _catalog(ctx: click.Context) -> Catalog:
    from flytekitplugins.aios_audit.api import resolve_store_url

    s = settings_from(ctx)
    return Catalog(resolve_store_url(s), s.models_file)


def _split(model: str) -> tuple[str, str | None]:
    name, _, version = model.partition("@")
    return name, version or None


def _print_table(title: str, columns: list[str], rows: list[list[str]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for c in columns:
        table.add_column(c, overflow="fold")
    for r in rows:
        table.add_row(*r)
    console = Console()
    if not console.is_terminal:  # pipes and logs get whole lines, not an 80-column wrap
        console = Console(width=200)
    console.print(table)


@click.group()
def models() -> None:
    """Model catalog: every model the pack uses or produces, with stage, digests and metrics."""


@models.command("list")
@click.option("--name", default=None, help="Only versions of this model.")
@click.option("--stage", type=click.Choice(STAGES), default=None, help="Only this stage.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def list_models(ctx: click.Context, name: str | None, stage: Any, as_json: bool) -> None:
    """List catalog entries."""
    entries = _catalog(ctx).list(name, stage)
    if as_json:
        click.echo(json.dumps([e.model_dump(mode="json") for e in entries], indent=2))
        return
    rows = [[e.name, e.version, e.stage, e.owner, e.digest[:19], ",".join(e.allowed_data_classes)] for e in entries]
    _print_table("model catalog", ["name", "version", "stage", "owner", "digest", "data classes"], rows)


@models.command("show")
@click.argument("model")
@click.pass_context
def show(ctx: click.Context, model: str) -> None:
    """Show MODEL (``name@version``, or ``name`` for its champion) as JSON."""
    cat = _catalog(ctx)
    name, version = _split(model)
    entry = cat.get(name, version) if version else cat.champion(name)
    if entry is None:
        msg = f"{name} has no champion; name a version (name@version). Known: {[e.version for e in cat.list(name)]}"
        raise click.ClickException(msg)
    click.echo(entry.model_dump_json(indent=2))


@models.command("history")
@click.argument("model")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def history(ctx: click.Context, model: str, as_json: bool) -> None:
    """Show every recorded change of MODEL (``name`` or ``name@version``): who, what, why."""
    name, version = _split(model)
    changes = _catalog(ctx).history(name, version)
    if as_json:
        click.echo(json.dumps([c.model_dump(mode="json") for c in changes], indent=2))
        return
    rows = [
        [
            str(c.seq),
            c.recorded_at.strftime("%Y-%m-%d %H:%M:%S"),
            c.actor,
            c.op,
            c.model_id,
            f"{c.from_stage or '-'} -> {c.to_stage or '-'}",
            c.reason,
            c.record_id[:12],
        ]
        for c in changes
    ]
    _print_table(f"history of {model}", ["seq", "at (UTC)", "actor", "op", "model", "stage", "reason", "record"], rows)


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
    raw = open(evidence_json[1:], encoding="utf-8").read() if evidence_json.startswith("@") else evidence_json
    try:
        entry = _catalog(ctx).promote(
            name, version, actor=settings_from(ctx).actor, evidence=json.loads(raw), approval_request_id=approval_id
        )
    except (AiosError, CatalogError, json.JSONDecodeError) as e:
        raise click.ClickException(str(e)) from e
    click.echo(f"{entry.model_id} is now champion")
