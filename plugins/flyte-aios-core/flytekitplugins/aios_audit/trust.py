"""Which checkpoint keys a verifier trusts: a pinned set from configuration, never the key a checkpoint carries.

A checkpoint embeds the public key it was signed with, but anyone who rewrites a log can sign a fresh
checkpoint with a fresh key, so the embedded key proves nothing. Verification trusts only
``settings.trusted_checkpoint_keys`` (or the ``--public-key`` files given on the command line, which replace
them). Each entry names a PEM: inline, ``file:PATH`` (or a plain path) or ``env:VAR``, or is a C2SP verifier
key ``<name>+<key id>+<base64 key>`` (which also pins the key name of note signatures); a private key file
stands for its public half, so the local profile trusts its own signing key out of the box. An entry may be
a mapping ``{key: ..., not_after: 2027-01-01T00:00:00Z}``: checkpoints signed by that key after
``not_after`` are refused, which is how a rotated-out key keeps vouching for old checkpoints only.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from flytekitplugins.aios_audit import note
from flytekitplugins.aios_audit.checkpoint import Checkpoint, key_id
from flytekitplugins.aios_core.errors import ConfigError

HOW_TO_TRUST = (
    "to trust it, add its public key file to trusted_checkpoint_keys in the profile (config/profiles/<profile>.yaml; "
    "see docs/audit.md, 'Trusted keys'), or pass --public-key FILE"
)


@dataclasses.dataclass(frozen=True)
class TrustedKey:
    """One pinned Ed25519 public key."""

    key_id: str
    pem: str
    source: str
    not_after: dt.datetime | None = None
    name: str = ""
    """Key name a verifier key pins ("" for a PEM: any name whose C2SP key id matches)."""
    raw: bytes = b""


def canonical_public_pem(pem: bytes, what: str) -> str:
    """The public key in ``pem`` (public or private Ed25519 PEM) as canonical SubjectPublicKeyInfo PEM."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

    key: Any
    try:
        key = serialization.load_pem_public_key(pem) if b"PUBLIC KEY" in pem else None
        if key is None:
            key = serialization.load_pem_private_key(pem, password=None).public_key()
    except (ValueError, TypeError) as e:
        msg = f"{what} is not an Ed25519 PEM key: {type(e).__name__}. Give a public key PEM (or the signing key file)"
        raise ConfigError(msg) from None
    if isinstance(key, Ed25519PrivateKey):
        key = key.public_key()
    if not isinstance(key, Ed25519PublicKey):
        msg = f"{what} is not an Ed25519 key: checkpoints are signed with Ed25519"
        raise ConfigError(msg)
    raw: bytes = key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return raw.decode()


_VKEY = re.compile(r"^[^\s+]+\+[0-9a-fA-F]{8}\+[A-Za-z0-9+/]{44}$")


def _raw(pem: str) -> bytes:
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    return note.raw_public(load_pem_public_key(pem.encode()))


def _from_vkey(text: str, not_after: dt.datetime | None) -> TrustedKey:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        name, raw = note.parse_vkey(text)
    except note.NoteError as e:
        msg = f"trusted checkpoint key {text.split('+')[0]}+...: {e}"
        raise ConfigError(msg) from None
    pem = Ed25519PublicKey.from_public_bytes(raw).public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return TrustedKey(note.key_id(name, raw).hex(), pem.decode(), f"verifier key {name}", not_after, name, raw)


