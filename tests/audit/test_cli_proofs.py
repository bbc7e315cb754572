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
