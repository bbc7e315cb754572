"""The SQLite store's writer-queue files (``<db>.lock``, ``<db>.wait``) cannot be used to stall its writers.

A review reproduced it (R4): a local user who could create files beside the store (a sticky shared folder such as
``/tmp``) created ``audit.db.lock`` first, their own file 0644, and held ``flock -s`` on it; every writer then blocked
in ``flock`` with no timeout and no error, for ever. Now a queue file that is a link, not a regular file, another
user's, or one other users may open (read-only is enough to hold a ``flock``) is refused with a one-line error naming
it, before anything is written. (The waits themselves stay unbounded: polling cost four writing threads of one process
35% of their appends, and only the store's own user can now hold the files.)
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from flytekitplugins.aios_audit import AuditEvent
from flytekitplugins.aios_audit.stores import AuditWriteError, open_store

NOBODY = 65534


@pytest.fixture
def db(aios_env: Path) -> Iterator[Path]:
    """A store holding one record, its connections closed: the next writer opens its queue files again."""
    path = aios_env / "shared" / "audit.db"
    store = open_store(f"sqlite:///{path}")
    store.append(AuditEvent(kind="task", actor="service:pipeline"))
    store.close()
    for name in ("audit.db.lock", "audit.db.wait"):
        (path.parent / name).unlink()
    yield path


def _foreign(p: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to make a file owned by another user")
    p.write_text("")
    p.chmod(0o644)
    os.chown(p, NOBODY, NOBODY)


def _link(p: Path) -> None:
    target = p.parent.parent / "elsewhere"
    target.write_text("")
    target.chmod(0o600)
    p.symlink_to(target)


def _dangling(p: Path) -> None:
    p.symlink_to(p.parent.parent / "made-through-the-link")


def _fifo(p: Path) -> None:
    os.mkfifo(p, 0o600)


def _open_to_all(p: Path) -> None:
    p.write_text("")
    p.chmod(0o666)


def _readable_by_all(p: Path) -> None:
    p.write_text("")
    p.chmod(0o644)


PLANTS: dict[str, tuple[Callable[[Path], None], str]] = {
    "another user's": (_foreign, f"owned by uid {NOBODY}"),
    "a link": (_link, "a symbolic link"),
    "a dangling link": (_dangling, "a symbolic link"),
    "a named pipe": (_fifo, "not a regular file"),
    "writable by others": (_open_to_all, "open to other users (mode 0666: they can hold its lock)"),
    "readable by others": (_readable_by_all, "open to other users (mode 0644: they can hold its lock)"),
}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("suffix", [".lock", ".wait"])
@pytest.mark.parametrize("plant", list(PLANTS))
def test_a_queue_file_another_user_could_hold_is_refused(db: Path, plant: str, suffix: str) -> None:
    make, reason = PLANTS[plant]
    bad = db.with_name(db.name + suffix)
    make(bad)
    with pytest.raises(AuditWriteError) as err:
        open_store(f"sqlite:///{db}").append(AuditEvent(kind="task", actor="service:pipeline"))
    msg = str(err.value)
    assert f"{bad} is {reason}" in msg, msg
    assert f"Remove {bad}" in msg and "folder only its own user can write" in msg, msg
    assert "\n" not in msg and "Traceback" not in msg, msg
    assert not (db.parent.parent / "made-through-the-link").exists()  # nothing created through a link
    bad.unlink()
    store = open_store(f"sqlite:///{db}")
    assert store.size() == 1  # nothing was appended
    store.append(AuditEvent(kind="task", actor="service:pipeline"))  # the file removed, writers go on
    assert store.size() == 2


def test_the_stores_own_queue_files_still_queue(db: Path) -> None:
    """Honest files: the process's own, 0600 (several processes of one user share them), and the database owner's."""
    store = open_store(f"sqlite:///{db}")
    store.append(AuditEvent(kind="task", actor="service:pipeline"))
    conn = store._conn()
    assert conn.lock_fd >= 0 and conn.wait_fd >= 0  # type: ignore[attr-defined]
    for name in ("audit.db.lock", "audit.db.wait"):
        st = (db.parent / name).stat()
        assert st.st_uid == os.geteuid() and st.st_mode & 0o777 == 0o600
    store.close()


@pytest.mark.timeout(60)
def test_root_refuses_a_store_another_user_owns(db: Path) -> None:
    """Re-review R4: another user who created the database (and its queue files) in a shared folder, holding
    ``flock -s`` on its ``.lock``, stalled root's writers for ever; root then took no queue on it, but still wrote its
    records into their file. Since review R9 a store file another user owns, and that this process could write, is
    refused before anything is written (``private_files.touch_private``)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to make files owned by another user")
    os.chown(db, NOBODY, NOBODY)  # the fixture's store, one record: now another user's file
    with pytest.raises(AuditWriteError) as err:
        open_store(f"sqlite:///{db}")
    msg = str(err.value)
    assert f"{db} is owned by uid {NOBODY}, not by this process's user (uid 0) or root" in msg, msg
    assert "nothing was written" in msg and "\n" not in msg
    os.chown(db, 0, 0)
    assert open_store(f"sqlite:///{db}").size() == 1  # nothing was appended