def _read(spec: str, *, configured: bool = True) -> tuple[bytes | None, str]:
    """PEM bytes a spec names and a printable source (never the key itself); None for a missing file.

    A ``configured`` file (a profile's ``trusted_checkpoint_keys``) is read only as :func:`.keys.read_key_file` reads
    a key: this user's or root's own file that no other user may write. The local profile trusts the key in the state
    folder, and a key another local user planted there was trusted by ``aios audit verify --checkpoint`` (review R9).
    A file named on the command line (``--public-key``) is the verifier's own choice and is read as it is."""
    if spec.lstrip().startswith("-----BEGIN"):
        return spec.encode(), "an inline PEM"
    if spec.startswith("env:"):
        var = spec.removeprefix("env:")
        value = os.environ.get(var, "")
        if not value:
            msg = f"trusted checkpoint key comes from ${var}, which is not set: set it or fix trusted_checkpoint_keys"
            raise ConfigError(msg)
        return value.encode(), f"${var}"
    path = Path(spec.removeprefix("file:")).expanduser()
    if configured:
        from flytekitplugins.aios_core.keys import read_key_file

        return read_key_file(path, "trusted checkpoint key", warn_shared=False), str(path)
    if not path.is_file():
        return None, str(path)
    try:
        return path.read_bytes(), str(path)
    except OSError as e:
        msg = f"cannot read trusted checkpoint key {path}: {e.strerror}"
        raise ConfigError(msg) from None


class TrustedKeys:
    """The keys a verifier accepts checkpoint signatures from, with where they came from (for messages)."""

    def __init__(self, keys: Iterable[TrustedKey], origin: str, missing: Sequence[str] = ()) -> None:
        self.keys = list(keys)
        self.origin = origin
        self.missing = list(missing)

    @classmethod
    def from_specs(cls, specs: Iterable[Any], origin: str, *, configured: bool = True) -> TrustedKeys:
        """Load entries: strings, or objects/mappings with ``key`` and optional ``not_after``; ``configured``: see
        :func:`_read`."""
        keys: list[TrustedKey] = []
        missing: list[str] = []
        for spec in specs:
            raw = spec.get("key") if isinstance(spec, dict) else getattr(spec, "key", spec)
            not_after = spec.get("not_after") if isinstance(spec, dict) else getattr(spec, "not_after", None)
            if _VKEY.match(str(raw).strip()):
                keys.append(_from_vkey(str(raw), _utc(not_after)))
                continue
            pem, source = _read(str(raw), configured=configured)
            if pem is None:
                missing.append(source)
                continue
            public = canonical_public_pem(pem, f"trusted checkpoint key {source}")
            keys.append(TrustedKey(key_id(public), public, source, _utc(not_after), raw=_raw(public)))
        return cls(keys, origin, missing)

    @classmethod
    def from_settings(cls, settings: Any) -> TrustedKeys:
        """``settings.trusted_checkpoint_keys``."""
        origin = f"trusted_checkpoint_keys of profile {settings.profile}"
        return cls.from_specs(settings.trusted_checkpoint_keys, origin)

    @classmethod
    def from_files(cls, paths: Iterable[str | os.PathLike[str]]) -> TrustedKeys:
        """Exactly the keys in these PEM files (``--public-key``)."""
        paths = [str(p) for p in paths]
        found = cls.from_specs([f"file:{p}" for p in paths], "--public-key", configured=False)
        if found.missing:
            msg = f"--public-key {found.missing[0]} does not exist: pass the PEM file of the key to trust"
            raise ConfigError(msg)
        return found

    def check(self, cp: Checkpoint) -> str:
        """Why ``cp`` is not trusted ("" when its signature verifies under a trusted key in force at its time)."""
        return self.verifying_key(cp)[1]

    def verifying_key(self, cp: Checkpoint) -> tuple[TrustedKey | None, str]:
        """The trusted key whose signature on ``cp`` verifies (and is in force at its time), and "" ; or None and why
        ``cp`` is not trusted. Show this key's id, never the id the checkpoint claims (``cp.key_id``): for an old
        JSON checkpoint that field is not signed, and a note's first signature line need not be the one that
        verified."""
        if cp.is_note:
            return self._check_note(cp)
        claimed = _claimed_id(cp)
        named = [k for k in self.keys if k.key_id == claimed]
        for k in named + [k for k in self.keys if k.key_id != claimed]:
            if cp.verify_signature(k.pem):
                why = self._in_force(k, cp)
                return (None, why) if why else (k, "")
        return None, self._refusal(claimed, bool(named))

    def _check_note(self, cp: Checkpoint) -> tuple[TrustedKey | None, str]:
        """A note checkpoint, as C2SP signed-note and Go's ``note.Open`` read one: a signature line of a key this
        verifier does not know (name, key id) is ignored; the first line of a known key must verify, else the whole
        note is refused (a line that names a trusted key but does not verify is an altered checkpoint, never
        passed over for a later line); later lines of the same key are ignored. At least one must verify."""
        try:
            sigs, body = cp.signatures(), cp.body().decode()
        except ValueError as e:
            return None, f"checkpoint signature lines are malformed ({e}): the checkpoint was altered"
        seen: set[tuple[str, bytes]] = set()
        verified: list[TrustedKey] = []
        for sig in sigs:
            known = [
                k
                for k in self.keys
                if (not k.name or k.name == sig.name) and note.key_id(sig.name, k.raw) == sig.key_id
            ]
            if not known or (sig.name, sig.key_id) in seen:
                continue
            seen.add((sig.name, sig.key_id))
            good = next((k for k in known if note.verify(body, sig, sig.name, k.raw)), None)
            if good is None:
                return None, self._refusal(sig.key_id.hex(), True)
            verified.append(good)
        if not verified:
            return None, self._refusal(sigs[0].key_id.hex(), False)
        for k in verified:
            if not self._in_force(k, cp):
                return k, ""
        return None, self._in_force(verified[0], cp)

    def _in_force(self, k: TrustedKey, cp: Checkpoint) -> str:
        when = _when(cp.timestamp)
        if k.not_after is not None and (when is None or when > k.not_after):
            return (
                f"checkpoint of {cp.timestamp} is signed by key {k.key_id}, trusted only for checkpoints up to "
                f"{k.not_after.isoformat()} (not_after in {self.origin})"
            )
        return ""

    def _refusal(self, claimed: str, named: bool) -> str:
        if named:
            return f"checkpoint signature does not verify under trusted key {claimed}: the checkpoint was altered"
        known = ", ".join(k.key_id for k in self.keys) or "none"
        known += f"; missing key files: {', '.join(self.missing)}" if self.missing else ""
        return f"checkpoint signature is by key {claimed}, not a trusted key ({self.origin}: {known}): {HOW_TO_TRUST}"


