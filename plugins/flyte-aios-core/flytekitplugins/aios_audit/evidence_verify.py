"""Offline verification of an evidence bundle (see :mod:`.evidence`): needs the pack, no store and no settings."""

from __future__ import annotations

import hashlib
import json
import re
import stat
import struct
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from flytekitplugins.aios_audit.checkpoint import Checkpoint, key_id
from flytekitplugins.aios_audit.evidence import FORMAT, README, BundleCheck, approvals_key_file, sealed_edges
from flytekitplugins.aios_audit.proofs import check_proof
from flytekitplugins.aios_audit.stores import shown_ref
from flytekitplugins.aios_audit.trust import TrustedKeys, canonical_public_pem
from flytekitplugins.aios_core.errors import ConfigError

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


_LOCAL = struct.Struct("<4s5H3L2H")  # local file header: signature .. extra length (30 bytes)
_EOCD = struct.Struct("<4s4H2LH")  # end of central directory record (22 bytes)
_ZIP64_LOCATOR = struct.Struct("<4sLQL")  # 20 bytes, just before the end record
_ZIP64_EOCD = struct.Struct("<4sQ2H2L4Q")  # 56 bytes


def _central_directory(fh: Any, size: int) -> tuple[int, int, int] | str:
    """``(offset, end, entries)`` of the central directory as the end records place it, where the records must
    follow it with nothing between them and nothing after the end record's comment; or why not."""
    tail_len = min(size, _EOCD.size + 0xFFFF)
    fh.seek(size - tail_len)
    tail = fh.read(tail_len)
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < _EOCD.size:
        return "it has no end of central directory record"
    _sig, _disk, _cd_disk, _n_disk, entries, cd_size, cd_offset, comment = _EOCD.unpack_from(tail, at)
    eocd = size - tail_len + at
    if eocd + _EOCD.size + comment != size:
        return "bytes follow its end of central directory record"
    end = eocd
    if eocd >= _ZIP64_LOCATOR.size:
        fh.seek(eocd - _ZIP64_LOCATOR.size)
        sig, _disk64, rec_at, _disks = _ZIP64_LOCATOR.unpack(fh.read(_ZIP64_LOCATOR.size))
        if sig == b"PK\x06\x07":
            fh.seek(rec_at)
            raw = fh.read(_ZIP64_EOCD.size)
            if len(raw) != _ZIP64_EOCD.size or raw[:4] != b"PK\x06\x06":
                return "its zip64 end record is not where its locator says"
            _s, rec_size, _v, _vn, _d, _dcd, _nd, entries, cd_size, cd_offset = _ZIP64_EOCD.unpack(raw)
            if rec_at + 12 + rec_size != eocd - _ZIP64_LOCATOR.size:
                return "bytes lie between its zip64 end record and its locator"
            end = rec_at
    if cd_offset + cd_size != end:
        return "its central directory does not end where its end record begins (bytes before or between them)"
    return cd_offset, end, entries


