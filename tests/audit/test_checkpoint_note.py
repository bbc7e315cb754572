"""Checkpoints are C2SP tlog-checkpoint signed notes: the Go sumdb/note vector, trust, and old JSON checkpoints."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from flytekitplugins.aios_audit import AuditEvent, audit_log, note
from flytekitplugins.aios_audit.checkpoint import (
    KEY_NAME,
    NOTE_FORMAT,
    Checkpoint,
    load_signing_key,
    note_body,
    public_pem,
)
from flytekitplugins.aios_audit.merkle import RootAccumulator
from flytekitplugins.aios_audit.proofs import make_checkpoint
from flytekitplugins.aios_audit.trust import TrustedKeys
from flytekitplugins.aios_core.cli import cli
from flytekitplugins.aios_core.settings import get_settings

# golang.org/x/mod/sumdb/note test vector (see /work/shared/docs/c2sp-checkpoint.md)
VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
SIG = (
    "\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)


def _run(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(cli, list(args))
    return res.exit_code, res.output


def test_go_sumdb_note_vector() -> None:
    name, public = note.parse_vkey(VKEY)
    assert name == "PeterNeumann" and note.key_id(name, public).hex() == "c74f20a3"
    assert note.vkey(name, public) == VKEY
    body, sigs = note.parse(TEXT + "\n" + SIG)
    assert body == TEXT and len(sigs) == 1 and sigs[0].key_id.hex() == "c74f20a3"
    assert sigs[0].line() == SIG
    assert note.verify(body, sigs[0], name, public)
    for i in range(len(TEXT)):  # any one changed byte fails
        changed = TEXT[:i] + chr(ord(TEXT[i]) ^ 1) + TEXT[i + 1 :]
        assert not note.verify(changed, sigs[0], name, public), i
    assert not note.verify(body, sigs[0], "PeterNeumanx", public)  # another name: another key id


def test_vector_key_trusted_as_verifier_key() -> None:
    keys = TrustedKeys.from_specs([VKEY], "test")
    assert keys.keys[0].key_id == "c74f20a3" and keys.keys[0].name == "PeterNeumann"
    with pytest.raises(Exception, match="does not match"):
        TrustedKeys.from_specs([VKEY.replace("c74f20a3", "c74f20a4")], "test")


def test_checkpoint_is_a_c2sp_note(aios_env: Path, tmp_path: Path) -> None:
    audit_log(get_settings()).append_many([AuditEvent(kind="task", actor=f"a{i}") for i in range(11)])
    cp = make_checkpoint(audit_log(get_settings()), get_settings().signing_key)
    path = cp.save(tmp_path / "cp")
    text = path.read_text()
    body, sigs = note.parse(text)
    lines = body.splitlines()
    assert lines[0] == cp.origin and lines[1] == "11" and base64.b64decode(lines[2]).hex() == cp.root_hash
    assert lines[4].startswith("chain ") and lines[5].startswith("frontier ")
    assert len(lines[5].split()) == 1 + 3  # 11 = 8 + 2 + 1
    frontier = [bytes.fromhex(h) for h in cp.frontier]
    assert RootAccumulator.from_frontier(11, frontier).root().hex() == cp.root_hash
    key = load_signing_key(get_settings().signing_key)
    raw = note.raw_public(key.public_key())
    assert sigs[0].name == KEY_NAME and note.verify(body, sigs[0], KEY_NAME, raw)  # a standard verifier accepts it
    loaded = Checkpoint.load(path)
    assert loaded == cp and loaded.format == NOTE_FORMAT and loaded.public_key == ""
    assert TrustedKeys.from_specs([note.vkey(KEY_NAME, raw)], "vkey").check(loaded) == ""
    assert TrustedKeys.from_specs([note.vkey("other-name", raw)], "vkey").check(loaded) != ""  # name is pinned
    assert TrustedKeys.from_specs([public_pem(key)], "pem").check(loaded) == ""


def test_edited_note_is_refused(aios_env: Path, tmp_path: Path) -> None:
    audit_log(get_settings()).append_many([AuditEvent(kind="task", actor=f"a{i}") for i in range(5)])
    cp = make_checkpoint(audit_log(get_settings()), get_settings().signing_key)
    trusted = TrustedKeys.from_settings(get_settings())
    assert trusted.check(cp) == ""
    for field, value in {"tree_size": 4, "chain_head": "00" * 32, "frontier": ("11" * 32, "22" * 32)}.items():
        assert "altered" in trusted.check(cp.model_copy(update={field: value})), field
    text = cp.text()
    edited = text.replace("\n5\n", "\n6\n", 1)
    assert "altered" in trusted.check(Checkpoint.from_note(edited))


def test_old_json_checkpoint_still_verifies(aios_env: Path, tmp_path: Path) -> None:
    """A checkpoint written before the note format (JSON, v1 body) is read and checked by the full walk."""
    audit_log(get_settings()).append_many([AuditEvent(kind="task", actor=f"a{i}") for i in range(6)])
    new = make_checkpoint(audit_log(get_settings()), get_settings().signing_key)
    key = load_signing_key(get_settings().signing_key)
    ts = "2026-01-01T00:00:00+00:00"
    sig = key.sign(note_body(new.origin, 6, bytes.fromhex(new.root_hash), ts))
    old = {
        "origin": new.origin, "tree_size": 6, "root_hash": new.root_hash, "timestamp": ts,
        "key_id": "0123456789abcdef", "public_key": public_pem(key), "signature": base64.b64encode(sig).decode(),
    }  # fmt: skip
    path = tmp_path / "old.json"
    path.write_text(json.dumps(old))
    audit_log(get_settings()).append(AuditEvent(kind="task", actor="later"))
    code, out = _run("audit", "verify", "--checkpoint", str(path))
    assert code == 0 and out.startswith("OK: 7 records") and "checkpoint of 6" in out, out
    assert "incremental" not in out  # no frontier: the full walk
    old["timestamp"] = "2026-01-02T00:00:00+00:00"
    path.write_text(json.dumps(old))
    code, out = _run("audit", "verify", "--checkpoint", str(path))
    assert code == 1 and "bad checkpoint" in out, out
