"""`aios audit checkpoint` stores the Merkle tree levels of the tree it signs, so the first proof against it reads
O(log n) stored hashes (before: the first proof integrated every level of a log written by appends alone: 170 s at
ten million records on PostgreSQL), and a role that may not write them still gets its checkpoint."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from flytekitplugins.aios_audit import AuditEvent, audit_log, nodes, proofs
from flytekitplugins.aios_core.cli import cli
from flytekitplugins.aios_core.settings import get_settings


def _run(*args: str) -> Any:
    res = CliRunner().invoke(cli, list(args))
    assert res.exit_code == 0, res.output
    return res


def _fill(n: int, start: int = 0) -> list[str]:
    events = [AuditEvent(kind="task", actor=f"user:a{i}", subject=f"d{i}") for i in range(start, start + n)]
    return [r.record_id for r in audit_log(get_settings()).append_many(events)]


def test_the_checkpoint_stores_the_levels_and_the_first_proof_only_reads_them(
    aios_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = _fill(37)
    cp = tmp_path / "cp.txt"
    doc = json.loads(_run("audit", "checkpoint", "--out", str(cp), "--json").output)
    assert doc["tree_size"] == 37 and doc["levels_stored_through"] == 37 and doc["levels_note"] == ""
    with sqlite3.connect(aios_env / "audit.db") as conn:
        assert nodes.integrated(conn) == 37

    def no(*_args: Any, **_kw: Any) -> Any:
        raise AssertionError("the proof integrated levels or rebuilt the tree: the checkpoint should have stored them")

    with monkeypatch.context() as patched:
        patched.setattr(nodes, "_integrate_batch", no)
        patched.setattr(proofs, "_tree", no)
        proof = tmp_path / "proof.json"
        _run("audit", "prove", ids[20], "--checkpoint", str(cp), "--out", str(proof))
        assert json.loads(proof.read_text())["leaf_index"] == 20
        assert "VALID: record seq 21" in _run("audit", "verify-proof", str(proof), "--checkpoint", str(cp)).output
    # the next checkpoint stores the levels of the records appended since, and says so in text too
    _fill(5, 37)
    out = _run("audit", "checkpoint", "--out", str(cp)).output
    assert "checkpoint: 42 records" in out and "note:" not in out
    with sqlite3.connect(aios_env / "audit.db") as conn:
        assert nodes.integrated(conn) == 42


def test_a_store_whose_levels_cannot_be_written_still_gets_its_checkpoint(
    aios_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fill(9)

    def refused(*_args: Any, **_kw: Any) -> Any:
        raise sqlite3.OperationalError("attempt to write a readonly database")

    monkeypatch.setattr(nodes, "_integrate_batch", refused)
    cp = tmp_path / "cp.txt"
    out = _run("audit", "checkpoint", "--out", str(cp)).output
    assert "checkpoint: 9 records" in out and cp.is_file()
    assert "note: the tree levels could not be stored (attempt to write a readonly database)" in out
    doc = json.loads(_run("audit", "checkpoint", "--out", str(cp), "--json").output)
    assert doc["levels_stored_through"] == 0 and "could not be stored" in doc["levels_note"]
