"""Checkpoints, inclusion and consistency proofs through the ``aios audit`` commands, verified offline."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from flytekitplugins.aios_audit import AuditEvent, audit_log
from flytekitplugins.aios_audit.checkpoint import Checkpoint, load_signing_key, public_pem
from flytekitplugins.aios_core.cli import cli
from flytekitplugins.aios_core.errors import ConfigError
from flytekitplugins.aios_core.settings import get_settings


def _run(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(cli, list(args))
    return res.exit_code, res.output


def _fill(n: int) -> list[str]:
    return [audit_log(get_settings()).append(AuditEvent(kind="task", actor=f"a{i}")).record_id for i in range(n)]


def test_checkpoint_prove_and_verify_offline(aios_env: Path, tmp_path: Path) -> None:
    ids = _fill(13)
    cp_file, proof_file = tmp_path / "cp.json", tmp_path / "proof.json"
    code, out = _run("audit", "checkpoint", "--out", str(cp_file))
    assert code == 0, out
    key = aios_env / "keys" / "checkpoint-ed25519.pem"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert (aios_env / "checkpoints" / f"{13:012d}.json").is_file()  # a copy kept outside the store
    code, out = _run("audit", "prove", ids[6], "--checkpoint", str(cp_file), "--out", str(proof_file))
    assert code == 0, out
    code, out = _run("audit", "verify-proof", str(proof_file), "--checkpoint", str(cp_file))
    assert code == 0 and out.startswith("VALID: record seq 7"), out
    doc = json.loads(proof_file.read_text())
    assert len(doc["path"]) == 4 and "a6" in doc["entry"]

    for name, mutate in {
        "flipped path bit": lambda d: d["path"].__setitem__(
            0, ("0" if d["path"][0][0] != "0" else "1") + d["path"][0][1:]
        ),
        "wrong index": lambda d: d.__setitem__("leaf_index", 7),
        "extra element": lambda d: d["path"].append(d["path"][-1]),
        "missing element": lambda d: d["path"].pop(),
        "edited entry": lambda d: d.__setitem__("entry", d["entry"].replace("a6", "a7")),
        "wrong size": lambda d: d.__setitem__("tree_size", 12),
    }.items():
        bad = json.loads(json.dumps(doc))
        mutate(bad)
        (tmp_path / "bad.json").write_text(json.dumps(bad))
        code, out = _run("audit", "verify-proof", str(tmp_path / "bad.json"), "--checkpoint", str(cp_file))
        assert code == 1 and out.startswith("INVALID"), name

    # a checkpoint signed by another key is refused when the trusted key is given
    other = tmp_path / "other.pem"
    other.write_text(public_pem(load_signing_key(f"file:{tmp_path}/other-key.pem")))
    code, out = _run("audit", "verify-proof", str(proof_file), "--checkpoint", str(cp_file), "--public-key", str(other))
    assert code == 1 and "signature" in out


def test_consistency_between_old_checkpoint_and_current_log(aios_env: Path, tmp_path: Path) -> None:
    _fill(6)
    old = tmp_path / "old.json"
    assert _run("audit", "checkpoint", "--out", str(old))[0] == 0
    _fill(11)
    proof = tmp_path / "cons.json"
    code, out = _run("audit", "consistency", "--from", str(old), "--out", str(proof))
    assert code == 0, out
    new = tmp_path / "new.json"
    Checkpoint.model_validate(json.loads(proof.read_text())["checkpoint"]).save(new)
    code, out = _run("audit", "verify-proof", str(proof), "--checkpoint", str(new))
    assert code == 0 and "extends" in out, out
    code, out = _run("audit", "verify", "--checkpoint", str(old))
    assert code == 0 and out.startswith("OK: 17 records") and "checkpoint of 6" in out
    doc = json.loads(proof.read_text())
    doc["path"][1] = doc["path"][1][::-1]
    proof.write_text(json.dumps(doc))
    assert _run("audit", "verify-proof", str(proof), "--checkpoint", str(new))[0] == 1


def test_env_signing_key_and_missing_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    pem = tmp_path / "k.pem"
    load_signing_key(f"file:{pem}")
    monkeypatch.setenv("AIOS_TEST_KEY", pem.read_text())
    assert load_signing_key("env:AIOS_TEST_KEY") is not None
    with pytest.raises(ConfigError, match="AIOS_MISSING_KEY"):
        load_signing_key("env:AIOS_MISSING_KEY")


def test_show_filters(aios_env: Path) -> None:
    _fill(3)
    audit_log(get_settings()).append(AuditEvent(kind="action", actor="b"))
    code, out = _run("audit", "show", "--kind", "action", "--json")
    assert code == 0
    rows = [json.loads(x) for x in out.splitlines()]
    assert [r["event"]["kind"] for r in rows] == ["action"] and rows[0]["seq"] == 4
    code, out = _run("audit", "show", "--limit", "2")
    assert code == 0 and "audit records (2 shown)" in out


def test_a_checkpoint_verifies_only_what_was_appended_since_the_last_one(
    aios_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The next checkpoint starts from the newest one the same key signed of the same log (kept in the state folder):
    it walks the records appended since, and signs the same root a walk of every record gives."""
    from flytekitplugins.aios_audit.stores.sqlite import SQLiteAuditStore
    from flytekitplugins.aios_audit.verify import verify_store

    _fill(30)
    code, out = _run("audit", "checkpoint", "--out", str(tmp_path / "a.json"), "--json")
    assert code == 0 and json.loads(out)["verified_after"] == 0, out
    _fill(5)
    (aios_env / "checkpoints" / f"{99:012d}.json").write_text("not a checkpoint")  # passed over
    walked: list[int] = []
    scan = SQLiteAuditStore.scan_sealed

    def spy(self: SQLiteAuditStore, start: int = 1, end: int | None = None) -> object:
        walked.append(start)
        return scan(self, start, end)

    monkeypatch.setattr(SQLiteAuditStore, "scan_sealed", spy)
    code, out = _run("audit", "checkpoint", "--out", str(tmp_path / "b.json"), "--json")
    assert code == 0, out
    doc = json.loads(out)
    assert doc["tree_size"] == 35 and doc["verified_after"] == 30 and walked == [31], (doc, walked)
    assert doc["root_hash"] == verify_store(audit_log(get_settings())).root_hash
    code, out = _run("audit", "checkpoint", "--out", str(tmp_path / "c.json"), "--deep")
    assert code == 0 and "every record walked (--deep)" in out and walked[-1] == 1, out
    code, out = _run("audit", "checkpoint", "--out", str(tmp_path / "d.json"))
    assert code == 0 and "no record appended since; extends the checkpoint of 35 records" in out, out
    code, out = _run("audit", "verify", "--checkpoint", str(tmp_path / "b.json"))
    assert code == 0, out


