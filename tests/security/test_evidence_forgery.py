"""Forged evidence bundles that ``aios evidence verify`` said OK to (review of 2026-12-05).

Each test exports a genuine bundle with the pack, forges it as its sender could (the manifest is unsigned, and
without ``--public-key`` the keys in the bundle are the ones trusted), and checks the verifier refuses it on one
line naming what is wrong, or (a decision that counts for nothing) says so as ``aios audit verify`` does:

* the key ids the OK line tells the auditor to compare are computed from the keys that verified, never the ids a
  checkpoint or the manifest claims; a note line that names a trusted key but does not verify refuses the note;
* every file under records/ is the file of one verified record, named by its seq; nothing unchecked rides along;
* a zip whose local headers hold a file the central directory does not list (a streaming reader extracts it);
* approval decisions whose signature does not verify under the approvals key are flagged, not passed in silence.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import io
import json
import os
import struct
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from flytekitplugins.aios_audit import audit_log, note
from flytekitplugins.aios_audit.checkpoint import KEY_NAME, Checkpoint, key_id, note_body, public_pem
from flytekitplugins.aios_audit.evidence import sealed_edges
from flytekitplugins.aios_audit.evidence_verify import verify_bundle
from flytekitplugins.aios_audit.merkle import MerkleTree, leaf_hash
from flytekitplugins.aios_core.cli import cli
from flytekitplugins.aios_core.settings import get_settings
from tests.lineage.synthetic import exported_bundle


def _aios(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(cli, list(args))
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    return res.exit_code, res.output


def _one_line_failure(code: int, out: str, want: str) -> None:
    assert code == 1, out
    assert out.startswith("FAILED: ") and out.count("\n") == 1 and "Traceback" not in out, out
    assert want in out, out


def _files(bundle: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(bundle) as z:
        return {n: z.read(n) for n in z.namelist()}


def _zip(dst: Path, files: dict[str, bytes], manifest: dict[str, Any]) -> Path:
    """``files`` and ``manifest`` as a bundle, the manifest's digests made to agree with the files."""
    manifest["files"] = {n: hashlib.sha256(b).hexdigest() for n, b in sorted(files.items()) if n != "manifest.json"}
    with zipfile.ZipFile(dst, "w") as z:
        z.writestr("manifest.json", json.dumps(manifest, indent=1))
        for name, data in files.items():
            if name != "manifest.json":
                z.writestr(name, data)
    return dst


def _published_key(tmp_path: Path) -> Path:
    """The organisation's published checkpoint key (what an auditor pins)."""
    out = tmp_path / "org-pinned.pem"
    code, text = _aios("audit", "public-key", "--out", str(out))
    assert code == 0, text
    return out


def _decision_reject_to_approve(entry: str) -> str:
    assert '"action":"reject"' in entry
    return entry.replace('"action":"reject"', '"action":"approve"').replace('"status":"reject"', '"status":"approve"')


Signer = Callable[[Checkpoint, bytes], Checkpoint]


def _resigned(bundle: Path, sign: Signer) -> tuple[dict[str, bytes], dict[str, Any]]:
    """The bundle's records with a rejection rewritten as an approval, in a tree of the sender's own (filler leaves
    where the bundle has no record), its checkpoint made by ``sign(genuine checkpoint, new root)``; returns the
    files (keys/ left for the caller to fill) and the manifest."""
    files = _files(bundle)
    manifest = json.loads(files.pop("manifest.json"))
    cp0 = Checkpoint.model_validate_json(files["checkpoint.json"])
    entries = {r["seq"]: json.loads(files[r["file"]])["entry"] for r in manifest["records"]}
    seq = next(s for s, e in entries.items() if '"action":"reject"' in e)
    entries[seq] = _decision_reject_to_approve(entries[seq])
    size = cp0.tree_size
    leaves = [leaf_hash(entries[i + 1].encode()) if i + 1 in entries else os.urandom(32) for i in range(size)]
    tree = MerkleTree(leaves)
    cp = sign(cp0, tree.root())
    new = {k: v for k, v in files.items() if not k.startswith(("records/", "keys/"))}
    new["checkpoint.json"] = cp.model_dump_json(indent=2).encode()
    for r in manifest["records"]:
        s = r["seq"]
        doc = {
            "type": "inclusion", "leaf_index": s - 1, "tree_size": size, "leaf_hash": leaves[s - 1].hex(),
            "path": [p.hex() for p in tree.inclusion_proof(s - 1)], "entry": entries[s], "checkpoint": cp.model_dump(),
        }  # fmt: skip
        new[r["file"]] = json.dumps(doc, indent=1).encode()
        r["record_id"] = leaves[s - 1].hex()
    edges = sealed_edges({r["seq"]: (entries[r["seq"]].encode(), r["record_id"]) for r in manifest["records"]})
    new["lineage.json"] = json.dumps(edges, indent=1).encode()
    manifest.pop("approvals_key", None)
    return new, manifest


