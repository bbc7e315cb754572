"""Checkpoints and proofs over a store: what ``aios audit checkpoint|prove|verify-proof`` do.

A checkpoint is only signed after verification (signing a tampered log would bless it): of every record, or, from
the newest checkpoint the same key signed of the same log (:func:`latest_checkpoint`), of the records after it, whose
chain head and Merkle frontier carry the rest; a log that no longer extends that checkpoint is refused, so one key
never signs two heads of a log that disagree. Proof documents are JSON and verifiable offline with the checkpoint alone:

* inclusion: ``{"type": "inclusion", "leaf_index", "tree_size", "leaf_hash", "path": [hex...], "entry"}``
  (``entry`` is the canonical record, so the verifier can recompute the leaf hash from content);
* consistency: ``{"type": "consistency", "old_size", "new_size", "old_root", "new_root", "path"}``.

Proofs read O(log n) stored tree nodes (:mod:`.nodes`) and are verified against the signed checkpoint before
they are returned; if the stored nodes are missing or disagree, the tree is rebuilt from every leaf as before.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from flytekitplugins.aios_audit.checkpoint import (
    Checkpoint,
    first_problem,
    load_signing_key,
    public_pem,
    sign_checkpoint,
)
from flytekitplugins.aios_audit.merkle import MerkleTree, leaf_hash, verify_consistency, verify_inclusion
from flytekitplugins.aios_audit.stores import AuditStore, seq_ref, seq_runs, shown_ref
from flytekitplugins.aios_audit.trust import TrustedKeys, trusted_keys
from flytekitplugins.aios_audit.verify import Progress, verify_store, verify_workers
from flytekitplugins.aios_core.errors import AiosError
from flytekitplugins.aios_core.visible import visible


class ProofError(AiosError):
    """A proof could not be produced (unknown record, log fails verification, size mismatch)."""


def origin_of(store: AuditStore) -> str:
    """Log identity used in checkpoints: bound to the first record so two logs never share checkpoints."""
    first = next(store.scan_raw(1, 1), None)
    return f"aios-audit/{first[2][:16]}" if first else "aios-audit/empty"


log = logging.getLogger(__name__)


def make_checkpoint(
    store: AuditStore,
    signing_key: str,
    previous: Checkpoint | None = None,
    *,
    deep: bool = False,
    progress: Progress | None = None,
    workers: int | None = None,
) -> Checkpoint:
    """Verify the log, then sign its current tree head.

    Without ``previous`` every record is walked. With ``previous`` (a checkpoint of this log signed by this key:
    :func:`latest_checkpoint`) only the records after it are (:func:`.incremental.verify_from`: cost proportional to
    them), or with ``deep`` every record and the root at ``previous``'s size as well; either way a log that no longer
    extends ``previous`` (truncated, rewritten, a fork) is refused. ``progress(done)`` is told the records walked;
    ``workers`` as :func:`.verify.verify_store` takes it (two: a forked child walks the upper half).
    """
    from flytekitplugins.aios_audit.incremental import verify_from

    key = load_signing_key(signing_key)
    if previous is None:
        result = verify_store(store, progress=progress, workers=workers)
    elif deep:
        result = verify_store(store, previous, public_pem(key), progress=progress, workers=workers)
    else:
        result = verify_from(store, previous, public_pem(key), progress=progress, workers=workers)
    if not result.ok:
        msg = f"refusing to sign a checkpoint of a log that fails verification: {result.summary()}"
        if previous is not None:
            msg += f" (checked against the checkpoint of {previous.tree_size} records this key signed before)"
        raise ProofError(msg)
    return sign_checkpoint(
        origin_of(store),
        result.size,
        bytes.fromhex(result.root_hash),
        key,
        chain_head=bytes.fromhex(result.head_hash) if result.size else None,
        frontier=[bytes.fromhex(h) for h in result.frontier],
    )


def latest_checkpoint(folder: Path, store: AuditStore, signing_key: str) -> Checkpoint | None:
    """The checkpoint with the most records, of this log (its origin) and signed by ``signing_key``, among the files
    of ``folder`` (``aios audit checkpoint`` keeps each one it writes there); None when there is none.

    Files that do not load (a warning), name another log or are not signed by this key (as after a key rotation) are
    passed over: the next checkpoint then continues from an older one, or walks every record.
    """
    if not folder.is_dir():
        return None
    origin, pem = origin_of(store), public_pem(load_signing_key(signing_key))
    best: Checkpoint | None = None
    for path in sorted(folder.glob("*.json")):
        try:
            cp = Checkpoint.load(path)
        except Exception as e:  # a checkpoint file that does not parse is not one to continue from
            log.warning("checkpoint %s passed over: it does not load (%s)", path, type(e).__name__)
            continue
        if cp.origin != origin or not cp.is_note or (cp.tree_size and not cp.chain_head):
            continue
        if why := trusted_keys(pem).check(cp):  # e.g. signed before the key was rotated: expected, not a warning
            log.info("checkpoint %s passed over: %s", path, why)
            continue
        if best is None or cp.tree_size > best.tree_size:
            best = cp
    return best


def checkpoints_dir(settings: Any) -> Path:
    """Where ``aios audit checkpoint`` keeps a copy of every checkpoint it signs (the state folder's
    ``checkpoints/``), and where the next one looks for the one to continue from."""
    return Path(settings.state_dir) / "checkpoints"


def continuing_checkpoint(
    store: AuditStore, settings: Any, *, deep: bool = False
) -> tuple[Checkpoint, Checkpoint | None]:
    """A checkpoint of ``store`` signed now with ``settings.signing_key``, continuing from the newest one that key
    signed of it among those kept in :func:`checkpoints_dir`: ``(new, previous or None)``. The walk uses
    ``settings.verify_workers`` processes (:func:`make_checkpoint`)."""
    previous = latest_checkpoint(checkpoints_dir(settings), store, settings.signing_key)
    workers = verify_workers(settings.verify_workers)
    return make_checkpoint(store, settings.signing_key, previous, deep=deep, workers=workers), previous


def _tree(store: AuditStore, size: int, ref: str = "") -> tuple[MerkleTree, int, bytes]:
    """The tree of the first ``size`` entries, rebuilt from them (the fallback when the stored levels fail), and the
    position and entry of record ``ref`` (``-1, b""`` when it is not among them). Only the leaf hashes are kept, not
    every entry and record id (ten million entries: about 20 GB)."""
    leaves: list[bytes] = []
    at, found = (seq - 1 if (seq := seq_ref(ref)) is not None else -1), b""
    for seq, entry, leaf, _prev, _chain in store.scan_raw(1, size):
        leaves.append(leaf_hash(entry))
        if (seq - 1 == at) if at >= 0 else (ref and leaf == ref):
            at, found = seq - 1, entry
    if len(leaves) != size:
        msg = f"the log has {len(leaves)} records, fewer than the requested tree size {size}"
        raise ProofError(msg)
    return MerkleTree(leaves), (at if found else -1), found


def _rebuilt(store: AuditStore, cp: Checkpoint, ref: str = "") -> tuple[MerkleTree, int, bytes]:
    """:func:`_tree` of ``cp``'s size, refused unless its root is ``cp``'s."""
    tree, i, entry = _tree(store, cp.tree_size, ref)
    if tree.root().hex() != cp.root_hash:
        msg = "the log's first records no longer match the checkpoint root: run `aios audit verify --checkpoint`"
        raise ProofError(msg)
    return tree, i, entry


def _stored_path(tree: MerkleTree, seq: int, leaf: bytes, cp: Checkpoint) -> list[bytes] | None:
    """Record ``seq``'s inclusion path from the stored levels if they hold it and it proves ``leaf`` in ``cp``'s
    signed tree; None (rebuild the tree) otherwise."""
    try:
        path = tree.inclusion_proof(seq - 1)
    except KeyError:
        return None
    return path if verify_inclusion(leaf, seq - 1, cp.tree_size, path, bytes.fromhex(cp.root_hash)) else None


def _fast_inclusion(store: AuditStore, ref: str, cp: Checkpoint) -> dict[str, Any] | None:
    """The inclusion proof from stored nodes, checked against ``cp``; None to fall back to the full rebuild."""
    from flytekitplugins.aios_audit.nodes import stored_tree

    # the look-up by id first: on SQLite it brings the id table up to date, from which the tree levels are then
    # integrated (nodes._leaf_hashes) instead of from the log's much larger rows
    named = seq_ref(ref)
    rec = store.get(ref) if named is None else None
    seq = named if named is not None else (rec.seq if rec is not None else 0)
    if not 1 <= seq <= cp.tree_size:
        msg = f"record {shown_ref(ref)} is not among the {cp.tree_size} records covered by the checkpoint"
        raise ProofError(msg)
    tree = stored_tree(store, cp.tree_size)
    if tree is None:
        return None
    row = next(store.scan_raw(seq, seq), None)
    if row is None or (rec is not None and row[2] != ref):
        return None
    leaf = leaf_hash(row[1])
    path = _stored_path(tree, seq, leaf, cp)
    return None if path is None else _inclusion_doc(seq - 1, leaf, path, row[1], cp)


def _inclusion_doc(i: int, leaf: bytes, path: list[bytes], entry: bytes, cp: Checkpoint) -> dict[str, Any]:
    return {
        "type": "inclusion",
        "leaf_index": i,
        "tree_size": cp.tree_size,
        "leaf_hash": leaf.hex(),
        "path": [p.hex() for p in path],
        "entry": entry.decode("utf-8"),
        "checkpoint": cp.model_dump(),
    }


def prove_inclusion(store: AuditStore, ref: str, checkpoint: Checkpoint) -> dict[str, Any]:
    """Inclusion proof of a record (id, or ``#seq``) in the tree of ``checkpoint``."""
    if (fast := _fast_inclusion(store, ref, checkpoint)) is not None:
        return fast
    tree, i, entry = _rebuilt(store, checkpoint, ref)
    if not 0 <= i < checkpoint.tree_size:
        msg = f"record {ref!r} is not among the {checkpoint.tree_size} records covered by the checkpoint"
        raise ProofError(msg)
    return _inclusion_doc(i, tree.levels[0][i], tree.inclusion_proof(i), entry, checkpoint)


def prove_inclusions(store: AuditStore, seqs: Iterable[int], checkpoint: Checkpoint) -> dict[int, dict[str, Any]]:
    """Inclusion proofs of the records ``seqs`` (those the checkpoint covers) in the tree of ``checkpoint``, each the
    document :func:`prove_inclusion` gives for ``#seq``: one stored tree for all of them, the nodes their paths need
    read in bulk first (:meth:`.nodes.StoredTree.prefetch`), each proof checked against the signed root. Records whose
    proofs the stored levels cannot give (or give wrong) get theirs from the tree rebuilt from every leaf, once for
    all of them (one at a time, each such record rebuilt it). An evidence bundle of an execution's 500 records at ten
    million records: 16,000 queries one node at a time before."""
    from flytekitplugins.aios_audit.nodes import stored_tree

    wanted = sorted({s for s in seqs if 1 <= s <= checkpoint.tree_size})
    tree = stored_tree(store, checkpoint.tree_size) if wanted else None
    if tree is not None:
        tree.prefetch(s - 1 for s in wanted)
    rows = {int(r[0]): r for first, last in seq_runs(wanted) for r in store.scan_raw(first, last)}  # by runs
    out: dict[int, dict[str, Any]] = {}
    full: MerkleTree | None = None
    for seq in wanted:
        row = rows.get(seq)
        if row is None:  # the log lost it: prove_inclusion says what is wrong
            out[seq] = prove_inclusion(store, f"#{seq}", checkpoint)
            continue
        leaf = leaf_hash(row[1])
        path = _stored_path(tree, seq, leaf, checkpoint) if tree is not None else None
        if path is None:
            if full is None:  # once, for every record the stored levels failed
                full = _rebuilt(store, checkpoint)[0]
            leaf, path = full.levels[0][seq - 1], full.inclusion_proof(seq - 1)
        out[seq] = _inclusion_doc(seq - 1, leaf, path, row[1], checkpoint)
    return out


def prove_consistency(store: AuditStore, old: Checkpoint, new: Checkpoint) -> dict[str, Any]:
    """Consistency proof that the tree of ``new`` extends the tree of ``old``, checked against both roots before it
    is returned: a log that does not extend ``old`` (truncated, rewritten, or another log) is a :class:`ProofError`
    saying so, never a proof document that would not verify."""
    from flytekitplugins.aios_audit.nodes import stored_tree

    if old.tree_size == 0:
        msg = "the old checkpoint covers no records: every log extends an empty tree, so there is nothing to prove"
        raise ProofError(msg)
    if old.origin != new.origin:
        msg = f"the old checkpoint is of another log ({visible(old.origin)}), not of this one ({visible(new.origin)})"
        raise ProofError(msg)
    if old.tree_size > new.tree_size:
        msg = (
            f"the old checkpoint covers {old.tree_size} records but the log now has {new.tree_size}: a log only grows, "
            "so this one was truncated or the checkpoint is of another log; run `aios audit verify --checkpoint`"
        )
        raise ProofError(msg)
    path: list[bytes] | None = None
    stored = stored_tree(store, new.tree_size)
    if stored is not None:  # 0 < old.tree_size <= new.tree_size, checked above
        try:
            path = stored.consistency_proof(old.tree_size, new.tree_size)
        except KeyError:
            path = None
        old_root, new_root = bytes.fromhex(old.root_hash), bytes.fromhex(new.root_hash)
        if path is not None and not verify_consistency(old.tree_size, new.tree_size, old_root, new_root, path):
            path = None
    if path is None:
        path = _tree(store, new.tree_size)[0].consistency_proof(old.tree_size, new.tree_size)
        if not verify_consistency(
            old.tree_size, new.tree_size, bytes.fromhex(old.root_hash), bytes.fromhex(new.root_hash), path
        ):
            msg = (
                f"the log does not extend the old checkpoint: its first {old.tree_size} records no longer produce the "
                "checkpoint's root (rewritten, or a checkpoint of another log); run `aios audit verify --checkpoint`"
            )
            raise ProofError(msg)
    return {
        "type": "consistency",
        "old_size": old.tree_size,
        "new_size": new.tree_size,
        "old_root": old.root_hash,
        "new_root": new.root_hash,
        "path": [p.hex() for p in path],
        "old_checkpoint": old.model_dump(),
        "checkpoint": new.model_dump(),
    }


def check_proof(
    doc: dict[str, Any], checkpoint: Checkpoint, trusted: TrustedKeys | str | None = None
) -> tuple[bool, str]:
    """Verify a proof document offline against ``checkpoint``; returns (ok, one-line reason).

    Checkpoints must be signed by a ``trusted`` key (see :func:`verify_store`). Every field the document shows
    is checked against the checkpoints, so an edited number or root never reads VALID.
    """
    keys = trusted_keys(trusted)
    if why := keys.check(checkpoint):
        return False, why
    if not isinstance(doc, dict):
        return False, f"malformed proof document: a {type(doc).__name__}, not an object"
    if why := _malformed(doc):
        return False, f"malformed proof document: {why}"
    try:
        path = [bytes.fromhex(p) for p in doc["path"]]
        root = bytes.fromhex(checkpoint.root_hash)
        if "checkpoint" in doc and Checkpoint.model_validate(doc["checkpoint"]) != checkpoint:
            return False, "field checkpoint: the proof was made for another checkpoint than --checkpoint"
        if doc.get("type") == "inclusion":
            return _check_inclusion(doc, path, root, checkpoint)
        if doc.get("type") == "consistency":
            old = Checkpoint.model_validate(doc["old_checkpoint"])
            if why := keys.check(old):
                return False, f"old checkpoint: {why}"
            if why := _consistency_fields(doc, old, checkpoint):
                return False, why
            ok = verify_consistency(old.tree_size, checkpoint.tree_size, bytes.fromhex(old.root_hash), root, path)
            return (
                ok,
                f"tree of {checkpoint.tree_size} {'extends' if ok else 'does NOT extend'} tree of {old.tree_size}",
            )
    except ValidationError as e:  # a checkpoint object that is no checkpoint: its first problem, on one line
        return False, f"malformed proof document: a checkpoint in it is no checkpoint ({first_problem(e)})"
    except (KeyError, ValueError, TypeError) as e:
        return False, f"malformed proof document: {type(e).__name__}: {e}"
    return False, f"unknown proof type {doc.get('type')!r}"


_HASH = re.compile(r"[0-9a-f]{64}")
_FIELDS: dict[str, dict[str, tuple[str, bool]]] = {  # field: (kind, required)
    "inclusion": {"leaf_index": ("count", True), "tree_size": ("count", True), "leaf_hash": ("hash", True),
                  "entry": ("text", False)},
    "consistency": {"old_size": ("count", False), "new_size": ("count", False), "old_root": ("hash", False),
                    "new_root": ("hash", False), "old_checkpoint": ("object", True)},
}  # fmt: skip


def _malformed(doc: dict[str, Any]) -> str:
    """The first field of a proof document that is not of its type ("" if none): a count is a whole number of 0 or
    more (not a float, a string or a boolean, which ``int()`` turned into the number the proof was made for: an edited
    leaf index of 2.5 or "2" read VALID), a hash 64 lower-case hex digits, the entry text, a checkpoint an object;
    ``path`` a list of hashes. Fields a proof only shows may be left out; the ones it is checked by may not."""
    path = doc.get("path")
    if not isinstance(path, list) or not all(isinstance(h, str) and _HASH.fullmatch(h) for h in path):
        return "field path must be a list of hashes (64 hex digits each)"
    if "checkpoint" in doc and not isinstance(doc["checkpoint"], dict):
        return f"field checkpoint must be a checkpoint object, not {shown_ref(doc['checkpoint'], 60)}"
    for field, (kind, required) in _FIELDS.get(str(doc.get("type")), {}).items():
        if field not in doc:
            if required:
                return f"field {field} is missing"
            continue
        value = doc[field]
        if kind == "count" and (type(value) is not int or value < 0):
            return f"field {field} must be a whole number of 0 or more, not {shown_ref(value, 60)}"
        if kind == "hash" and not (isinstance(value, str) and _HASH.fullmatch(value)):
            return f"field {field} must be a hash (64 hex digits), not {shown_ref(value, 60)}"
        if kind == "text" and not isinstance(value, str):
            return f"field {field} must be the entry's text, not {shown_ref(value, 60)}"
        if kind == "object" and not isinstance(value, dict):
            return f"field {field} must be a checkpoint object, not {shown_ref(value, 60)}"
    return ""


def _consistency_fields(doc: dict[str, Any], old: Checkpoint, new: Checkpoint) -> str:
    """The first visible field of a consistency proof that disagrees with the signed checkpoints ("" if none)."""
    if old.origin != new.origin:
        return f"field old_checkpoint: its log ({old.origin}) is not the log of --checkpoint ({new.origin})"
    expected = {
        "old_size": old.tree_size,
        "new_size": new.tree_size,
        "old_root": old.root_hash,
        "new_root": new.root_hash,
    }
    for field, value in expected.items():
        if field in doc and doc[field] != value:
            return f"field {field} is {doc[field]!r} but the signed checkpoint says {value!r}"
    return ""


def _check_inclusion(doc: dict[str, Any], path: list[bytes], root: bytes, cp: Checkpoint) -> tuple[bool, str]:
    leaf = bytes.fromhex(doc["leaf_hash"])
    if "entry" in doc and hashlib.sha256(b"\x00" + doc["entry"].encode("utf-8")).digest() != leaf:
        return False, "entry content does not match the leaf hash"
    if int(doc["tree_size"]) != cp.tree_size:
        return False, f"proof is for tree size {doc['tree_size']}, checkpoint is for {cp.tree_size}"
    ok = verify_inclusion(leaf, int(doc["leaf_index"]), cp.tree_size, path, root)
    seq = int(doc["leaf_index"]) + 1
    return ok, f"record seq {seq} {'is' if ok else 'is NOT'} included in the checkpointed tree of {cp.tree_size}"
