"""Evidence bundles: the records of one execution, document or model version, provable to a third party offline.

A bundle is a zip file::

    README.txt            what is inside and how to check it
    manifest.json         scope, log origin, tree size, the records (seq, id, kind, file) and a SHA-256 per file
    checkpoint.json       a signed checkpoint (tree head) of the whole log, made after its verification
    keys/<key id>.pem     the public keys the exporter trusts for checkpoints (compare them with your pinned keys)
    keys/approvals-<id>.pem  the public key approval decisions are signed with (manifest ``approvals_key``)
    records/<seq>.json    per record: its exact canonical entry and its RFC 9162 inclusion proof in that tree
    lineage.json          the typed lineage edges among the bundled records, recomputed from their entries

:func:`verify_bundle` needs only the pack (no store, no settings): every entry must re-hash to its leaf hash, its
inclusion path must lead to the checkpoint's root, the checkpoint must be signed by a trusted key (``--public-key``
files, else the keys in the bundle, which the output says), and every file must match the manifest. The first
failure is reported with the record it concerns. Every member must be one the verifier checks: each record file is
named by its seq (``records/%08d.json``), each key file by the id of the key it holds, and README.txt is this
exporter's text (only the scope label in its first line is the sender's word, as the manifest's is). Approval
decisions whose signature does not verify under the shipped approvals key are reported as counting for nothing, as
``aios audit verify`` does.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flytekitplugins.aios_audit.checkpoint import key_id, load_signing_key, public_key_pem, public_pem
from flytekitplugins.aios_audit.edge_rules import is_record
from flytekitplugins.aios_audit.edges import EdgeIndex
from flytekitplugins.aios_audit.lineage import Tracer
from flytekitplugins.aios_audit.private_files import write_private
from flytekitplugins.aios_audit.proofs import continuing_checkpoint, origin_of, prove_inclusions
from flytekitplugins.aios_audit.records import record_from_entry
from flytekitplugins.aios_audit.trust import TrustedKeys, canonical_public_pem
from flytekitplugins.aios_core.errors import AiosError

FORMAT = "aios-evidence/v1"
README = """AIOS evidence bundle ({scope})

Records of the audit trail of {origin}, with their inclusion proofs in the signed checkpoint of
tree size {size} (checkpoint.json). Check it offline with the pack installed:

    aios evidence verify THIS.zip --public-key YOUR-PINNED-KEY.pem

Without --public-key the keys in keys/ are trusted and the output says so: compare their key ids with the
ones your organisation published. records/<seq>.json holds each record's canonical entry (what its hash
covers) and its inclusion proof; lineage.json the typed edges between the records (each edge names the record
that seals it). Records hold digests and metadata only, never document text.
"""


class EvidenceError(AiosError):
    """A bundle could not be made (nothing selected, the log fails verification)."""


def select(tracer: Tracer, *, execution: str = "", document: str = "", model: str = "") -> list[str]:
    """Record ids of the scope and everything upstream of them (model lineage, policy decisions, requests)."""
    if execution:
        seeds = [rid for _seq, rid in tracer.index.execution_records(execution)]
        if not seeds:
            msg = f"no records of execution {execution!r}: name it as project/domain/name or by its name"
            raise EvidenceError(msg)
        tr = tracer.closure(seeds)
    else:
        ref = document or (model if model.startswith("model:") else f"model:{model}")
        tr = tracer.trace(ref)
        if not tr.start:
            msg = f"{ref!r} names nothing in the audit trail"
            raise EvidenceError(msg)
    return [n for n in tr.nodes() if is_record(n) and n in tr.records]


def _trusted_pems(settings: Any) -> list[str]:
    """The exporter's trusted checkpoint keys, and the public half of its signing key."""
    pems = [k.pem for k in TrustedKeys.from_settings(settings).keys]
    own = canonical_public_pem(public_pem(load_signing_key(settings.signing_key)).encode(), "signing key")
    return list(dict.fromkeys([*pems, own]))


APPROVALS_KEY_FILE = "keys/approvals-{hex}.pem"
"""Where a bundle ships the approvals public key: ``hex`` is the first 16 hex digits of its id (``sha256:...``)."""


def approvals_key_file(key_id: str) -> str:
    """The member name of the approvals key whose id (``sha256:<hex>``) is ``key_id``."""
    return APPROVALS_KEY_FILE.format(hex=key_id.removeprefix("sha256:")[:16])


