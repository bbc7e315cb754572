"""Checkpoint keys are trusted from configuration only, never because a checkpoint embeds them.

The attack: rewrite the log with fresh hashes and sign a new checkpoint with a key of one's own. The embedded
key verifies that checkpoint, so only a pinned key set can refuse it.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from flytekitplugins.aios_audit import AuditEvent, audit_log
from flytekitplugins.aios_audit.checkpoint import Checkpoint, key_id, load_signing_key, public_pem
from flytekitplugins.aios_audit.records import record_from_entry, seal_entry
from flytekitplugins.aios_core.cli import cli
from flytekitplugins.aios_core.settings import get_settings, reset_settings

REPO = Path(__file__).resolve().parents[2]


def _run(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(cli, list(args))
    return res.exit_code, res.output


def _fill(n: int) -> None:
    audit_log(get_settings()).append_many(
        [AuditEvent(kind="task", actor=f"user:a{i}", subject=f"d{i}") for i in range(n)]
    )


def _rewrite_from(db: Path, start: int) -> None:
    """Rewrite records start.. with fresh hashes (triggers dropped): an internally consistent forgery."""
    c = sqlite3.connect(db, isolation_level=None)
    for trig in ("audit_log_no_update", "audit_log_no_delete", "audit_log_no_fork"):
        c.execute(f"DROP TRIGGER IF EXISTS {trig}")
    prev = c.execute("SELECT chain_hash FROM audit_log WHERE seq = ?", (start - 1,)).fetchone()[0]
    for (seq,) in c.execute("SELECT seq FROM audit_log WHERE seq >= ? ORDER BY seq", (start,)).fetchall():
        rec = record_from_entry(
            c.execute("SELECT entry FROM audit_log WHERE seq = ?", (seq,)).fetchone()[0], "", "", ""
        )
        new, entry = seal_entry(seq, rec.recorded_at, rec.event.model_copy(update={"actor": "user:mallory"}), prev)
        c.execute(
            "UPDATE audit_log SET entry = ?, leaf_hash = ?, prev_hash = ?, chain_hash = ? WHERE seq = ?",
            (entry, new.leaf_hash, prev, new.chain_hash, seq),
        )
        prev = new.chain_hash
    c.close()


@pytest.fixture
def forged(aios_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A genuine checkpoint, then the log rewritten and re-checkpointed with the attacker's key."""
    _fill(8)
    genuine = tmp_path / "genuine.json"
    assert _run("audit", "checkpoint", "--out", str(genuine))[0] == 0
    _rewrite_from(aios_env / "audit.db", 3)
    with monkeypatch.context() as m:
        m.setenv("AIOS_SIGNING_KEY", f"file:{tmp_path}/mallory.pem")
        reset_settings()
        assert _run("audit", "checkpoint", "--out", str(tmp_path / "forged.json"))[0] == 0
    reset_settings()
    return genuine, tmp_path / "forged.json"


def test_local_profile_trusts_its_own_key(aios_env: Path, tmp_path: Path) -> None:
    _fill(5)
    cp = tmp_path / "cp.json"
    assert _run("audit", "checkpoint", "--out", str(cp))[0] == 0
    code, out = _run("audit", "verify", "--checkpoint", str(cp))
    assert code == 0 and "checkpoint of 5" in out, out


def test_rewritten_and_resigned_log_is_refused(forged: tuple[Path, Path], tmp_path: Path) -> None:
    genuine, fake = forged
    mallory = key_id(public_pem(load_signing_key(f"file:{tmp_path}/mallory.pem")))
    code, out = _run("audit", "verify", "--checkpoint", str(fake))
    assert code == 1 and "bad checkpoint" in out, out
    assert mallory in out and "trusted_checkpoint_keys" in out and "--public-key" in out
    code, out = _run("audit", "verify", "--checkpoint", str(genuine))  # the genuine checkpoint catches the rewrite
    assert code == 1 and "forked" in out, out


def test_verify_proof_refuses_the_embedded_key(forged: tuple[Path, Path], tmp_path: Path) -> None:
    _genuine, fake = forged
    proof = tmp_path / "p.json"
    assert _run("audit", "prove", "#2", "--checkpoint", str(fake), "--out", str(proof))[0] == 0
    code, out = _run("audit", "verify-proof", str(proof), "--checkpoint", str(fake))
    assert code == 1 and out.startswith("INVALID") and "not a trusted key" in out, out


def test_public_key_flag_trusts_exactly_that_key(forged: tuple[Path, Path], tmp_path: Path) -> None:
    genuine, fake = forged
    pub = tmp_path / "mallory.pub.pem"
    pub.write_text(public_pem(load_signing_key(f"file:{tmp_path}/mallory.pem")))
    assert _run("audit", "verify", "--checkpoint", str(fake), "--public-key", str(pub))[0] == 0
    code, out = _run("audit", "verify", "--checkpoint", str(genuine), "--public-key", str(pub))
    assert code == 1 and "not a trusted key" in out  # the configured keys are replaced, not added to


def test_public_key_command_exports_the_trusted_key(aios_env: Path, tmp_path: Path) -> None:
    _fill(3)
    cp, pub = tmp_path / "cp.json", tmp_path / "pub.pem"
    assert _run("audit", "checkpoint", "--out", str(cp))[0] == 0
    code, out = _run("audit", "public-key", "--out", str(pub))
    assert code == 0 and Checkpoint.load(cp).key_id in out
    assert _run("audit", "verify", "--checkpoint", str(cp), "--public-key", str(pub))[0] == 0


def _profile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, keys: list[object]) -> None:
    config = tmp_path / "config"
    shutil.copytree(REPO / "config", config, dirs_exist_ok=True)
    local = config / "profiles" / "local.yaml"
    data = yaml.safe_load(local.read_text())
    data["trusted_checkpoint_keys"] = keys
    local.write_text(yaml.safe_dump(data))
    monkeypatch.setenv("AIOS_CONFIG_DIR", str(config))
    reset_settings()


def test_rotation_with_not_after(aios_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fill(4)
    old_cp = tmp_path / "old.json"
    assert _run("audit", "checkpoint", "--out", str(old_cp))[0] == 0
    old_key = f"file:{aios_env}/keys/checkpoint-ed25519.pem"
    new_key = f"file:{tmp_path}/new.pem"
    load_signing_key(new_key)
    # the old key stays trusted for checkpoints signed before its not_after; the new key signs from now on
    _profile(tmp_path, monkeypatch, [{"key": old_key, "not_after": "2999-01-01T00:00:00Z"}, new_key])
    assert _run("audit", "verify", "--checkpoint", str(old_cp))[0] == 0
    monkeypatch.setenv("AIOS_SIGNING_KEY", new_key)
    reset_settings()
    _fill(2)
    new_cp = tmp_path / "new.json"
    assert _run("audit", "checkpoint", "--out", str(new_cp))[0] == 0
    assert _run("audit", "verify", "--checkpoint", str(new_cp))[0] == 0
    # once retired, the old key vouches for nothing signed after not_after
    _profile(tmp_path, monkeypatch, [{"key": old_key, "not_after": "2020-01-01T00:00:00Z"}, new_key])
    code, out = _run("audit", "verify", "--checkpoint", str(old_cp))
    assert code == 1 and "not_after" in out, out
    assert _run("audit", "verify", "--checkpoint", str(new_cp))[0] == 0