def _org_key(bundle: Path) -> tuple[str, str]:
    """``(id, PEM)`` of the genuine bundle's checkpoint key (the organisation's)."""
    files = _files(bundle)
    pem = files[json.loads(files["manifest.json"])["keys"][0]["file"]].decode()
    return key_id(pem), pem


def _ship(files: dict[str, bytes], manifest: dict[str, Any], pems: dict[str, str]) -> None:
    """Ship ``pems`` (file id -> PEM) as the bundle's keys, each labelled with its file id."""
    manifest["keys"] = []
    for kid, pem in pems.items():
        files[f"keys/{kid}.pem"] = pem.encode()
        manifest["keys"].append({"file": f"keys/{kid}.pem", "key_id": kid})


# --- 1. key ids ------------------------------------------------------------------------------------------------------


def _note_signer(attacker: Ed25519PrivateKey, claim: str) -> Signer:
    """A note whose first line names key ``claim`` with junk bytes, the attacker's valid signature second."""

    def sign(cp0: Checkpoint, root: bytes) -> Checkpoint:
        body = f"{cp0.origin}\n{cp0.tree_size}\n{base64.b64encode(root).decode()}\ntime {cp0.timestamp}\n"
        raw = note.raw_public(attacker.public_key())
        junk = note.Signature(KEY_NAME, bytes.fromhex(claim), os.urandom(64)).line()
        real = note.Signature(KEY_NAME, note.key_id(KEY_NAME, raw), attacker.sign(body.encode())).line()
        return Checkpoint.from_note(body + "\n" + junk + real)

    return sign


def test_a_note_line_naming_a_trusted_key_that_does_not_verify_refuses_the_checkpoint(
    aios_env: Path, tmp_path: Path
) -> None:
    """Before: line 1 named the organisation's key (junk signature), line 2 verified under the sender's key (also
    shipped, say as a "rotated" key); the OK line printed line 1's id, the organisation's."""
    bundle = exported_bundle(tmp_path)
    attacker = Ed25519PrivateKey.generate()
    org_kid, org_pem = _org_key(bundle)
    files, manifest = _resigned(bundle, _note_signer(attacker, org_kid))
    att_pem = public_pem(attacker)
    _ship(files, manifest, {org_kid: org_pem, key_id(att_pem): att_pem})
    forged = _zip(tmp_path / "forged.zip", files, manifest)
    code, out = _aios("evidence", "verify", str(forged))
    _one_line_failure(code, out, f"checkpoint signature does not verify under trusted key {org_kid}")


def test_a_key_file_named_by_another_keys_id_is_refused(aios_env: Path, tmp_path: Path) -> None:
    """Before: the sender's key shipped as keys/<organisation's id>.pem with that id as its manifest label, and the
    OK line told the auditor the shipped key was the organisation's id (and so was the checkpoint's)."""
    bundle = exported_bundle(tmp_path)
    attacker = Ed25519PrivateKey.generate()
    org_kid = _org_key(bundle)[0]
    files, manifest = _resigned(bundle, _note_signer(attacker, org_kid))
    _ship(files, manifest, {org_kid: public_pem(attacker)})
    forged = _zip(tmp_path / "forged.zip", files, manifest)
    code, out = _aios("evidence", "verify", str(forged))
    _one_line_failure(code, out, f"'keys/{org_kid}.pem' holds key {key_id(public_pem(attacker))}")


