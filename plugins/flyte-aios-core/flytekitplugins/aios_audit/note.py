"""C2SP signed notes with Ed25519 keys: encode, parse and verify (the envelope of tlog checkpoints).

A note is ``<body>`` (UTF-8 lines, each ending in ``\\n``), a blank line, then one or more signature lines
``— <key name> <base64(4-byte key id || 64-byte signature)>``. The key id of an Ed25519 key is the first four
bytes of ``SHA-256(key name || 0x0A || 0x01 || public key)``; a verifier key is written
``<name>+<key id hex>+<base64(0x01 || public key)>``. Compatible with Go's ``golang.org/x/mod/sumdb/note``.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import re
from typing import Any

DASH = "\u2014 "
ED25519 = b"\x01"
_NAME = re.compile(r"^[^\s+]+$")


class NoteError(ValueError):
    """Text that is not a well-formed signed note, or a malformed verifier key."""


@dataclasses.dataclass(frozen=True)
class Signature:
    """One signature line of a note."""

    name: str
    key_id: bytes
    sig: bytes

    def line(self) -> str:
        """The signature line, with its newline."""
        return f"{DASH}{self.name} {base64.b64encode(self.key_id + self.sig).decode()}\n"


def key_id(name: str, public: bytes) -> bytes:
    """C2SP key id of an Ed25519 key: SHA-256(name || 0x0A || 0x01 || public key)[:4]."""
    return hashlib.sha256(name.encode() + b"\n" + ED25519 + public).digest()[:4]


def raw_public(key: Any) -> bytes:
    """The 32 raw bytes of an Ed25519 public key object."""
    from cryptography.hazmat.primitives import serialization

    raw: bytes = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return raw


def vkey(name: str, public: bytes) -> str:
    """Verifier key text ``name+id+base64(0x01 || public)``."""
    return f"{name}+{key_id(name, public).hex()}+{base64.b64encode(ED25519 + public).decode()}"


def parse_vkey(text: str) -> tuple[str, bytes]:
    """``(name, raw public key)`` of a verifier key; its key id must match (else :class:`NoteError`)."""
    parts = text.strip().split("+", 2)
    if len(parts) != 3 or not _NAME.match(parts[0]):
        raise NoteError("a verifier key is <name>+<key id hex>+<base64 key>")
    name, hex_id, b64 = parts
    try:
        raw = base64.b64decode(b64, validate=True)
    except binascii.Error:
        raise NoteError("the key part of the verifier key is not base64") from None
    if len(raw) != 33 or raw[:1] != ED25519:
        raise NoteError("the verifier key is not an Ed25519 key (0x01 followed by 32 bytes)")
    if key_id(name, raw[1:]).hex() != hex_id.lower():
        raise NoteError(f"the verifier key's id {hex_id} does not match its name and key")
    return name, raw[1:]


def sign(body: str, name: str, private_key: Any) -> str:
    """The signed note of ``body`` (must end in a newline) signed by ``private_key`` under ``name``."""
    if not body.endswith("\n") or "\n\n" in body or not _NAME.match(name):
        raise NoteError("a note body is non-empty lines each ending in a newline; a key name has no spaces or '+'")
    sig = private_key.sign(body.encode())
    return body + "\n" + Signature(name, key_id(name, raw_public(private_key.public_key())), sig).line()


def parse(text: str) -> tuple[str, list[Signature]]:
    """``(body, signatures)`` of a note; malformed text raises :class:`NoteError`."""
    cut = text.rfind("\n\n")
    if cut < 0 or not text.endswith("\n"):
        raise NoteError("a signed note is a body, a blank line and signature lines, each ending in a newline")
    body, sigs = text[: cut + 1], []
    for line in text[cut + 2 : -1].split("\n"):
        if not line.startswith(DASH):
            raise NoteError(f"signature lines start with an em dash and a space, not {line[:12]!r}")
        name, _, b64 = line[len(DASH) :].rpartition(" ")
        try:
            blob = base64.b64decode(b64, validate=True)
        except binascii.Error:
            raise NoteError(f"the signature of key {name!r} is not base64") from None
        if not _NAME.match(name) or len(blob) < 5:
            raise NoteError(f"malformed signature line for key {name!r}")
        sigs.append(Signature(name, blob[:4], blob[4:]))
    return body, sigs


def verify(body: str, sig: Signature, name: str, public: bytes) -> bool:
    """True if ``sig`` is a signature on ``body`` by the key (``name``, ``public``) with the matching key id."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    if sig.name != name or sig.key_id != key_id(name, public) or len(sig.sig) != 64:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(sig.sig, body.encode())
    except (InvalidSignature, ValueError):
        return False
    return True
