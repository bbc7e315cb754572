"""Numbers past what the command can use are usage errors naming the option and its range, never "unexpected
OverflowError" / "unexpected ValueError" (a count past the platform's size, a loop period past ``time_t``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from flytekitplugins.aios_core.cli import cli


@pytest.mark.parametrize(
    ("args", "option", "bound"),
    [
        (["models", "list", "--limit", "99999999999999999999"], "--limit", "0<=x<=9223372036854775807"),
        (["models", "list", "--limit", "-1"], "--limit", "0<=x<=9223372036854775807"),
        (["audit", "integrate", "--every", "1e308"], "--every", "0.01<=x<=86400"),
    ],
)
def test_a_number_out_of_range_is_a_usage_error(aios_env: Path, args: list[str], option: str, bound: str) -> None:
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 2 and f"Invalid value for '{option}'" in res.output and bound in res.output, res.output
    assert "unexpected" not in res.output, res.output
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