def _layout_problem(path: Path, infos: Sequence[zipfile.ZipInfo]) -> str:
    """Why the zip's bytes are not exactly its directory's files ("" if they are).

    A streaming reader (Java's ZipInputStream, ``jar x``, stream unzippers, upload scanners) reads the local headers
    from the start of the file, never the central directory this verifier reads: a local header and data that no
    directory entry points at (a forged copy of a record after the genuine one) would be extracted by it, unseen
    here. So the local headers and their data must tile the file from offset 0 to the central directory, in order,
    each with the name, method, CRC and sizes of its directory entry, and nothing may lie before, between or after."""
    with path.open("rb") as fh:
        size = fh.seek(0, 2)
        where = _central_directory(fh, size)
        if isinstance(where, str):
            return where
        cd_offset, _end, entries = where
        if entries != len(infos):
            return f"its end record counts {entries} files, its central directory holds {len(infos)}"
        pos = 0
        for info in sorted(infos, key=lambda i: i.header_offset):
            name = shown_ref(info.filename, 80)
            if info.header_offset != pos:
                how = (
                    "overlaps the file before it" if info.header_offset < pos else "is not right after the file before"
                )
                return (
                    f"the local header of {name} {how} (offset {info.header_offset}, expected {pos}): "
                    "bytes no directory entry accounts for, which a streaming zip reader would extract"
                )
            fh.seek(pos)
            head = fh.read(_LOCAL.size)
            if len(head) != _LOCAL.size:
                return f"the local header of {name} is cut short"
            sig, _ver, flags, method, _t, _d, crc, csize, usize, nlen, elen = _LOCAL.unpack(head)
            local_name = fh.read(nlen)
            if sig != b"PK\x03\x04" or local_name != info.orig_filename.encode("utf-8"):
                return f"the local header of {name} does not name the file its directory entry names"
            if flags & 0x08 or (method, crc, csize, usize) != (
                info.compress_type,
                info.CRC,
                info.compress_size,
                info.file_size,
            ):
                return f"the local header of {name} does not give the method, CRC and sizes of its directory entry"
            pos += _LOCAL.size + nlen + elen + info.compress_size
        if pos != cd_offset:
            return (
                f"{cd_offset - pos:,} bytes between its last file and its central directory that no directory entry "
                "accounts for (a hidden file a streaming zip reader would extract)"
                if pos < cd_offset
                else "its last file runs into its central directory"
            )
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
            if problem := _member_problem(infos) or _layout_problem(path, infos):
                return None, BundleCheck(False, f"{path} is not a readable evidence bundle: {problem}")
            for name in z.namelist():
                try:
                    files[name] = z.read(name)
                except Exception as e:  # CRC, inflate (zlib.error) or header errors: the bytes changed
                    return None, BundleCheck(False, f"{_who(name)} is damaged in the zip ({e})", name)
    except (zipfile.BadZipFile, OSError, struct.error) as e:
        return None, BundleCheck(False, f"{path} is not a readable evidence bundle: {e}")
    return files, None


def _shipped_key(files: dict[str, bytes], name: str) -> tuple[str, str]:
    """``(canonical public PEM, "")`` of the key file ``name`` as the exporter writes it, or ``("", why not)``."""
    data = files.get(name)
    if data is None:
        return "", f"manifest.json names key file {shown_ref(name, 80)}, which the zip does not hold"
    if not data.startswith(b"-----BEGIN PUBLIC KEY-----"):
        return "", f"{shown_ref(name, 80)} is not a public key PEM: the bundle was altered"
    try:
        pem = canonical_public_pem(data, shown_ref(name, 80))
    except ConfigError as e:
        return "", f"{e}: the bundle was altered"
    if pem.encode() != data:
        return "", f"{shown_ref(name, 80)} is not a public key PEM as the exporter writes it: the bundle was altered"
    return pem, ""


def _keys_problem(files: dict[str, bytes], manifest: dict[str, Any]) -> str:
    """Why a key file is not what the exporter writes ("" if each is): the manifest's ids are unsigned labels, so
    each key file must be named by the id computed from the key it holds, and a label must be that id."""
    seen: set[str] = set()
    for k in manifest.get("keys", []):
        name = k.get("file", "")
        pem, why = _shipped_key(files, name)
        if why:
            return why
        kid = key_id(pem)
        if name != f"keys/{kid}.pem" or name in seen:
            return (
                f"{shown_ref(name, 80)} holds key {kid}: a bundle names each key file once, by the id of the key in it "
                f"(keys/{kid}.pem); the bundle was altered, ask its sender for the bundle as exported"
            )
        if k.get("key_id", kid) != kid:
            return (
                f"manifest.json labels {shown_ref(name, 80)} key {shown_ref(k['key_id'], 20)}, but it holds key {kid}"
            )
        seen.add(name)
    return ""


def _trust(files: dict[str, bytes], manifest: dict[str, Any], public_keys: Sequence[str]) -> tuple[TrustedKeys, str]:
    if public_keys:
        return TrustedKeys.from_files(public_keys), "the --public-key files"
    # inline PEMs only (checked by _keys_problem): a bundle's key file never names a file or variable of this host
    specs = [files[k["file"]].decode() for k in manifest.get("keys", [])]
    keys = TrustedKeys.from_specs(specs, "keys in the bundle")
    ids = ", ".join(k.key_id for k in keys.keys)  # computed from the key files, never the manifest's labels
    return keys, f"the keys shipped in the bundle ({ids or 'none'}): compare them"


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
        if (kind := _entry_kind(entry)) != r.get("kind"):
            # the manifest's kind is an unsigned label: it must be the sealed entry's, or a sender could hide a record
            # from a check that picks records by kind (an approval decision relabelled as something else)
            label = shown_ref(r.get("kind"), 60)
            return BundleCheck(
                False,
                f"record #{r.get('seq')} ({r.get('record_id')}): the manifest labels it {label}, but its sealed entry "
                f"is of kind {shown_ref(kind, 60)}: the bundle was altered",
                name,
            )
    return BundleCheck(True, "")


