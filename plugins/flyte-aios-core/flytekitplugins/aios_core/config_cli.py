"""``aios config``: show the resolved settings and where each value came from."""

from __future__ import annotations

import os
from typing import Any

import click

from flytekitplugins.aios_core.cli import settings_from


@click.group()
def config() -> None:
    """Resolved settings (flags > AIOS_* env > profile file > defaults)."""


def _variables() -> dict[str, dict[str, Any]]:
    """The AIOS_* variables that are not settings, and whether each is set (never a value: some are secrets)."""
    from flytekitplugins.aios_core.settings import BUILD_TIME_VARS, DEBUG_VARS, SECRET_VARS

    groups = {"build_time": BUILD_TIME_VARS, "secrets": SECRET_VARS, "debug": DEBUG_VARS}
    return {
        group: {var: {"set": bool(os.environ.get(var)), "meaning": meaning} for var, meaning in names.items()}
        for group, names in groups.items()
    }


def _unknown_vars() -> list[str]:
    """``AIOS_*`` variables in the environment that nothing reads (a typo is the usual cause)."""
    from flytekitplugins.aios_core.settings import BUILD_TIME_VARS, DEBUG_VARS, ENV_VARS, SECRET_VARS

    known = {*ENV_VARS, "AIOS_CONFIG_DIR", *BUILD_TIME_VARS, *SECRET_VARS, *DEBUG_VARS}
    return sorted(v for v in os.environ if v.startswith("AIOS_") and v not in known)


@config.command("show")
@click.option("--json", "as_json", is_flag=True, help="One JSON document: settings, sources, other variables.")
@click.pass_context
def show(ctx: click.Context, as_json: bool) -> None:
    """Print every setting, its value (credentials masked) and where it came from.

    Sources: ``flag`` (a root option such as --store), ``env AIOS_*``, ``profile <file>`` or ``default``.
    """
    from flytekitplugins.aios_core.cli_output import echo_json, print_table

    s = settings_from(ctx)
    values, sources = s.masked(), s.sources()
    unknown = _unknown_vars()
    if as_json:
        echo_json({"settings": values, "sources": sources, "variables": _variables(), "unknown_variables": unknown})
        return
    rows = [[k, _cell(values[k]), sources.get(k, "default")] for k in sorted(values)]
    print_table(f"settings (profile {s.profile})", ["setting", "value", "source"], rows)
    set_vars = [(g, v) for g, names in _variables().items() for v, info in names.items() if info["set"]]
    if set_vars:
        click.echo("also set (read outside settings): " + ", ".join(f"{v} ({g})" for g, v in set_vars))
    for var in unknown:
        click.echo(f"warning: {var} is set but nothing reads it; see docs/configuration.md for the names", err=True)


def _cell(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(_cell(v) for v in value) or "-"
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    return "-" if value in ("", None) else str(value)