def _approvals_pem(settings: Any) -> tuple[str, str] | None:
    """``(key id, public PEM)`` of the approvals key decisions are signed with; None where this host has none."""
    from flytekitplugins.aios_approvals import signing
    from flytekitplugins.aios_core.errors import ConfigError

    try:
        key = signing.public_key(settings)
    except (ConfigError, ValueError, TypeError, OSError):
        return None
    return signing.key_id(key), public_key_pem(key)


def export(tracer: Tracer, settings: Any, record_ids: list[str], scope: str, out: Path) -> dict[str, Any]:
    """Write the bundle for ``record_ids`` to ``out`` (:func:`.private_files.write_private`: mode 0600, replacing a
    file found there, writing into a pipe or device such as ``/dev/stdout``, refusing a link or pipe of another
    user's); returns its manifest."""
    store = tracer.store
    cp = continuing_checkpoint(store, settings)[0]
    entries, seqs = {}, {tracer.index.seq_of(r): r for r in record_ids}
    files: dict[str, bytes] = {"checkpoint.json": cp.model_dump_json(indent=2).encode()}
    records = []
    # from the stored tree levels (O(log n) hashes each, read in bulk, checked against the checkpoint's root; the whole
    # tree is rebuilt only if they fail), not a tree of every leaf held in memory
    proofs = prove_inclusions(store, (s for s in seqs if s), cp)
    for seq, doc in proofs.items():
        entries[seq] = doc["entry"].encode("utf-8")
        name = f"records/{seq:08d}.json"
        files[name] = json.dumps(doc, indent=1).encode()
        kind = json.loads(entries[seq])["event"]["kind"]
        records.append({"seq": seq, "record_id": seqs[seq], "kind": kind, "file": name})
    keys = []
    for pem in _trusted_pems(settings):
        kid = key_id(pem)[:16]
        files[f"keys/{kid}.pem"] = pem.encode()
        keys.append({"file": f"keys/{kid}.pem", "key_id": kid})
    approvals = _approvals_pem(settings)
    if approvals is not None:  # so a verifier can tell a signed decision from one that counts for nothing
        files[approvals_key_file(approvals[0])] = approvals[1].encode()
    edges = sealed_edges({seq: (entries[seq], seqs[seq]) for seq in entries})
    files["lineage.json"] = json.dumps(edges, indent=1).encode()
    origin = origin_of(store)
    files["README.txt"] = README.format(scope=scope, origin=origin, size=cp.tree_size).encode()
    manifest = {
        "format": FORMAT, "scope": scope, "origin": origin, "tree_size": cp.tree_size,
        "created_at": dt.datetime.now(dt.UTC).isoformat(), "records": records, "keys": keys,
        **({"approvals_key": {"file": approvals_key_file(approvals[0]), "key_id": approvals[0]}} if approvals else {}),
        "files": {n: hashlib.sha256(b).hexdigest() for n, b in sorted(files.items())},
    }  # fmt: skip
    buf = io.BytesIO()  # the members are in memory already: the zip adds their compressed copy
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("manifest.json", json.dumps(manifest, indent=1))
        for name, data in sorted(files.items()):
            z.writestr(name, data)
    # 0600: the bundle names principals and documents (digests only, but still). Through a temporary file renamed
    # over the name, as `aios audit checkpoint --out` writes: the zip was written into whatever the name held, and
    # another user's file there (0666, created first in a shared folder) stayed theirs and readable through the
    # descriptor they kept, and their link there was followed and overwrote the file it named (review R9, F6).
    write_private(out, buf.getvalue())
    return manifest


def sealed_edges(entries: dict[int, tuple[bytes, str]]) -> list[dict[str, Any]]:
    """The typed lineage edges among these records, recomputed from their sealed entries alone (seq -> entry, id)."""
    index = EdgeIndex(None)
    try:
        for seq in sorted(entries):
            entry, rid = entries[seq]
            index.add(record_from_entry(entry, rid, "", ""))
        return [{"child": c, "parent": p, "rel": r, "sealed_in": s} for c, p, r, s in index.all_edges()]
    finally:
        index.close()


@dataclass
class BundleCheck:
    """Outcome of :func:`verify_bundle`."""

    ok: bool
    summary: str
    record: str = ""
    notes: list[str] = field(default_factory=list)
