"""Trivial tasks for the audit overhead benchmark (tasks must live in a file)."""

from __future__ import annotations

from flytekit import task

from flytekitplugins.aios_audit import audited


@task
def plain(x: int) -> int:
    """Add one.

    Args:
        x: A number.
    """
    return x + 1


@task
@audited
def governed(x: int) -> int:
    """Add one, audited.

    Args:
        x: A number.
    """
    return x + 1
