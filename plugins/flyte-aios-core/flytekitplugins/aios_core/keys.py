"""Secret references and Ed25519 key material, shared by the audit, approval and connector code.

* ``env:VAR``: the value is in the environment variable ``VAR`` (on a cluster, a Flyte secret mounted as an
  environment variable). An unset or empty variable is an error naming it: governance fails closed.
* ``file:PATH`` (or a plain path): a file. Key files are generated on first use, mode 0600, written to a
  temporary file, flushed and linked into place, so concurrent processes never read a partial key and the
  first writer wins.
"""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

from flytekitplugins.aios_core.errors import ConfigError

log = logging.getLogger(__name__)


def resolve_env_ref(value: str, *, what: str, fix: str) -> str:
    """``value`` itself, or the content of ``$VAR`` when ``value`` is ``env:VAR``.

    Raises:
        ConfigError: the variable is unset or empty; the message names it, ``what`` and the ``fix``.
    """
    if not value.startswith("env:"):
        return value
    var = value.removeprefix("env:")
    resolved = os.environ.get(var, "")
    if not resolved:
        msg = f"{what} comes from ${var}, which is not set: {fix}"
        raise ConfigError(msg)
    return resolved


def ed25519_pem(spec: str, *, what: str, generate: bool = True) -> bytes | None:
    """PEM bytes of the private key ``spec`` names; a missing key file is generated when ``generate``.

    Returns None only for a missing file with ``generate=False``.

    Raises:
        ConfigError: ``spec`` is a key written inline (a PEM, or anything holding a line break): it was taken for
            a path, and a new random key was written to a file named after the secret.
    """
    if "-----BEGIN" in spec or "\n" in spec or "\r" in spec:
        msg = (
            f"the {what} setting holds a key written inline (not shown); put the PEM in a file and set "
            "file:PATH, or in a variable or mounted secret and set env:VAR"
        )
        raise ConfigError(msg)
    if spec.startswith("env:"):
        return resolve_env_ref(spec, what=what, fix="mount the Flyte secret holding the PEM").encode()
    path = Path(spec.removeprefix("file:"))
    if path.is_file():
        _warn_if_shared(path, what)
        return path.read_bytes()
    if not generate:
        return None
    _create_key_file(path)
    return path.read_bytes()


def _warn_if_shared(path: Path, what: str) -> None:
    """Warn (once per file and mode) when a private key file is readable by others than its owner.

    Not refused: Kubernetes mounts secrets 0644 unless told otherwise (``defaultMode: 0400``), and the pod's only
    user is the task; on a shared host the warning names the fix."""
    try:
        mode = path.stat().st_mode & 0o777
    except OSError:
        return
    if mode & 0o077 and (str(path), mode) not in _warned:
        _warned.add((str(path), mode))
        log.warning(
            "%s file %s has mode %o: other users of this host can read the private key; chmod 600 it (on a "
            "cluster, mount the secret with defaultMode 0400)",
            what,
            path,
            mode,
        )


_warned: set[tuple[str, int]] = set()


def _create_key_file(path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}-{secrets.token_hex(6)}")  # unique per thread too
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
        f.flush()
        os.fsync(f.fileno())
    try:
        os.link(tmp, path)  # atomic: the first writer wins when processes race
    except FileExistsError:
        pass
    finally:
        tmp.unlink()


SYSTEM_OF_RECORD_URL_ENV = "AIOS_SYSTEM_OF_RECORD_URL"


def system_of_record_url(config_url: str, system_of_record_url_setting: str) -> str:
    """The system-of-record database URL: a task's own ``config_url``, else the setting (``AIOS_SYSTEM_OF_RECORD_URL``).

    An ``env:VAR`` reference is resolved (unset: ``ConfigError``, fail closed) and the URL is remembered so that its
    password is masked wherever a driver error quotes it later. Shared by the connector that posts and by
    ``aios lineage trace``, which reads the posted rows back (the core needs no connector installed for that).
    """
    from flytekitplugins.aios_core.redact import remember

    url = config_url or system_of_record_url_setting
    url = resolve_env_ref(url, what="system-of-record URL", fix=f"mount the secret or set {SYSTEM_OF_RECORD_URL_ENV}")
    remember(url)
    return url
