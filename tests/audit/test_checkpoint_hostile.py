"""Checkpoint files a user hands to ``aios audit consistency|prove|verify`` that do not fit the log, or are no
checkpoint at all: each is one clear error naming what is wrong, and no proof is written for a log that does not
extend the checkpoint (the prover checks the proof against both roots before it writes anything)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from flytekitplugins.aios_audit import AuditEvent, audit_log
from flytekitplugins.aios_audit.checkpoint import Checkpoint
from flytekitplugins.aios_core.cli import cli
from flytekitplugins.aios_core.errors import ConfigError
from flytekitplugins.aios_core.settings import get_settings


def _run(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(cli, list(args))
    return res.exit_code, res.output


def _fill(n: int) -> None:
    log = audit_log(get_settings())
    for i in range(n):
        log.append(AuditEvent(kind="task", actor=f"svc:a{i}"))


def _checkpoint(tmp_path: Path, name: str = "old.cp") -> Path:
    out = tmp_path / name
    code, text = _run("audit", "checkpoint", "--out", str(out))
    assert code == 0, text
    return out


def _edit_line(path: Path, index: int, line: str) -> None:
    lines = path.read_text().split("\n")
    lines[index] = line
    path.write_text("\n".join(lines))


def test_consistency_from_a_checkpoint_larger_than_the_log_says_the_log_shrank(aios_env: Path, tmp_path: Path) -> None:
    """A log rolled back below a checkpoint someone kept: before, "unexpected ValueError ... AIOS_DEBUG=1"."""
    _fill(8)
    old = _checkpoint(tmp_path)
    _edit_line(old, 1, "25")  # the checkpoint of 25 records a log of 8 cannot extend
    out_file = tmp_path / "proof.json"
    code, out = _run("audit", "consistency", "--from", str(old), "--out", str(out_file))
    assert code != 0 and "unexpected" not in out and "Traceback" not in out, out
    assert "covers 25 records but the log now has 8" in out and "a log only grows" in out, out
    assert not out_file.exists()


def test_consistency_from_a_checkpoint_the_log_does_not_extend_is_refused_not_proved(
    aios_env: Path, tmp_path: Path
) -> None:
    """The first records no longer give the old root: before, the command wrote a 'proof' (exit 0) that could never
    verify, hiding the very thing a consistency check is for."""
    _fill(6)
    old = _checkpoint(tmp_path)
    _fill(5)
    cp = Checkpoint.load(old)
    other_root = bytes(32).hex() if cp.root_hash != bytes(32).hex() else "11" * 32
    _edit_line(old, 2, base64.b64encode(bytes.fromhex(other_root)).decode())
    out_file = tmp_path / "proof.json"
    code, out = _run("audit", "consistency", "--from", str(old), "--out", str(out_file))
    assert code != 0 and "the log does not extend the old checkpoint" in out, out
    assert "first 6 records no longer produce" in out and "aios audit verify --checkpoint" in out, out
    assert not out_file.exists()
    # the same check still proves a checkpoint the log does extend
    good = _checkpoint(tmp_path, "good.cp")
    _fill(2)
    code, out = _run("audit", "consistency", "--from", str(good), "--out", str(out_file))
    assert code == 0 and json.loads(out_file.read_text())["old_size"] == 11, out


def test_consistency_from_a_checkpoint_of_another_log_names_both(aios_env: Path, tmp_path: Path) -> None:
    _fill(4)
    old = _checkpoint(tmp_path)
    _edit_line(old, 0, "aios-audit/0000000000000000")
    code, out = _run("audit", "consistency", "--from", str(old))
    assert code != 0 and "of another log (aios-audit/0000000000000000)" in out, out


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("tree_size", 10**30, "tree_size: Input should be less than or equal to 9223372036854775807"),
        ("tree_size", -5, "tree_size: Input should be greater than or equal to 0"),
        ("root_hash", "zz", "root_hash: Value error, must be a SHA-256 hash: 64 lower-case hex digits"),
        ("chain_head", "ab" * 31, "chain_head: Value error, must be a SHA-256 hash"),
        ("frontier", ["00" * 31], "frontier.0: Value error, must be a SHA-256 hash"),
    ],
)
@pytest.mark.parametrize("command", ["prove", "consistency", "verify"])
def test_a_checkpoint_field_out_of_its_range_is_a_clear_error(
    aios_env: Path, tmp_path: Path, field: str, value: object, named: str, command: str
) -> None:
    """Before: a tree size past 64 bits ended `prove` in "unexpected OverflowError" (SQLite), a negative one was read
    as a checkpoint ("not among the -5 records"), a hash that is no hash failed later or not at all."""
    _fill(3)
    doc = Checkpoint.load(_checkpoint(tmp_path)).model_dump()
    doc[field] = value
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    with pytest.raises(ConfigError, match="cannot read checkpoint"):
        Checkpoint.load(bad)
    args = {
        "prove": ("audit", "prove", "#1", "--checkpoint", str(bad)),
        "consistency": ("audit", "consistency", "--from", str(bad)),
        "verify": ("audit", "verify", "--checkpoint", str(bad)),
    }[command]
    code, out = _run(*args)
    assert code == 2 and f"cannot read checkpoint {bad}: {named}" in out, out
    assert "unexpected" not in out and "Traceback" not in out, out


def test_a_note_checkpoint_with_a_size_past_64_bits_is_a_clear_error(aios_env: Path, tmp_path: Path) -> None:
    _fill(3)
    cp = _checkpoint(tmp_path)
    _edit_line(cp, 1, "9" * 26)
    code, out = _run("audit", "prove", "#1", "--checkpoint", str(cp))
    assert code == 2 and "tree_size: Input should be less than or equal to" in out, out


def test_an_empty_old_checkpoint_needs_no_proof(aios_env: Path, tmp_path: Path) -> None:
    _fill(3)
    cp = _checkpoint(tmp_path)
    doc = Checkpoint.load(cp).model_dump() | {"tree_size": 0, "frontier": (), "chain_head": ""}
    (tmp_path / "empty.json").write_text(json.dumps(doc))
    code, out = _run("audit", "consistency", "--from", str(tmp_path / "empty.json"))
    assert code != 0 and "covers no records" in out and "unexpected" not in out, out