def _json_signer(attacker: Ed25519PrivateKey) -> Signer:
    """An old-format (JSON) checkpoint signed by the attacker that claims the genuine checkpoint's key id (a field
    its signature does not cover)."""

    def sign(cp0: Checkpoint, root: bytes) -> Checkpoint:
        sig = attacker.sign(note_body(cp0.origin, cp0.tree_size, root, cp0.timestamp))
        return Checkpoint(
            origin=cp0.origin, tree_size=cp0.tree_size, root_hash=root.hex(), timestamp=cp0.timestamp,
            key_id=cp0.key_id, signature=base64.b64encode(sig).decode(),
        )  # fmt: skip

    return sign


def test_an_old_format_checkpoints_unsigned_key_id_is_never_shown(aios_env: Path, tmp_path: Path) -> None:
    bundle = exported_bundle(tmp_path)
    attacker = Ed25519PrivateKey.generate()
    att_pem, org_kid = public_pem(attacker), _org_key(bundle)[0]
    files, manifest = _resigned(bundle, _json_signer(attacker))
    # as the reviewer sent it: the sender's key under the organisation's id
    _ship(files, manifest, {org_kid: att_pem})
    code, out = _aios("evidence", "verify", str(_zip(tmp_path / "forged.zip", files, manifest)))
    _one_line_failure(code, out, f"'keys/{org_kid}.pem' holds key {key_id(att_pem)}")
    # named honestly, the bundle is self-consistent: the OK line then names the key that verified, the sender's
    files, manifest = _resigned(bundle, _json_signer(attacker))
    _ship(files, manifest, {key_id(att_pem): att_pem})
    code, out = _aios("evidence", "verify", str(_zip(tmp_path / "honest.zip", files, manifest)))
    assert code == 0 and f"checkpoint key {key_id(att_pem)} trusted" in out, out
    assert org_kid not in out, out
    # and with the organisation's key pinned it is refused
    code, out = _aios("evidence", "verify", str(tmp_path / "honest.zip"), "--public-key", str(_published_key(tmp_path)))
    _one_line_failure(code, out, "checkpoint.json: checkpoint signature does not verify under trusted key")


# --- 2. record files the verifier did not check ----------------------------------------------------------------------


def _genuine(tmp_path: Path) -> tuple[Path, dict[str, bytes], dict[str, Any], dict[str, Any]]:
    bundle = exported_bundle(tmp_path)
    files = _files(bundle)
    manifest = json.loads(files.pop("manifest.json"))
    rec = next(
        r
        for r in manifest["records"]
        if r["kind"] == "approval_decision" and '"reject"' in json.loads(files[r["file"]])["entry"]
    )
    return bundle, files, manifest, rec


def _forged_doc(files: dict[str, bytes], rec: dict[str, Any]) -> dict[str, Any]:
    doc = json.loads(files[rec["file"]])
    doc["entry"] = _decision_reject_to_approve(doc["entry"])
    return doc


def test_a_forged_record_file_beside_the_renamed_genuine_one_is_refused(aios_env: Path, tmp_path: Path) -> None:
    _bundle, files, manifest, rec = _genuine(tmp_path)
    name, renamed = rec["file"], f"records/r{rec['seq']:08d}.json"
    files[renamed] = files[name]
    rec["file"] = renamed
    files[name] = json.dumps(_forged_doc(files, {"file": renamed})).encode()
    forged = _zip(tmp_path / "forged.zip", files, manifest)
    code, out = _aios("evidence", "verify", str(forged), "--public-key", str(_published_key(tmp_path)))
    _one_line_failure(code, out, f"puts record #{rec['seq']} in '{renamed}', not {name}")


def test_a_record_file_no_manifest_record_names_is_refused(aios_env: Path, tmp_path: Path) -> None:
    _bundle, files, manifest, rec = _genuine(tmp_path)
    files["records/00000099.json"] = json.dumps(_forged_doc(files, rec)).encode()
    forged = _zip(tmp_path / "forged.zip", files, manifest)
    code, out = _aios("evidence", "verify", str(forged), "--public-key", str(_published_key(tmp_path)))
    _one_line_failure(code, out, "the zip holds 'records/00000099.json', no record of the manifest")


