"""Signed Merkle checkpoints (tree size, root hash, time), kept outside the store.

A checkpoint commits to the first ``tree_size`` records: anyone holding it can later check that the log
still extends it (``aios audit verify --checkpoint``) and verify inclusion proofs offline. The signed
body is a small text note in the spirit of C2SP signed notes::

    aios-audit-checkpoint/v1
    <origin>
    <tree_size>
    <root hash, base64>
    <timestamp, ISO 8601>

signed with Ed25519. The key comes from ``settings.signing_key``: ``file:PATH`` (generated on first use with
mode 0600) or ``env:VAR`` holding a PEM (a cluster secret).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from flytekitplugins.aios_core.errors import ConfigError

HEADER = "aios-audit-checkpoint/v1"


class Checkpoint(BaseModel):
    """A signed tree head."""

    model_config = ConfigDict(frozen=True)

    origin: str
    tree_size: int
    root_hash: str
    timestamp: str
    key_id: str
    public_key: str
    signature: str

    def body(self) -> bytes:
        """The exact bytes that are signed."""
        return note_body(self.origin, self.tree_size, bytes.fromhex(self.root_hash), self.timestamp)

    def verify_signature(self, trusted_public_key_pem: str | None = None) -> bool:
        """True if the signature is valid under ``trusted_public_key_pem`` (default: the embedded key)."""
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
        from cryptography.hazmat.primitives.serialization import load_pem_public_key

        pem = trusted_public_key_pem or self.public_key
        try:
            key = load_pem_public_key(pem.encode())
            if not isinstance(key, Ed25519PublicKey):
                return False
            key.verify(base64.b64decode(self.signature), self.body())
        except (InvalidSignature, ValueError):
            return False
        return key_id(pem) == self.key_id

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the checkpoint as JSON."""
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(self.model_dump(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
        return p

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Checkpoint:
        """Read a checkpoint file; a malformed one is a clear error."""
        try:
            return cls.model_validate_json(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            msg = f"cannot read checkpoint {path}: {e}. Pass a file written by `aios audit checkpoint`"
            raise ConfigError(msg) from e


def note_body(origin: str, size: int, root: bytes, timestamp: str) -> bytes:
    """Signed-note body of a checkpoint."""
    return f"{HEADER}\n{origin}\n{size}\n{base64.b64encode(root).decode()}\n{timestamp}\n".encode()


def key_id(public_pem: str) -> str:
    """Short id of a public key: SHA-256 of its PEM, first 16 hex digits."""
    return hashlib.sha256(public_pem.strip().encode()).hexdigest()[:16]


def load_signing_key(spec: str) -> Any:
    """The Ed25519 private key named by ``file:PATH`` (created 0600 if missing) or ``env:VAR`` (PEM)."""
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    from flytekitplugins.aios_core.keys import ed25519_pem

    if not spec.startswith(("env:", "file:")):
        msg = f"signing_key {spec!r} is invalid: use file:PATH or env:VAR (AIOS_SIGNING_KEY)"
        raise ConfigError(msg)
    return load_pem_private_key(ed25519_pem(spec, what="signing key") or b"", password=None)


def public_pem(private_key: Any) -> str:
    """PEM of the public half of ``private_key``."""
    from cryptography.hazmat.primitives import serialization

    raw: bytes = private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return raw.decode()


def sign_checkpoint(origin: str, size: int, root: bytes, private_key: Any) -> Checkpoint:
    """Sign a tree head now."""
    ts = dt.datetime.now(dt.UTC).isoformat()
    pem = public_pem(private_key)
    sig = private_key.sign(note_body(origin, size, root, ts))
    return Checkpoint(
        origin=origin,
        tree_size=size,
        root_hash=root.hex(),
        timestamp=ts,
        key_id=key_id(pem),
        public_key=pem,
        signature=base64.b64encode(sig).decode(),
    )
