"""``aios config``: show the resolved settings."""

from __future__ import annotations

import json

import click

from flytekitplugins.aios_core.cli import settings_from


@click.group()
def config() -> None:
    """Resolved settings (flags > AIOS_* env > profile file > defaults)."""


@config.command("show")
@click.pass_context
def show(ctx: click.Context) -> None:
    """Print the resolved settings as JSON."""
    s = settings_from(ctx)
    click.echo(json.dumps(s.model_dump(mode="json"), indent=2, sort_keys=True))
