"""Offline verification of an evidence bundle (see :mod:`.evidence`): needs the pack, no store and no settings."""

from __future__ import annotations

import hashlib
import json
import re
import stat
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from flytekitplugins.aios_audit.checkpoint import Checkpoint
from flytekitplugins.aios_audit.evidence import FORMAT, BundleCheck, sealed_edges
from flytekitplugins.aios_audit.proofs import check_proof
from flytekitplugins.aios_audit.stores import shown_ref
from flytekitplugins.aios_audit.trust import TrustedKeys

_RECORD_FILE = re.compile(r"records/0*(\d+)\.json")


def _who(name: str, manifest: dict[str, Any] | None = None) -> str:
    """A file name as a person reads it: ``record #12 (approval_decision 3f2a...)`` for record files."""
    m = _RECORD_FILE.search(name)
    if not m:
        return f"file {name}"
    seq = int(m.group(1))
    found = next((r for r in (manifest or {}).get("records", []) if r.get("seq") == seq), None)
    return f"record #{seq}" + (f" ({found['kind']} {found['record_id']})" if found else "")


MAX_BUNDLE_BYTES = 1 << 30
"""Bytes a bundle's members may inflate to in all (as their headers declare them; zipfile reads no member past its
declared size). A bundle comes from someone else: one that declares more is refused before anything is inflated
(a few kilobytes of zip can declare gigabytes of zeros, and every member is held in memory to be checked)."""
MAX_BUNDLE_MEMBERS = 1_000_000
_SAFE_NAME = re.compile(r"[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*")


def _member_problem(infos: Sequence[zipfile.ZipInfo]) -> str:
    """Why the bundle's members cannot be read one way only ("" if they can).

    A name twice: this verifier reads the last copy, while a zip viewer may show the first, so a bundle could verify
    with one record and show a person another. A name that leaves the folder it is unpacked in (``..``, an absolute
    path, a backslash), a link, or a name no exporter writes (control characters, spaces) is refused as well: the
    bundle is meant to be unpacked and read by people, with tools that trust its names."""
    seen: set[str] = set()
    for info in infos:
        name = info.filename
        if name in seen:
            return f"the zip holds {shown_ref(name, 80)} more than once: which copy a reader sees depends on the tool"
        seen.add(name)
        if not _SAFE_NAME.fullmatch(name) or any(part in (".", "..") for part in name.split("/")):
            return f"the zip member name {shown_ref(name, 80)} is not a plain relative file name"
        if stat.S_ISLNK(info.external_attr >> 16) or info.is_dir():
            return f"the zip member {shown_ref(name, 80)} is a link or a folder, not a file"
    return ""


def _read_all(path: Path) -> tuple[dict[str, bytes] | None, BundleCheck | None]:
    files: dict[str, bytes] = {}
    try:
        with zipfile.ZipFile(path) as z:
            infos = z.infolist()
            declared = sum(i.file_size for i in infos)
            if len(infos) > MAX_BUNDLE_MEMBERS or declared > MAX_BUNDLE_BYTES:
                msg = (
                    f"{path} declares {len(infos):,} files and {declared:,} bytes uncompressed, more than an evidence "
                    f"bundle may hold ({MAX_BUNDLE_MEMBERS:,} files, {MAX_BUNDLE_BYTES:,} bytes): not inflated"
                )
                return None, BundleCheck(False, msg)
            if problem := _member_problem(infos):
                return None, BundleCheck(False, f"{path} is not a readable evidence bundle: {problem}")
            for name in z.namelist():
                try:
                    files[name] = z.read(name)
                except Exception as e:  # CRC, inflate (zlib.error) or header errors: the bytes changed
                    return None, BundleCheck(False, f"{_who(name)} is damaged in the zip ({e})", name)
    except (zipfile.BadZipFile, OSError) as e:
        return None, BundleCheck(False, f"{path} is not a readable evidence bundle: {e}")
    return files, None


def _trust(files: dict[str, bytes], manifest: dict[str, Any], public_keys: Sequence[str]) -> tuple[TrustedKeys, str]:
    if public_keys:
        return TrustedKeys.from_files(public_keys), "the --public-key files"
    specs = [files[k["file"]].decode() for k in manifest.get("keys", []) if k.get("file") in files]
    ids = ", ".join(k.get("key_id", "") for k in manifest.get("keys", []))
    return TrustedKeys.from_specs(specs, "keys in the bundle"), f"the keys shipped in the bundle ({ids}): compare them"


def _check_records(files: dict[str, bytes], manifest: dict[str, Any], cp: Checkpoint, keys: TrustedKeys) -> BundleCheck:
    for r in manifest.get("records", []):
        name, who = r.get("file", ""), _who(r.get("file", ""), manifest)
        try:
            doc = json.loads(files[name])
            entry = json.loads(doc["entry"])
            if not isinstance(entry, dict):
                raise TypeError(f"its entry is a {type(entry).__name__}")
        except (KeyError, ValueError, TypeError, RecursionError) as e:
            return BundleCheck(False, f"{who}: unreadable ({type(e).__name__})", name)
        ok, why = check_proof(doc, cp, keys)
        if not ok:
            return BundleCheck(False, f"{who}: {why}", name)
        if entry.get("seq") != r.get("seq") or doc.get("leaf_hash") != r.get("record_id"):
            return BundleCheck(False, f"{who}: the manifest names another record than the proof holds", name)
        if int(doc.get("leaf_index", -1)) + 1 != entry.get("seq"):
            return BundleCheck(
                False, f"{who}: its entry says seq {entry.get('seq')} but its proof is for another", name
            )
    return BundleCheck(True, "")


