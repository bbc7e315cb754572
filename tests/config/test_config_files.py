"""Configuration files the operator edits (the profile, roles.yaml, the policy test cases, the Cedar schema) that are
no UTF-8 text, nest deeper than the parsers go, or hold a list where a mapping belongs: one error line naming the
file, never "unexpected UnicodeDecodeError / RecursionError / AttributeError" (exit 4)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from flytekitplugins.aios_core.cli import cli

REPO = Path(__file__).resolve().parents[2]
LATIN1 = "principals:\n  user:zoë: {roles: [finance-approver]}\n".encode("latin-1")
DEEP = "a: " + "[" * 5_000 + "]" * 5_000 + "\n"


def _config(tmp_path: Path, edit: Callable[[Path], object]) -> Path:
    config = tmp_path / "config"
    shutil.copytree(REPO / "config", config)
    edit(config)
    return config


CASES: dict[str, tuple[Callable[[Path], object], list[str], str]] = {
    "profile not UTF-8": (
        lambda c: (c / "profiles" / "local.yaml").write_bytes(LATIN1),
        ["config", "show"],
        "profile file {config}/profiles/local.yaml is not UTF-8 text (byte 21 cannot be read)",
    ),
    "profile nested too deeply": (
        lambda c: (c / "profiles" / "local.yaml").write_text(DEEP),
        ["config", "show"],
        "profile file {config}/profiles/local.yaml nests its values too deeply to read",
    ),
    "roles not UTF-8": (
        lambda c: (c / "roles.yaml").write_bytes(LATIN1),
        ["approvals", "approve", "apr-nope", "--as", "user:bob"],
        "approval rules file {config}/roles.yaml is not UTF-8 text",
    ),
    "roles a list": (
        lambda c: (c / "roles.yaml").write_text("- principals\n"),
        ["approvals", "approve", "apr-nope", "--as", "user:bob"],
        "approval rules file {config}/roles.yaml must hold a mapping",
    ),
    "policy test case not UTF-8": (
        lambda c: (c / "policies" / "tests" / "zz.yaml").write_bytes(LATIN1),
        ["policy", "test"],
        "policy test file {config}/policies/tests/zz.yaml is not UTF-8 text",
    ),
    "policy test case nested too deeply": (
        lambda c: (c / "policies" / "tests" / "zz.yaml").write_text(DEEP),
        ["policy", "test"],
        "policy test file {config}/policies/tests/zz.yaml nests its values too deeply to read",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_config_file_that_cannot_be_read_is_one_error_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    edit, args, want = CASES[case]
    config = _config(tmp_path, edit)
    monkeypatch.setenv("AIOS_CONFIG_DIR", str(config))
    res = CliRunner().invoke(cli, args)
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    assert res.exit_code == 2, res.output
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), res.output
    assert want.format(config=config) in lines[0], lines[0]


def test_a_schema_nested_too_deeply_is_an_invalid_policy_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = _config(
        tmp_path, lambda c: (c / "policies" / "schema.cedarschema.json").write_text("[" * 100_000 + "]" * 100_000)
    )
    monkeypatch.setenv("AIOS_CONFIG_DIR", str(config))
    res = CliRunner().invoke(cli, ["policy", "validate"])
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    assert res.exit_code == 1, res.output
    assert "schema.cedarschema.json is not a usable Cedar JSON schema" in res.output
