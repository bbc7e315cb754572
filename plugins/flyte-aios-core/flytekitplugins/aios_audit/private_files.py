"""Audit state files readable by their owner only: mode 0600 files in 0700 folders, whatever the umask.

The audit database (and SQLite's ``-wal``/``-shm``, which SQLite creates with the database's mode), its lock
file, checkpoints, proofs and keys are created through these helpers. Existing folders keep their mode (a
shared parent such as ``/tmp`` is not ours to change); files this pack writes are always set to 0600.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

FILE_MODE = 0o600
DIR_MODE = 0o700


def private_dir(path: str | os.PathLike[str]) -> Path:
    """Create ``path`` and any missing parents with mode 0700 (``mkdir -p`` would give parents 0755)."""
    p = Path(path)
    missing = [d for d in (p, *p.parents) if not d.exists()]
    for d in reversed(missing):
        try:
            d.mkdir(mode=DIR_MODE)
        except FileExistsError:
            continue  # created meanwhile by another process
        os.chmod(d, DIR_MODE)  # mkdir's mode is filtered by the umask; chmod is not
    return p


def touch_private(path: str | os.PathLike[str]) -> Path:
    """Create an empty file with mode 0600 if it does not exist (its folder 0700); an existing one is kept."""
    p = Path(path)
    private_dir(p.parent)
    try:
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return p
    os.fchmod(fd, FILE_MODE)
    os.close(fd)
    return p


def write_private(path: str | os.PathLike[str], data: str | bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temporary file, fsync, rename) with mode 0600.

    ``path`` may name something other than a regular file, and then it is written into, never replaced: a device,
    a pipe or a terminal (``--out /dev/stdout``), or a link (the file it names is written). The rename used to put
    a regular file in the place of whatever the name held: run as root, ``--out /dev/stdout`` replaced the system's
    ``/dev/stdout`` link, and ``--out /dev/full`` the device, with a file holding the proof.
    """
    p = Path(path)
    raw = data.encode() if isinstance(data, str) else data
    try:
        special = not stat.S_ISREG(os.stat(p).st_mode)  # follows links: what the name leads to
    except FileNotFoundError:
        special = False
    except OSError as e:
        raise type(e)(e.errno, e.strerror, str(p)) from None
    if special:
        try:
            with open(p, "wb") as f:
                f.write(raw)
        except OSError as e:  # a full device, a closed pipe: named by the path asked for
            raise type(e)(e.errno, e.strerror, str(p)) from None
        return p
    if p.is_symlink():
        p = Path(os.path.realpath(p))  # the file the link names (a dangling link: the file it would name)
    private_dir(p.parent)
    tmp = p.with_name(f".{p.name}.tmp{os.getpid()}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    except OSError as e:  # the error names the file asked for, not the temporary one beside it
        raise type(e)(e.errno, e.strerror, str(p)) from None
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, p)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return p