def _entry_kind(entry: dict[str, Any]) -> object:
    """The event kind a (verified) entry holds: what every check after :func:`_check_records` goes by, never the
    manifest's label (None when the entry holds no event object)."""
    event = entry.get("event")
    return event.get("kind") if isinstance(event, dict) else None


def _members_problem(files: dict[str, bytes], manifest: dict[str, Any], cp: Checkpoint) -> str:
    """Why a member is not one the verifier checks ("" if each is).

    Every file under records/ must be the file of exactly one record of the manifest, named by its seq as the
    exporter names it: the README sends a reader to records/<seq>.json, so an unchecked file there (a forged copy
    beside the genuine record, a record the log never held) would be read as evidence. Key files are the manifest's
    keys; README.txt must be the exporter's text (its scope label is the sender's word, as the manifest's is)."""
    allowed = {"manifest.json", "checkpoint.json", "lineage.json", "README.txt"}
    seqs: set[int] = set()
    for r in manifest.get("records", []):
        seq, name = r["seq"], r["file"]
        if seq < 1 or seq in seqs:
            return f"manifest.json lists record #{seq} {'more than once' if seq in seqs else '(no such seq)'}"
        if name != f"records/{seq:08d}.json":
            return (
                f"manifest.json puts record #{seq} in {shown_ref(name, 80)}, not records/{seq:08d}.json where the "
                "exporter writes it (and a reader looks): the bundle was altered"
            )
        seqs.add(seq)
        allowed.add(name)
    allowed |= {k["file"] for k in manifest.get("keys", [])}
    if isinstance(approvals := manifest.get("approvals_key"), dict):
        allowed.add(approvals["file"])
    for name in sorted(files):
        if name not in allowed:
            what = "no record of the manifest" if name.startswith("records/") else "no file an exporter writes"
            return (
                f"the zip holds {shown_ref(name, 80)}, {what}: the verifier would not check it, so the bundle is "
                "refused (ask its sender for the bundle as exported)"
            )
    if "README.txt" in files:
        text = files["README.txt"].decode("utf-8", "replace")
        head, tail = README.split("{scope}", 1)
        tail = tail.format(origin=cp.origin, size=cp.tree_size)
        if not (text.startswith(head) and text.endswith(tail) and len(text) >= len(head) + len(tail)):
            return (
                "README.txt is not the text the exporter writes for this checkpoint: it is no evidence and may "
                "mislead a reader; the bundle was altered"
            )
    return ""


def _decisions_note(files: dict[str, bytes], manifest: dict[str, Any]) -> tuple[list[str], str]:
    """The warnings about the approval decisions of the bundle, in record order, and the approvals key they were
    checked with (its id computed from the shipped key file; "" when the bundle has no decisions).

    A decision that counts for nothing (as ``aios audit verify`` lists them: a signature that does not verify under
    the approvals key, a decision on another version of its request) is ``ignored approval decision (counts for
    nothing): ...``. The records are taken by the kind of their verified entries (the manifest's labels are unsigned),
    and every decision is judged: the sender chooses which records a bundle holds, so a decision whose request is not
    in the bundle before it still has its signature checked, and is reported as one that cannot be judged against
    its request (whether it covers that request's version cannot be told from the bundle)."""
    entries = []
    for r in manifest.get("records", []):
        entry = json.loads(files[r["file"]])["entry"]
        entries.append((int(r["seq"]), str(r["record_id"]), entry.encode(), _entry_kind(json.loads(entry))))
    entries.sort(key=lambda e: e[0])
    decisions = [(seq, rid) for seq, rid, _entry, kind in entries if kind == "approval_decision"]
    if not any(kind in ("approval_request", "approval_decision") for *_x, kind in entries):
        return [], ""
    from flytekitplugins.aios_approvals import signing
    from flytekitplugins.aios_approvals.audit_check import DecisionCheck, line_kind

    ignored = "ignored approval decision (counts for nothing): "
    approvals = manifest.get("approvals_key")
    # the request records are judged with or without a key (a planted or unreadable request needs none, and was passed
    # over in a bundle holding no decision: re-review R3 of 2026-12-07); the decisions only with one
    key = _ed25519(_shipped_key(files, approvals["file"])[0]) if isinstance(approvals, dict) else None
    check = DecisionCheck(key, selection=True)
    for seq, rid, entry, kind in entries:
        if kind == "approval_request" or (kind == "approval_decision" and key is not None):
            check.see(seq, entry, rid, "", "")  # see() reads the kind from the entry too
    part = check.finish()
    lines = [
        (seq, f"{ignored.replace('decision', line_kind(line), 1)}record #{seq} {line.removeprefix('record ')}")
        for seq, line in part.lines
    ]
    if key is None:
        lines += [
            (
                seq,
                f"{ignored}record #{seq} ({rid}): decision whose signature cannot be checked, the bundle ships no "
                "approvals key",
            )
            for seq, rid in decisions
        ]
        return [line for _seq, line in sorted(lines, key=lambda x: x[0])], ""
    for seq, rid, request_id, approver, _named, signed in part.pending:
        who = f"record #{seq} {rid}: decision by {approver} on {request_id}"
        if not signed:
            lines.append((seq, f"{ignored}{who} is not signed by approvals key {part.kid}"))
        where = (
            "not in the bundle before it"
            if request_id in part.digests
            else "not in the bundle (ask its sender for the bundle as exported)"
        )
        lines.append((seq, f"{who} cannot be judged against its request: request {request_id} is {where}"))
    return [line for _seq, line in sorted(lines, key=lambda x: x[0])], signing.key_id(key)


