"""A consistency proof whose visible fields were edited never reads VALID."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from flytekitplugins.aios_audit import AuditEvent, audit_log
from flytekitplugins.aios_audit.checkpoint import Checkpoint
from flytekitplugins.aios_core.cli import cli
from flytekitplugins.aios_core.settings import get_settings


def _run(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(cli, list(args))
    return res.exit_code, res.output


def _fill(n: int) -> None:
    audit_log(get_settings()).append_many([AuditEvent(kind="task", actor=f"a{i}") for i in range(n)])


@pytest.fixture
def proof(aios_env: Path, tmp_path: Path) -> tuple[dict[str, object], Path]:
    _fill(6)
    old = tmp_path / "old.json"
    assert _run("audit", "checkpoint", "--out", str(old))[0] == 0
    _fill(9)
    out = tmp_path / "cons.json"
    assert _run("audit", "consistency", "--from", str(old), "--out", str(out))[0] == 0
    doc = json.loads(out.read_text())
    new = Checkpoint.model_validate(doc["checkpoint"]).save(tmp_path / "new.json")
    code, text = _run("audit", "verify-proof", str(out), "--checkpoint", str(new))
    assert code == 0 and text.startswith("VALID"), text
    return doc, new


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("old_root", "00" * 32),
        ("new_root", "ff" * 32),
        ("old_size", 5),
        ("new_size", 14),
    ],
)
def test_edited_field_is_invalid(
    proof: tuple[dict[str, object], Path], tmp_path: Path, field: str, value: object
) -> None:
    doc, new = proof
    bad = {**doc, field: value}
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad))
    code, out = _run("audit", "verify-proof", str(path), "--checkpoint", str(new))
    assert code == 1 and out.startswith("INVALID") and field in out, out


def test_proof_for_another_checkpoint_is_invalid(proof: tuple[dict[str, object], Path], tmp_path: Path) -> None:
    doc, _new = proof
    other = Checkpoint.model_validate(doc["old_checkpoint"]).save(tmp_path / "other.json")
    path = tmp_path / "p.json"
    path.write_text(json.dumps(doc))
    code, out = _run("audit", "verify-proof", str(path), "--checkpoint", str(other))
    assert code == 1 and out.startswith("INVALID"), out