def _check_edges(files: dict[str, bytes], manifest: dict[str, Any]) -> BundleCheck:
    """lineage.json must be exactly the edges recomputed from the (already verified) entries."""
    entries = {}
    for r in manifest.get("records", []):
        entries[int(r["seq"])] = (json.loads(files[r["file"]])["entry"].encode(), str(r["record_id"]))
    expected = sealed_edges(entries)
    shipped = json.loads(files.get("lineage.json", b"[]"))
    if shipped != expected:
        wrong = next((e for e in shipped if e not in expected), None) or next(e for e in expected if e not in shipped)
        return BundleCheck(False, f"lineage.json does not match the sealed records (first difference: {wrong})")
    return BundleCheck(True, "")


_RECORD_SHAPE = {"file": str, "seq": int, "record_id": str, "kind": str}
_KEY_SHAPE = {"file": str, "key_id": str}  # each may be left out


def _manifest_problem(manifest: Any) -> str:
    """What makes ``manifest`` no manifest of this format's shape ("" if nothing): the manifest is not signed, so a
    bundle's sender can write anything there, and every field the checks below read is checked first."""
    if not isinstance(manifest, dict):
        return f"manifest.json holds a {type(manifest).__name__}, not an object"
    files = manifest.get("files", {})
    if not isinstance(files, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in files.items()):
        return "manifest.json: files must map each file name to its SHA-256 (hex text)"
    for field in ("records", "keys"):
        items = manifest.get(field, [])
        if not isinstance(items, list) or not all(isinstance(x, dict) for x in items):
            return f"manifest.json: {field} must be a list of objects"
    for field, shape, required in (("records", _RECORD_SHAPE, True), ("keys", _KEY_SHAPE, False)):
        for i, item in enumerate(manifest.get(field, [])):
            for key, kind in shape.items():
                if (required or key in item) and type(item.get(key)) is not kind:  # not isinstance: True is no seq
                    return (
                        f"manifest.json: {field}[{i}].{key} must be {kind.__name__}, not {shown_ref(item.get(key), 60)}"
                    )
    return ""


def verify_bundle(path: Path, public_keys: Sequence[str] = ()) -> BundleCheck:
    """Check every file, record, proof, the checkpoint signature and the lineage edges of a bundle.

    A bundle comes from someone else: whatever its files hold, the answer is OK or FAILED naming what is wrong
    (a malformed file is a failed check, never an error of the verifier).
    """
    files, failed = _read_all(path)
    if failed is not None or files is None:
        return failed or BundleCheck(False, "unreadable bundle")
    try:
        manifest = json.loads(files["manifest.json"])
        cp = Checkpoint.model_validate_json(files["checkpoint.json"])
    except (KeyError, ValueError, RecursionError) as e:
        return BundleCheck(False, f"manifest.json or checkpoint.json missing or unreadable ({type(e).__name__})")
    if problem := _manifest_problem(manifest):
        return BundleCheck(False, problem, "manifest.json")
    try:
        return _verify(files, manifest, cp, public_keys)
    except (KeyError, ValueError, TypeError, AttributeError, RecursionError) as e:  # a shape no check above foresaw
        return BundleCheck(False, f"malformed bundle: {type(e).__name__}: {shown_ref(str(e), 60)}")


def _verify(
    files: dict[str, bytes], manifest: dict[str, Any], cp: Checkpoint, public_keys: Sequence[str]
) -> BundleCheck:
    if manifest.get("format") != FORMAT:
        return BundleCheck(False, f"not an {FORMAT} bundle (format {manifest.get('format')!r})")
    for name, digest in manifest.get("files", {}).items():
        if name not in files or hashlib.sha256(files[name]).hexdigest() != digest:
            return BundleCheck(False, f"{_who(name, manifest)} does not match the manifest (changed or missing)", name)
    extra = set(files) - set(manifest.get("files", {})) - {"manifest.json"}
    if extra:
        return BundleCheck(False, f"files not in the manifest: {', '.join(sorted(extra))}")
    keys, trusted_from = _trust(files, manifest, public_keys)
    # one after the other: the edges are recomputed from entries the record check has verified (a tuple of both
    # calls ran the edge check on entries that had failed theirs)
    if not (result := _check_records(files, manifest, cp, keys)).ok or not (result := _check_edges(files, manifest)).ok:
        return result
    n = len(manifest.get("records", []))
    # the scope is the manifest's word, which nothing signs: quoted as the sender's label, never as what was verified
    summary = (
        f"OK: {n} records are included in the signed tree of {cp.tree_size} of {cp.origin}; checkpoint key "
        f"{cp.key_id[:16]} trusted from {trusted_from}; the unsigned manifest labels them "
        f"{shown_ref(manifest.get('scope'), 120)}"
    )
    return BundleCheck(True, summary)
