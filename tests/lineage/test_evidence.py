"""Evidence bundles verify offline, without the store, and fail naming the record when one byte changes."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from flytekitplugins.aios_audit import audit_log
from flytekitplugins.aios_core.cli import cli
from flytekitplugins.aios_core.settings import get_settings
from tests.lineage.synthetic import MODEL, write_trail


def _aios(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(cli, list(args))
    return res.exit_code, res.output


def _rewrite(src: Path, dst: Path, name: str, old: bytes, new: bytes) -> None:
    """Copy a zip, replacing ``old`` by ``new`` once in member ``name`` (a valid zip: CRCs recomputed)."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.namelist():
            data = zin.read(item)
            if item == name:
                assert old in data
                data = data.replace(old, new, 1)
            zout.writestr(item, data)


def _export_execution(aios_env: Path, tmp_path: Path) -> tuple[Path, dict[str, object]]:
    docs = write_trail(audit_log(get_settings(), emit=False), 6, per_execution=3)
    bundle = tmp_path / "run-0.zip"
    code, out = _aios("evidence", "export", "--execution", "run-0", "-o", str(bundle))
    assert code == 0, out
    manifest = json.loads(zipfile.ZipFile(bundle).read("manifest.json"))
    return bundle, {"docs": docs, "manifest": manifest}


def test_execution_bundle_verifies_offline_and_holds_the_whole_chain(aios_env: Path, tmp_path: Path) -> None:
    bundle, got = _export_execution(aios_env, tmp_path)
    manifest = got["manifest"]
    assert isinstance(manifest, dict)
    kinds = {r["kind"] for r in manifest["records"]}
    assert {"policy_decision", "approval_request", "approval_decision", "action_authorized", "action"} <= kinds
    assert {"training", "drift", "catalog"} <= kinds  # the model's lineage comes along (upstream of the decisions)
    names = set(zipfile.ZipFile(bundle).namelist())
    assert {"README.txt", "checkpoint.json", "lineage.json", "manifest.json"} <= names
    assert any(n.startswith("keys/") and n.endswith(".pem") for n in names)
    (aios_env / "audit.db").unlink()  # offline: no store, nothing but the bundle
    code, out = _aios("evidence", "verify", str(bundle))
    assert code == 0, out
    assert out.startswith("OK: ") and "execution run-0" in out and "trusted from the keys shipped" in out


def test_one_changed_byte_fails_and_names_the_record(aios_env: Path, tmp_path: Path) -> None:
    bundle, got = _export_execution(aios_env, tmp_path)
    manifest = got["manifest"]
    assert isinstance(manifest, dict)
    target = next(r for r in manifest["records"] if r["kind"] == "action")
    entry = json.loads(zipfile.ZipFile(bundle).read(target["file"]))["entry"]
    assert "12000.0" in entry
    # the amount in the sealed entry, rewritten with a consistent manifest digest: the proof must catch it
    forged = tmp_path / "forged.zip"
    _rewrite(bundle, forged, target["file"], b"12000.0", b"92000.0")
    with zipfile.ZipFile(forged) as z:
        m = json.loads(z.read("manifest.json"))
        import hashlib

        m["files"][target["file"]] = hashlib.sha256(z.read(target["file"])).hexdigest()
    fixed = tmp_path / "forged-manifest.zip"
    _rewrite(forged, fixed, "manifest.json", zipfile.ZipFile(forged).read("manifest.json"), json.dumps(m).encode())
    code, out = _aios("evidence", "verify", str(fixed))
    assert code == 1 and f"record #{target['seq']} (action {target['record_id']})" in out
    assert "entry content does not match the leaf hash" in out
    # without fixing the manifest: named as a changed file of that record
    code, out = _aios("evidence", "verify", str(forged))
    assert code == 1 and f"record #{target['seq']}" in out and "does not match the manifest" in out
    # one raw byte of the zip itself (the stored member is compressed: the CRC or inflate check trips)
    raw = bytearray(bundle.read_bytes())
    info = zipfile.ZipFile(bundle).getinfo(target["file"])
    raw[info.header_offset + 30 + len(info.filename) + 5] ^= 0x01
    flipped = tmp_path / "flipped.zip"
    flipped.write_bytes(bytes(raw))
    code, out = _aios("evidence", "verify", str(flipped))
    assert code == 1 and f"record #{target['seq']}" in out


def test_pinned_key_that_did_not_sign_is_refused(aios_env: Path, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    bundle, _ = _export_execution(aios_env, tmp_path)
    other = Ed25519PrivateKey.generate().public_key()
    pem = tmp_path / "pinned.pem"
    pem.write_bytes(other.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    code, out = _aios("evidence", "verify", str(bundle), "--public-key", str(pem))
    assert code == 1 and "not a trusted key" in out


def test_document_and_model_bundles(aios_env: Path, tmp_path: Path) -> None:
    docs = write_trail(audit_log(get_settings(), emit=False), 4)
    for flag, value in (("--document", docs[0]["document"]), ("--model", f"{MODEL.name}@{MODEL.version}")):
        out_zip = tmp_path / f"{flag.strip('-')}.zip"
        code, out = _aios("evidence", "export", flag, value, "-o", str(out_zip))
        assert code == 0, out
        code, out = _aios("evidence", "verify", str(out_zip))
        assert code == 0, out
    code, out = _aios("evidence", "export", "--execution", "nope", "-o", str(tmp_path / "x.zip"))
    assert code != 0 and "no records of execution 'nope'" in out


def test_export_proves_from_the_stored_tree_levels_not_a_tree_of_every_leaf(
    aios_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each bundled record's inclusion proof is read from the stored tree levels (O(log n) hashes, checked against the
    checkpoint), not from a tree of every leaf of the log held in memory (ten million leaves: hundreds of MB)."""
    from flytekitplugins.aios_audit import merkle

    def no_full_tree(*_a: object, **_k: object) -> None:
        raise AssertionError("a tree of every leaf was built")

    monkeypatch.setattr(merkle.MerkleTree, "__init__", no_full_tree)
    bundle, got = _export_execution(aios_env, tmp_path)
    manifest = got["manifest"]
    assert isinstance(manifest, dict) and len(manifest["records"]) > 5
    monkeypatch.undo()
    code, out = _aios("evidence", "verify", str(bundle))
    assert code == 0 and out.startswith("OK: "), out


def test_a_bundle_that_declares_more_than_a_bundle_may_hold_is_not_inflated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bundle comes from someone else: its members were all inflated into memory, so a few kilobytes of zip that
    declare gigabytes of zeros exhausted the verifier's memory. Now one that declares more than the limit is refused
    before anything is inflated (the limit lowered here: 1 GiB in use)."""
    from flytekitplugins.aios_audit import evidence_verify

    monkeypatch.setattr(evidence_verify, "MAX_BUNDLE_BYTES", 1 << 20)
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("manifest.json", b"{}")
        z.writestr("records/00000001.json", b"\0" * (4 << 20))  # 4 MiB of zeros: about 4 KB compressed
    assert bomb.stat().st_size < 64 << 10
    inflated: list[str] = []
    real_read = zipfile.ZipFile.read
    monkeypatch.setattr(
        zipfile.ZipFile, "read", lambda self, name, pwd=None: inflated.append(name) or real_read(self, name, pwd)
    )
    code, out = _aios("evidence", "verify", str(bomb))
    assert code != 0 and "more than an evidence bundle may hold" in out and "not inflated" in out, out
    assert inflated == []