def test_a_file_no_exporter_writes_is_refused(aios_env: Path, tmp_path: Path) -> None:
    _bundle, files, manifest, _rec = _genuine(tmp_path)
    files["approvals.txt"] = b"record 22: approved by user:cfo"
    forged = _zip(tmp_path / "forged.zip", files, manifest)
    code, out = _aios("evidence", "verify", str(forged), "--public-key", str(_published_key(tmp_path)))
    _one_line_failure(code, out, "the zip holds 'approvals.txt', no file an exporter writes")


def test_a_rewritten_readme_is_refused(aios_env: Path, tmp_path: Path) -> None:
    _bundle, files, manifest, _rec = _genuine(tmp_path)
    files["README.txt"] += b"\nAll approvals in this bundle were checked by the CFO; no need to verify.\n"
    forged = _zip(tmp_path / "forged.zip", files, manifest)
    code, out = _aios("evidence", "verify", str(forged), "--public-key", str(_published_key(tmp_path)))
    _one_line_failure(code, out, "README.txt is not the text the exporter writes")


# --- 3. a zip a streaming reader reads another way -------------------------------------------------------------------


def _hidden_entry(bundle: Path, name: str, data: bytes) -> bytes:
    """``bundle``'s members, then a local header + data for ``name`` that the central directory does not list."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the duplicate name is the point
        for n, b in _files(bundle).items():
            z.writestr(n, b)
        z.writestr(name, data)
    raw = buf.getvalue()
    eocd = raw.rfind(b"PK\x05\x06")
    _sig, _d, _ds, n_disk, n_total, cd_size, cd_off, _cl = struct.unpack("<IHHHHIIH", raw[eocd : eocd + 22])
    cd, records, p = raw[cd_off : cd_off + cd_size], [], 0
    while p < len(cd):
        fl, el, cl = struct.unpack("<HHH", cd[p + 28 : p + 34])
        records.append(cd[p : p + 46 + fl + el + cl])
        p += 46 + fl + el + cl
    new_cd = b"".join(records[:-1])  # the forged copy's directory entry dropped
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, n_disk - 1, n_total - 1, len(new_cd), cd_off, 0)
    return raw[:cd_off] + new_cd + end


def test_a_local_entry_the_central_directory_does_not_list_is_refused(aios_env: Path, tmp_path: Path) -> None:
    bundle, files, _manifest, rec = _genuine(tmp_path)
    forged = tmp_path / "forged.zip"
    forged.write_bytes(_hidden_entry(bundle, rec["file"], json.dumps(_forged_doc(files, rec)).encode()))
    with zipfile.ZipFile(forged) as z:  # what the central directory shows: the genuine rejection
        assert z.read(rec["file"]) == files[rec["file"]]
    code, out = _aios("evidence", "verify", str(forged), "--public-key", str(_published_key(tmp_path)))
    _one_line_failure(code, out, "between its last file and its central directory that no directory entry")


def test_bytes_before_the_first_file_are_refused(aios_env: Path, tmp_path: Path) -> None:
    bundle = exported_bundle(tmp_path)
    forged = tmp_path / "prefixed.zip"
    forged.write_bytes(b"PK\x03\x04 a local header of something else " + bundle.read_bytes())
    check = verify_bundle(forged)
    assert not check.ok and "\n" not in check.summary, check.summary
    assert "is not a readable evidence bundle" in check.summary, check.summary


def test_the_genuine_bundle_tiles_its_zip_and_verifies(aios_env: Path, tmp_path: Path) -> None:
    bundle = exported_bundle(tmp_path)
    check = verify_bundle(bundle, [str(_published_key(tmp_path))])
    # the synthetic trail's approval records hold only the fields its readers show, not a whole request or decision:
    # the verifier lists each as counting for nothing (3 requests, 5 decisions), and nothing else
    assert check.ok and len(check.notes) == 8, check.summary
    assert all("(counts for nothing)" in n and " does not parse: field " in n for n in check.notes), check.notes


# --- 4. approval decisions that count for nothing --------------------------------------------------------------------


def junk_decision_bundle(tmp_path: Path, names: str = "") -> tuple[Path, str, str]:
    """``(bundle, junk decision's record id, request id)``: bob's signed rejection of a request and a junk "approve by
    user:carol" (a bad signature) a store writer appended, exported by document as usual; with ``names``, the junk
    decision names that request id inside, while its record is for bob's request."""
    from flytekitplugins.aios_approvals import decide, open_request
    from flytekitplugins.aios_approvals.evaluate import Env
    from flytekitplugins.aios_audit.records import AuditEvent
    from tests.lineage.synthetic import _decision, _ex

    doc = f"sha256:{1:064x}"
    store = audit_log(get_settings(), emit=False)
    pd = store.append(_decision(doc, 1, _ex("run-real"))).record_id
    evidence = {"document": doc, "policy_decision": pd}
    env = Env.load(get_settings())
    rid = open_request("payment-signoff", "high", doc, {"amount": 60001}, evidence, requester="service:x", env=env)
    assert decide(rid, "user:bob", "reject", reason="duplicate invoice", env=Env.load(get_settings())).accepted
    real = next(e for _s, e, *_ in store.scan_raw(1) if b'"kind":"approval_decision"' in e)
    ev = copy.deepcopy(json.loads(real)["event"])  # someone with write access appends an approval, junk signature
    ev["attributes"]["decision"].update(action="approve", approver="user:carol", reason="ok", signature="A" * 86 + "==")
    if names:
        ev["attributes"]["decision"]["request_id"] = names
    ev["approvals"] = [dict(ev["attributes"]["decision"])]
    ev.update(actor="user:carol", status="approve")
    junk = store.append(AuditEvent.model_validate(ev)).record_id
    bundle = tmp_path / "doc.zip"
    code, out = _aios("evidence", "export", "--document", doc, "-o", str(bundle))
    assert code == 0, out
    return bundle, junk, rid


def test_an_unsigned_approval_decision_in_a_bundle_is_flagged(aios_env: Path, tmp_path: Path) -> None:
    bundle, junk, _rid = junk_decision_bundle(tmp_path)
    code, out = _aios("evidence", "verify", str(bundle), "--public-key", str(_published_key(tmp_path)))
    assert code == 0 and out.startswith("OK: ") and out.count("\n") == 1, out  # as `aios audit verify`: a warning
    assert f"warning: ignored approval decision (counts for nothing): record #4 {junk}: decision by user:carol" in out
    assert "user:bob" not in out  # the signed rejection stands
    check = verify_bundle(bundle, [str(tmp_path / "org-pinned.pem")])
    assert check.ok and len(check.notes) == 1 and "is not signed by approvals key" in check.notes[0], check.notes


@pytest.mark.parametrize("how", ["another key", "no key"])
def test_a_bundle_whose_approvals_key_was_swapped_or_dropped_still_flags(
    aios_env: Path, tmp_path: Path, how: str
) -> None:
    """The approvals key ships in the bundle: swapped for another key under the genuine name it is refused; dropped,
    each decision is flagged as unchecked."""
    _bundle, files, manifest, _rec = _genuine(tmp_path)
    name = manifest["approvals_key"]["file"]
    if how == "another key":
        files[name] = public_pem(Ed25519PrivateKey.generate()).encode()
        code, out = _aios("evidence", "verify", str(_zip(tmp_path / "swapped.zip", files, manifest)))
        _one_line_failure(code, out, f"'{name}' holds approvals key sha256:")
        return
    del files[name], manifest["approvals_key"]
    check = verify_bundle(_zip(tmp_path / "dropped.zip", files, manifest))
    decisions = [r for r in manifest["records"] if r["kind"] == "approval_decision"]
    unchecked = [n for n in check.notes if "the bundle ships no approvals key" in n]
    assert check.ok and len(unchecked) == len(decisions), check.summary
    # the rest: the synthetic trail's requests, which do not parse, judged without a key (re-review R3, 2026-12-07)
    assert all("ignored approval request" in n and "does not parse" in n for n in check.notes if n not in unchecked)
