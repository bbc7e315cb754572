"""Signed Merkle checkpoints (tree size, root hash, chain head, frontier), kept outside the store.

A checkpoint commits to the first ``tree_size`` records: anyone holding it can later check that the log
still extends it (``aios audit verify --checkpoint``) and verify inclusion proofs offline. It is a C2SP
``tlog-checkpoint`` in a C2SP signed note (readable by Go's ``sumdb/note``, Tessera and witnesses)::

    <origin>
    <tree_size>
    <root hash, base64>
    time <ISO 8601>
    chain <chain hash of record tree_size, base64>
    frontier <base64> <base64> ...      (roots of the perfect subtrees covering [0, tree_size), largest first)

    — aios-audit <base64(key id || Ed25519 signature)>

The chain head and frontier let a verifier check only the records after the checkpoint (:mod:`.verify`).
Checkpoints written before this format (JSON with a ``aios-audit-checkpoint/v1`` body) are still read and
verified. The key comes from ``settings.signing_key``: ``file:PATH`` (generated on first use with mode 0600)
or ``env:VAR`` holding a PEM (a cluster secret).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from flytekitplugins.aios_audit import note
from flytekitplugins.aios_core.errors import ConfigError

HEADER = "aios-audit-checkpoint/v1"
NOTE_FORMAT = "c2sp-tlog-checkpoint"
KEY_NAME = "aios-audit"
"""Key name in the signature line; a verifier key for it reads ``aios-audit+<key id>+<base64 key>``."""


MAX_TREE_SIZE = 2**63 - 1
"""The largest tree size a checkpoint may name: a record count both stores hold in a signed 64-bit integer."""
_HEX64 = re.compile(r"[0-9a-f]{64}")


def _hash(value: str) -> str:
    if not _HEX64.fullmatch(value):
        raise ValueError("must be a SHA-256 hash: 64 lower-case hex digits")
    return value


def _hash_or_empty(value: str) -> str:
    return _hash(value) if value else value


Hash = Annotated[str, AfterValidator(_hash)]
"""A SHA-256 hash as checkpoints keep it: 64 lower-case hex digits."""


def first_problem(error: ValidationError) -> str:
    """The first field a validation refused and why, on one line: ``tree_size: Input should be ...``."""
    first = error.errors()[0]
    return f"{'.'.join(str(x) for x in first['loc']) or 'its fields'}: {first['msg']}"


def _b64(hex_hash: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_hash)).decode()


class Checkpoint(BaseModel):
    """A signed tree head (``format``: a C2SP signed note, or the older JSON checkpoint)."""

    model_config = ConfigDict(frozen=True)

    origin: str
    tree_size: int = Field(ge=0, le=MAX_TREE_SIZE)
    root_hash: Hash
    timestamp: str
    key_id: str
    public_key: str = ""
    signature: str
    format: str = HEADER
    chain_head: Annotated[str, AfterValidator(_hash_or_empty)] = ""
    frontier: tuple[Hash, ...] = ()
    key_name: str = ""
    extensions: tuple[str, ...] = ()
    """Extension lines of other tools, kept verbatim after this pack's own."""
    cosignatures: tuple[str, ...] = ()
    """Further signature lines (witnesses), verbatim."""

    @property
    def is_note(self) -> bool:
        """True for the C2SP format (chain head and frontier signed)."""
        return self.format == NOTE_FORMAT

    def body(self) -> bytes:
        """The exact bytes that are signed."""
        if not self.is_note:
            return note_body(self.origin, self.tree_size, bytes.fromhex(self.root_hash), self.timestamp)
        lines = [self.origin, str(self.tree_size), _b64(self.root_hash), f"time {self.timestamp}"]
        lines += [f"chain {_b64(self.chain_head)}"] if self.chain_head else []
        lines += ["frontier " + " ".join(_b64(h) for h in self.frontier)] if self.frontier else []
        return ("\n".join([*lines, *self.extensions]) + "\n").encode()

    def signatures(self) -> list[note.Signature]:
        """Every signature of a note checkpoint (the log's first); :class:`note.NoteError` if one is malformed."""
        first = note.Signature(self.key_name, bytes.fromhex(self.key_id), base64.b64decode(self.signature))
        return [first, *(note.parse("x\n\n" + line + "\n")[1][0] for line in self.cosignatures)]

    def text(self) -> str:
        """The signed note (C2SP) of a note checkpoint."""
        return self.body().decode() + "\n" + "".join(s.line() for s in self.signatures())

    def verify_signature(self, trusted_public_key_pem: str) -> bool:
        """True if the signature is valid under ``trusted_public_key_pem``.

        The key embedded in an old checkpoint is never trusted by itself (whoever rewrites a log can sign with a
        key of their own): callers pass a pinned key, see :mod:`flytekitplugins.aios_audit.trust`.
        """
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
        from cryptography.hazmat.primitives.serialization import load_pem_public_key

        try:
            key = load_pem_public_key(trusted_public_key_pem.encode())
            if not isinstance(key, Ed25519PublicKey):
                return False
            if self.is_note:
                raw, body = note.raw_public(key), self.body().decode()
                return any(note.verify(body, s, s.name, raw) for s in self.signatures())
            key.verify(base64.b64decode(self.signature), self.body())
        except (InvalidSignature, ValueError, TypeError):
            return False
        return True

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the signed note (old checkpoints: JSON), mode 0600, folders created 0700."""
        from flytekitplugins.aios_audit.private_files import write_private

        if self.is_note:
            return write_private(path, self.text())
        return write_private(path, json.dumps(self.model_dump(), indent=2, sort_keys=True) + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Checkpoint:
        """Read a checkpoint file (signed note or JSON); a malformed one is a clear error."""
        try:
            text = Path(path).read_text(encoding="utf-8")
            return cls.model_validate_json(text) if text.lstrip().startswith("{") else cls.from_note(text)
        except ValidationError as e:  # a field out of its range or form: the first one, on one line
            msg = f"cannot read checkpoint {path}: {first_problem(e)}. Pass a file written by `aios audit checkpoint`"
            raise ConfigError(msg) from e
        except (OSError, ValueError) as e:
            msg = f"cannot read checkpoint {path}: {e}. Pass a file written by `aios audit checkpoint`"
            raise ConfigError(msg) from e

    @classmethod
    def from_note(cls, text: str) -> Checkpoint:
        """Parse a C2SP checkpoint note (signatures are checked later, against trusted keys)."""
        body, sigs = note.parse(text)
        lines = body[:-1].split("\n")
        if len(lines) < 3 or not lines[1].isdigit() or (lines[1] != "0" and lines[1].startswith("0")):
            raise note.NoteError("a checkpoint body starts with origin, tree size and root hash lines")
        root = base64.b64decode(lines[2], validate=True)
        if len(root) != 32:
            raise note.NoteError("the root hash line is not a base64 32-byte hash")
        known: dict[str, str] = {}
        other: list[str] = []
        for line in lines[3:]:
            word, _, rest = line.partition(" ")
            if word in ("time", "chain", "frontier") and word not in known and not other:
                known[word] = rest
            else:
                other.append(line)
        cp = cls(
            origin=lines[0], tree_size=int(lines[1]), root_hash=root.hex(), timestamp=known.get("time", ""),
            key_id=sigs[0].key_id.hex(), signature=base64.b64encode(sigs[0].sig).decode(), format=NOTE_FORMAT,
            chain_head=base64.b64decode(known.get("chain", "")).hex(),
            frontier=tuple(base64.b64decode(h).hex() for h in known.get("frontier", "").split()),
            key_name=sigs[0].name, extensions=tuple(other), cosignatures=tuple(s.line()[:-1] for s in sigs[1:]),
        )  # fmt: skip
        if cp.body().decode() != body:
            raise note.NoteError("the checkpoint's extension lines are not in the order this verifier writes")
        return cp


def note_body(origin: str, size: int, root: bytes, timestamp: str) -> bytes:
    """Signed body of an old-format (JSON) checkpoint."""
    return f"{HEADER}\n{origin}\n{size}\n{base64.b64encode(root).decode()}\n{timestamp}\n".encode()


def key_id(public_pem: str) -> str:
    """Id of a public key as checkpoints show it: its C2SP key id under :data:`KEY_NAME`, 8 hex digits."""
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    try:
        return note.key_id(KEY_NAME, note.raw_public(load_pem_public_key(public_pem.strip().encode()))).hex()
    except (ValueError, TypeError):
        return hashlib.sha256(public_pem.strip().encode()).hexdigest()[:8]


def load_signing_key(spec: str) -> Any:
    """The Ed25519 private key named by ``file:PATH`` (created 0600 if missing) or ``env:VAR`` (PEM)."""
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    from flytekitplugins.aios_core.keys import ed25519_pem

    if not spec.startswith(("env:", "file:")):
        from flytekitplugins.aios_core.redact import mask_text

        shown = "(a key written inline, not shown)" if "-----BEGIN" in spec else repr(mask_text(spec))
        msg = f"signing_key {shown} is invalid: use file:PATH or env:VAR (AIOS_SIGNING_KEY)"
        raise ConfigError(msg)
    return load_pem_private_key(ed25519_pem(spec, what="signing key") or b"", password=None)


def public_pem(private_key: Any) -> str:
    """PEM of the public half of ``private_key``."""
    return public_key_pem(private_key.public_key())


def public_key_pem(public_key: Any) -> str:
    """SubjectPublicKeyInfo PEM of a public key object."""
    from cryptography.hazmat.primitives import serialization

    raw: bytes = public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return raw.decode()


def sign_checkpoint(
    origin: str,
    size: int,
    root: bytes,
    private_key: Any,
    chain_head: bytes | None = None,
    frontier: Sequence[bytes] = (),
) -> Checkpoint:
    """Sign a tree head now, as a C2SP checkpoint note (with the chain head and frontier when given)."""
    unsigned = Checkpoint(
        origin=origin,
        tree_size=size,
        root_hash=root.hex(),
        timestamp=dt.datetime.now(dt.UTC).isoformat(),
        key_id="00000000",
        signature="",
        format=NOTE_FORMAT,
        chain_head=chain_head.hex() if chain_head and size else "",
        frontier=tuple(h.hex() for h in frontier),
        key_name=KEY_NAME,
    )
    return Checkpoint.from_note(note.sign(unsigned.body().decode(), KEY_NAME, private_key))
