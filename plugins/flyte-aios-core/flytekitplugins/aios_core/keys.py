"""Secret references and Ed25519 key material, shared by the audit, approval and connector code.

* ``env:VAR``: the value is in the environment variable ``VAR`` (on a cluster, a Flyte secret mounted as an
  environment variable). An unset or empty variable is an error naming it: governance fails closed.
* ``file:PATH`` (or a plain path): a file. Key files are generated on first use, mode 0600 in a folder checked
  and created as :func:`~flytekitplugins.aios_audit.private_files.private_dir` does, written to a temporary file,
  flushed and linked into place, so concurrent processes never read a partial key and the first writer wins. A key
  file is read only when it is this process's user's or root's own regular file that no other user may write
  (:func:`read_key_file`).
"""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path
from typing import NoReturn

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
            a path, and a new random key was written to a file named after the secret. Or the key file is refused
            (:func:`read_key_file`: another user's, a link of another user's, not a regular file, writable by others).
        UnsafeFolder: a key to generate would go in a folder another user owns or may write (``private_dir``).
    """
    if "-----BEGIN" in spec or "\n" in spec or "\r" in spec:
        msg = (
            f"the {what} setting holds a key written inline (not shown); put the PEM in a file and set "
            "file:PATH, or in a variable or mounted secret and set env:VAR"
        )
        raise ConfigError(msg)
    if spec.startswith("env:"):
        return resolve_env_ref(spec, what=what, fix="mount the Flyte secret holding the PEM").encode()
    path = Path(spec.removeprefix("file:")).expanduser()  # as a trusted checkpoint key's (re-review R32b: the signer
    # made ./~/keys/... where the verifier read $HOME/keys/...)
    pem = read_key_file(path, what)
    if pem is not None or not generate:
        return pem
    _create_key_file(path)
    pem = read_key_file(path, what)
    if pem is None:  # a link to a file that is missing: the new key was not linked in its place
        msg = f"{what} file {path} is a symbolic link to a missing file; remove the link, or put the key where it leads"
        raise ConfigError(msg)
    return pem


def read_key_file(path: Path, what: str, *, warn_shared: bool = True) -> bytes | None:
    """The bytes of the key file ``path``; None where it (or the file its link names) does not exist.

    Only this process's user's or root's own regular file is read, one that no other user may write, and through a
    symbolic link only when every link on the way is this user's or root's (a Kubernetes secret volume's file is a
    link of root's into its ``..data`` folder): anything else is refused with a :class:`ConfigError` naming it and
    the fix. Review R9 (F3): another local user, able to write a state folder a step had made 0777 under umask 0,
    put their own ``keys/approvals-ed25519.pem`` there, and the pack signed approval decisions with their key (only
    its mode was looked at, for a warning). A key others may read is still used, with the warning
    (:func:`_warn_if_shared`): that is a leak of the secret, not a key someone else chose.

    Raises:
        ConfigError: the key file, or a link on the way to it, is refused.
    """
    from flytekitplugins.aios_audit.private_files import (
        UnsafeFile,
        checked_folder,
        end_of_links,
        open_without_links,
        state_file_problem,
        trusted_owners,
        walk_stopped_at_link,
    )

    owners = trusted_owners()
    try:  # the links on the way, each of this user's or root's: the folders' (another user's link to a folder of
        # this user's other deployment had its key read, re-review R14), then the file's (the walk write_private makes)
        first = checked_folder(path.parent) / path.name  # the folders too (R17: this user's links in a 0777 folder)
        links: list[str] = []
        end = end_of_links(first, owners, links=links)
        if walk_stopped_at_link(links, end):  # at a link of a process file system: a process's descriptor
            raise ConfigError(
                f"refusing the {what} file {path}: it names a process's open descriptor (/dev/fd/N, /dev/stdin, "
                "/proc/<pid>/fd/N), not a file, and a key is read only from a file whose owner and folders can be "
                "checked; nothing was signed or verified with it. Name the key's file (file:PATH) or pass the PEM in "
                "an environment variable (env:VAR)"
            )
        for link in links[1:]:  # the folders holding the links followed (the first's: walked above): through two
            # of this user's links, the middle one in a 0777 folder, another user renamed them into each other's
            # places and the staging deployment's key was read as prod's (re-review R31a; write_private checks them)
            checked_folder(os.path.dirname(link) or ".")
        cur = str(end if end == first else checked_folder(end.parent) / end.name)  # (first's folder: walked above)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except UnsafeFile as e:
        _refuse_key(path, what, f"{e.path} is {e.reason}")
    try:  # never through a link made since the walk, a folder's either (R15); without blocking on a named pipe
        fd = open_without_links(cur, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except UnsafeFile as e:  # (a link put on the way since, the last name's too)
        _refuse_key(path, what, f"{e.path} is {e.reason}")
    except OSError as e:
        raise type(e)(e.errno, e.strerror, str(path)) from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        shown = "it is" if end == first else f"the file it links to, {cur}, is"
        problem = state_file_problem(st)
        if problem is not None:
            _refuse_key(path, what, f"{shown} {problem}")
        if warn_shared:  # (a public key others may read is no leak)
            _warn_if_shared(path, st.st_mode & 0o777, what)
        return f.read()


def _refuse_key(path: Path, what: str, reason: str) -> NoReturn:
    msg = (
        f"refusing the {what} file {path}: {reason}; only a file of this process's user (uid {os.geteuid()}) or "
        "root that no other user may write is used, since another local user may have chosen this key, and nothing "
        "was signed or verified with it. Remove it (a key of this pack's: chown it to this user and chmod 600 it) "
        "and keep keys in a folder only this user can write"
    )
    raise ConfigError(msg)


def _warn_if_shared(path: Path, mode: int, what: str) -> None:
    """Warn (once per file and mode) when a private key file is readable by others than its owner.

    Not refused: Kubernetes mounts secrets 0644 unless told otherwise (``defaultMode: 0400``), and the pod's only
    user is the task; on a shared host the warning names the fix."""
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

    from flytekitplugins.aios_audit.private_files import private_dir, short_name

    private_dir(path.parent)  # 0700 whatever the umask; one another user owns or may write is refused (review R9)
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    # unique per thread too; a long name's start and digest (re-review R32b: beside a 240-character key file name the
    # temporary one exceeded 255 bytes)
    tmp = path.with_name(f"{short_name(path.name)}.tmp{os.getpid()}-{secrets.token_hex(6)}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as e:  # named as the key asked for, not the temporary file beside it
        raise type(e)(e.errno, e.strerror, str(path)) from None
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