def _claimed_id(cp: Checkpoint) -> str:
    """Id of the key the checkpoint says signed it (computed from its embedded key, printable)."""
    try:
        return key_id(canonical_public_pem(cp.public_key.encode(), "embedded key"))
    except ConfigError:
        return re.sub(r"[^0-9a-f]", "?", cp.key_id[:16]) or "(none)"


def _when(timestamp: str) -> dt.datetime | None:
    try:
        when = dt.datetime.fromisoformat(timestamp)
    except (TypeError, ValueError):
        return None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def _utc(value: Any) -> dt.datetime | None:
    if value is None or value == "":
        return None
    try:
        when = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        msg = f"not_after {value!r} in trusted_checkpoint_keys is not an ISO 8601 time (e.g. 2027-01-01T00:00:00Z)"
        raise ConfigError(msg) from None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def trusted_keys(trusted: TrustedKeys | str | None) -> TrustedKeys:
    """``trusted`` itself; a PEM string trusts exactly that key; None is refused (fail closed).

    Callers pass the keys they trust (``TrustedKeys.from_settings(settings)`` for the configured ones): a
    checkpoint is never checked against keys picked up from the process environment behind the caller's back.
    """
    if isinstance(trusted, TrustedKeys):
        return trusted
    if isinstance(trusted, str):
        return TrustedKeys.from_specs([trusted], "the key given")
    msg = "no trusted checkpoint keys were given: pass TrustedKeys.from_settings(settings) or a PEM"
    raise ConfigError(msg)
