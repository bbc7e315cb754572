"""``aios config``: show the resolved settings."""

from __future__ import annotations

import json

import click

from flytekitplugins.aios_core.cli import settings_from


@click.group()
def config() -> None:
    """Resolved settings (flags > AIOS_* env > profile file > defaults)."""


@config.command("show")
@click.option("--json", "as_json", is_flag=True, help="Accepted for scripts: `config show` always prints JSON.")
@click.pass_context
def show(ctx: click.Context, as_json: bool) -> None:
    """Print the resolved settings as JSON (passwords, tokens and keys in URLs masked)."""
    s = settings_from(ctx)
    click.echo(json.dumps(s.masked(), indent=2, sort_keys=True))