def _ed25519(pem: str) -> Ed25519PublicKey:
    """The key of a PEM that :func:`canonical_public_pem` made (an Ed25519 public key)."""
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    key = load_pem_public_key(pem.encode())
    if not isinstance(key, Ed25519PublicKey):  # pragma: no cover - canonical_public_pem refuses other keys
        raise TypeError("not an Ed25519 key")
    return key


def _approvals_key_problem(files: dict[str, bytes], manifest: dict[str, Any]) -> str:
    approvals = manifest.get("approvals_key")
    if approvals is None:
        return ""
    if not isinstance(approvals, dict) or not all(isinstance(approvals.get(f), str) for f in ("file", "key_id")):
        return "manifest.json: approvals_key must be an object with a file and a key_id (text)"
    from flytekitplugins.aios_approvals import signing

    pem, why = _shipped_key(files, approvals["file"])
    if why:
        return why
    kid = signing.key_id(_ed25519(pem))
    if approvals["file"] != approvals_key_file(kid) or approvals["key_id"] != kid:
        return (
            f"{shown_ref(approvals['file'], 80)} holds approvals key {kid}, which the manifest names otherwise: "
            "the bundle was altered"
        )
    return ""


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
    if problem := _members_problem(files, manifest, cp) or _keys_problem(files, manifest):
        return BundleCheck(False, problem)
    if problem := _approvals_key_problem(files, manifest):
        return BundleCheck(False, problem)
    keys, trusted_from = _trust(files, manifest, public_keys)
    verifier, why = keys.verifying_key(cp)
    if verifier is None:
        return BundleCheck(False, f"checkpoint.json: {why}", "checkpoint.json")
    # one after the other: the edges are recomputed from entries the record check has verified (a tuple of both
    # calls ran the edge check on entries that had failed theirs)
    if not (result := _check_records(files, manifest, cp, keys)).ok or not (result := _check_edges(files, manifest)).ok:
        return result
    n = len(manifest.get("records", []))
    # the scope is the manifest's word, which nothing signs: quoted as the sender's label, never as what was verified;
    # the key id is computed from the key whose signature verified, never the id the checkpoint or manifest claims
    summary = (
        f"OK: {n} records are included in the signed tree of {cp.tree_size} of {cp.origin}; checkpoint key "
        f"{verifier.key_id} trusted from {trusted_from}; the unsigned manifest labels them "
        f"{shown_ref(manifest.get('scope'), 120)}"
    )
    notes, approvals_kid = _decisions_note(files, manifest)
    if approvals_kid:
        summary += f"; approval decisions checked with approvals key {approvals_kid} shipped in the bundle: compare it"
    # as `aios audit verify` warns: they verify as sealed records, but no fold counts them as approvals (or, their
    # request left out, nothing in the bundle tells whether one counts)
    summary += "".join(f"; warning: {line}" for line in notes)
    return BundleCheck(True, summary, notes=notes)
