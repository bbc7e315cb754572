"""Ed25519 signatures on approval decisions, so a verifier needs the public key and nothing else.

Key handling (documented in docs/approvals.md):

* ``AIOS_APPROVALS_KEY`` names the private key: ``file:PATH`` (a PEM; generated with mode 0600 on first
  use when missing) or ``env:VAR`` (a PEM in an environment variable: a Flyte secret on a cluster).
  Default locally: ``file:{state_dir}/keys/approvals-ed25519.pem``, separate from the checkpoint key. Default
  with the ``cluster`` profile: the configured ``signing_key`` (the Flyte secret ``aios/checkpoint-signing-key``),
  because a key generated inside a pod would differ in every pod and no decision would ever verify. The
  domain prefix below keeps the two uses of one key apart.
* ``AIOS_APPROVALS_PUBLIC_KEY`` (optional, ``file:PATH`` or ``env:VAR``) lets a verifier check decisions
  without holding the private key; without it the public key is derived from the private key.

A signature covers the canonical JSON of the decision, which includes the digest of the request.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from flytekitplugins.aios_core.digest import canonical_json, digest_bytes
from flytekitplugins.aios_core.errors import ConfigError
from flytekitplugins.aios_core.keys import ed25519_pem
from flytekitplugins.aios_core.settings import Settings

DOMAIN = b"aios-approval-decision-v1\x00"  # domain separation: this key signs nothing else


def _spec(settings: Settings, value: str) -> str | None:
    return value.replace("{state_dir}", str(settings.state_dir)) if value else None


def _read_pem(spec: str, *, generate: bool) -> bytes | None:
    return ed25519_pem(spec, what="approvals signing key", generate=generate)


def private_key(settings: Settings) -> Ed25519PrivateKey:
    """The decision-signing key, ``settings.approvals_key`` (``AIOS_APPROVALS_KEY``; generated locally on first use)."""
    spec = _spec(settings, settings.approvals_key)
    assert spec is not None
    # only a key under this state dir (the local default) is generated on first use: a named file that is missing
    # is a mount that failed, and a new random key there would sign decisions nobody else can verify
    path = Path(spec.removeprefix("file:")).absolute()
    local = not spec.startswith("env:") and path.is_relative_to(Path(settings.state_dir).absolute())
    pem = _read_pem(spec, generate=local)
    if pem is None:
        msg = (
            f"approvals signing key {spec} does not exist: mount the key there, or on a host that only verifies "
            "decisions set AIOS_APPROVALS_PUBLIC_KEY to the public key"
        )
        raise ConfigError(msg)
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        msg = f"approvals signing key from {spec} is not an Ed25519 private key"
        raise ConfigError(msg)
    return key


def public_key(settings: Settings) -> Ed25519PublicKey:
    """The verification key: ``settings.approvals_public_key`` (``AIOS_APPROVALS_PUBLIC_KEY``) if set, else derived
    from the private key."""
    spec = _spec(settings, settings.approvals_public_key)
    if spec is None:
        return private_key(settings).public_key()
    pem = _read_pem(spec, generate=False)
    if pem is None:
        msg = f"approvals public key {spec} does not exist"
        raise ConfigError(msg)
    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, Ed25519PublicKey):
        msg = f"approvals public key from {spec} is not an Ed25519 public key"
        raise ConfigError(msg)
    return key


def key_id(key: Ed25519PublicKey) -> str:
    """Digest of the raw public key: names the key in every signed decision."""
    return digest_bytes(key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))


def sign(key: Ed25519PrivateKey, payload: dict[str, Any]) -> str:
    """Base64 Ed25519 signature over the canonical JSON of ``payload``."""
    return base64.b64encode(key.sign(DOMAIN + canonical_json(payload))).decode()


def verify(key: Ed25519PublicKey, payload: dict[str, Any], signature: str) -> bool:
    """True when ``signature`` is a valid signature of ``payload`` under ``key``."""
    try:
        key.verify(base64.b64decode(signature, validate=True), DOMAIN + canonical_json(payload))
    except (InvalidSignature, ValueError):
        return False
    return True