@pytest.mark.parametrize("deep", [False, True])
def test_a_log_that_no_longer_extends_the_last_checkpoint_is_not_signed(
    aios_env: Path, tmp_path: Path, deep: bool
) -> None:
    """Records cut from the end and others appended in their place: a walk of the log finds nothing wrong with it, but
    signing it would give two heads of one log that disagree (a fork). The checkpoint it must extend refuses it."""
    import sqlite3

    _fill(30)
    code, out = _run("audit", "checkpoint", "--out", str(tmp_path / "a.json"))
    assert code == 0, out
    with sqlite3.connect(aios_env / "audit.db", isolation_level=None) as db:
        db.execute("DROP TRIGGER audit_log_no_delete")
        db.execute("DELETE FROM audit_log WHERE seq > 20")
        db.execute("DELETE FROM audit_ids WHERE seq > 20")
        db.execute("DELETE FROM audit_proj_lineage WHERE seq > 20")
    _fill(12)  # 32 records again, 21..32 other than those the checkpoint signed
    code, out = _run("audit", "checkpoint", "--out", str(tmp_path / "b.json"), *(["--deep"] if deep else []))
    assert code != 0 and "refusing to sign" in out and "30 records" in out, out
    assert not (tmp_path / "b.json").exists() and not (aios_env / "checkpoints" / f"{32:012d}.json").exists()


def test_prove_reads_a_backlog_of_record_ids_from_the_log_tail(aios_env: Path, tmp_path: Path) -> None:
    """``aios audit prove <record id>`` with more records waiting for SQLite's id table than a governance look-up reads
    from the log's tail (512) looks the id up through the tail, writing nothing, not by indexing the whole backlog
    first (1.66 s with 19,296 waiting at ten million records); the proof verifies all the same."""
    from flytekitplugins.aios_audit.stores import open_store

    store = open_store(get_settings().audit_store)
    recs = store.append_many([AuditEvent(kind="task", actor=f"a{i}") for i in range(700)])
    cp_file, proof_file = tmp_path / "cp.json", tmp_path / "proof.json"
    code, out = _run("audit", "checkpoint", "--out", str(cp_file))
    assert code == 0, out
    waiting = store.ids_backlog()  # type: ignore[attr-defined]
    assert waiting > 512
    code, out = _run("audit", "prove", recs[650].record_id, "--checkpoint", str(cp_file), "--out", str(proof_file))
    assert code == 0, out
    assert store.ids_backlog() == waiting  # type: ignore[attr-defined]  # read from the tail: nothing indexed
    code, out = _run("audit", "verify-proof", str(proof_file), "--checkpoint", str(cp_file))
    assert code == 0 and out.startswith("VALID: record seq 651"), out
    store.close()
