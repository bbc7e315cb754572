"""Audit state files readable by their owner only: mode 0600 files in 0700 folders, whatever the umask.

The audit database (and SQLite's ``-wal``/``-shm``, which SQLite creates with the database's mode), its lock
files (:func:`open_owned`, which also refuses one another user made), checkpoints, proofs and keys are created
through these helpers. Existing folders keep their mode (a shared parent such as ``/tmp`` is not ours to change);
files this pack writes are always set to 0600.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Collection
from pathlib import Path
from typing import NoReturn

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


class UnsafeFile(Exception):
    """A file :func:`open_owned` refuses: ``path`` is ``reason`` (a link, not a regular file, another user's...)."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path} is {reason}")
        self.path = path
        self.reason = reason


def _unsafe(st: os.stat_result, owners: Collection[int], *, mode: bool) -> str | None:
    """Why a file with status ``st`` may not be shared with the processes of ``owners``; None where it may."""
    if stat.S_ISLNK(st.st_mode):
        return "a symbolic link"
    if not stat.S_ISREG(st.st_mode):
        return "not a regular file"
    if st.st_uid not in owners:
        return f"owned by uid {st.st_uid}, not by this process's user (uid {os.geteuid()}) or root"
    if mode and st.st_mode & 0o066:  # a read-only descriptor is enough to hold a flock
        return f"open to other users (mode {stat.S_IMODE(st.st_mode):04o}: they can hold its lock)"
    return None


def open_owned(path: str | os.PathLike[str], owners: Collection[int]) -> int:
    """A read-write, close-on-exec descriptor of the regular file ``path``, created 0600 if missing: a lock file that
    the processes of its owner share (the SQLite store's writer queue).

    Never opened through a link. A link, anything but a regular file, a file owned by a user not in ``owners``, and
    one its group or others may open are refused (:class:`UnsafeFile`): another local user who created the file in a
    shared folder (``/tmp``), or who can open it (read-only is enough), could hold its lock forever.
    :func:`touch_private` kept such a file, and the store's writers blocked on that user's lock. Where the file
    cannot be opened (a folder this process may not write, a file that is not its own to open) the ``OSError`` is
    raised as it is, once the file found there has passed the same checks but the mode.
    """
    p = Path(path)
    flags = os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(p, flags | os.O_CREAT | os.O_EXCL, FILE_MODE)  # O_EXCL never follows a link either
    except FileExistsError:
        pass
    except OSError as e:
        _raise_unsafe(p, e, owners)
    else:
        os.fchmod(fd, FILE_MODE)  # the umask filtered the mode
        return fd
    try:
        fd = os.open(p, flags)
    except OSError as e:  # ELOOP for a link
        _raise_unsafe(p, e, owners)
    try:
        reason = _unsafe(os.fstat(fd), owners, mode=True)
    except BaseException:
        os.close(fd)
        raise
    if reason is not None:
        os.close(fd)
        raise UnsafeFile(p, reason)
    return fd


def _raise_unsafe(p: Path, e: OSError, owners: Collection[int]) -> NoReturn:
    """Raise :class:`UnsafeFile` where what ``p`` names is refused, else the error ``e`` that opening it raised."""
    try:
        reason = _unsafe(os.lstat(p), owners, mode=False)
    except OSError:
        reason = None
    if reason is not None:
        raise UnsafeFile(p, reason) from None
    raise e
