"""A process that used the SQLite store leaves no write-ahead log behind when it exits."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from flytekitplugins.aios_audit import AuditEvent
from flytekitplugins.aios_audit.stores import open_store


def _wal(db: Path) -> int:
    wal = db.with_name(db.name + "-wal")
    return wal.stat().st_size if wal.exists() else 0


def test_an_aios_command_leaves_no_write_ahead_log_for_the_next_process(tmp_path: Path) -> None:
    """An ``aios`` command exited with its connection open (the interpreter does not promise to close it): the log
    stayed, and every later process, opening first, read all of it to rebuild its index (65 ms a command after a
    150 MB catch-up on a million-record trail, until a writer came). Closed at exit, the last connection empties it."""
    db = tmp_path / "audit.db"
    store = open_store(f"sqlite:///{db}")
    store.append_many(
        [AuditEvent(kind="task", actor="service:test", inputs={"x": f"sha256:{i:064x}"}) for i in range(50)]
    )
    store.close()
    assert _wal(db) == 0  # this process closed its connection: emptied
    env = {**os.environ, "AIOS_AUDIT_STORE": f"sqlite:///{db}", "AIOS_PRINCIPAL": "user:bob"}
    aios = Path(sys.executable).parent / "aios"
    # a command that writes (a refused decision is recorded), then one that only reads
    for args in (["approvals", "approve", "apr-nope", "--as", "user:bob"], ["audit", "show", "--limit", "1"]):
        subprocess.run([str(aios), *args], env=env, cwd=tmp_path, capture_output=True, timeout=120, check=False)
        assert _wal(db) == 0, f"aios {' '.join(args)} left {_wal(db)} bytes of write-ahead log"
    assert open_store(f"sqlite:///{db}").size() == 51


def test_a_forked_child_leaves_its_parents_connection_open(tmp_path: Path) -> None:
    """The exit handler closes only the connections its own process opened: a forked child's exit leaves the copy of
    its parent's connection alone (the store never lets a connection cross fork(): see ``keep_inherited``)."""
    store = open_store(f"sqlite:///{tmp_path / 'audit.db'}")
    store.append(AuditEvent(kind="task", actor="service:test"))
    inherited = store._local.conn  # the child's copy of the parent's connection object
    pid = os.fork()
    if pid == 0:  # the child exits through the interpreter's exit handlers
        code = 0
        try:
            from flytekitplugins.aios_audit.stores.sqlite import _close_at_exit

            _close_at_exit()
            _ = inherited.total_changes  # a closed connection raises ProgrammingError
        except BaseException:
            code = 1
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    store.append(AuditEvent(kind="task", actor="service:test"))  # the parent's connection still works
    assert store.size() == 2


def test_a_write_after_the_exit_handler_gets_a_connection_of_its_own(tmp_path: Path) -> None:
    """A daemon thread may still append after ``atexit`` closed the connections: it must get a new one (the record
    is written), not fail on a closed one."""
    from flytekitplugins.aios_audit.stores.sqlite import _close_at_exit

    store = open_store(f"sqlite:///{tmp_path / 'audit.db'}")
    store.append(AuditEvent(kind="task", actor="service:test"))
    _close_at_exit()
    store.append(AuditEvent(kind="task", actor="service:test"))
    assert store.size() == 2
