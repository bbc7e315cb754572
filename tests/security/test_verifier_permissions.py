"""Audit state files are private: 0600 files in 0700 folders, even under umask 022."""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from flytekitplugins.aios_audit import AuditEvent, audit_log
from flytekitplugins.aios_core.cli import cli
from flytekitplugins.aios_core.settings import get_settings


@pytest.fixture(autouse=True)
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    yield
    os.umask(old)


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def test_database_wal_shm_and_lock_are_private(tmp_path: Path) -> None:
    db = tmp_path / "fresh" / "state" / "audit.db"
    store = audit_log(get_settings(), url=f"sqlite:///{db}", emit=False)
    store.append(AuditEvent(kind="task", actor="a"))
    reader = sqlite3.connect(db)  # keeps -wal and -shm in place while we look
    reader.execute("SELECT COUNT(*) FROM audit_log").fetchone()
    files = [db, db.with_name("audit.db-wal"), db.with_name("audit.db-shm")]
    assert {f.name: _mode(f) for f in files} == {f.name: 0o600 for f in files}
    assert _mode(db.with_name("audit.db.lock")) == 0o600  # the writers' queue (see test_verifier_fairness)
    assert _mode(db.parent) == 0o700 and _mode(db.parent.parent) == 0o700
    reader.close()


def test_checkpoints_proofs_and_keys_are_private(aios_env: Path, tmp_path: Path) -> None:
    audit_log(get_settings()).append_many([AuditEvent(kind="task", actor=f"a{i}") for i in range(5)])
    out = tmp_path / "exports"
    out.mkdir()
    run = CliRunner().invoke
    assert run(cli, ["audit", "checkpoint", "--out", str(out / "cp.json")]).exit_code == 0
    assert (
        run(cli, ["audit", "prove", "#2", "--checkpoint", str(out / "cp.json"), "--out", str(out / "p.json")]).exit_code
        == 0
    )
    res = run(cli, ["audit", "consistency", "--from", str(out / "cp.json"), "--out", str(out / "c.json")])
    assert res.exit_code == 0, res.output
    kept = aios_env / "checkpoints"
    key = aios_env / "keys" / "checkpoint-ed25519.pem"
    for f in (out / "cp.json", out / "p.json", out / "c.json", key, *kept.iterdir()):
        assert _mode(f) == 0o600, f
    assert _mode(kept) == 0o700 and _mode(key.parent) == 0o700
