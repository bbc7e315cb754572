"""Open an audit store only if it exists: verification and the read commands never create the log they read.

``audit_log()`` creates a missing store (appends need one), so ``aios audit verify`` on a mistyped path used to
create an empty database and print OK. Here a missing SQLite file, or a database without the ``audit_log``
table, is an error naming the store and what to check, and nothing is created; with ``allow_empty`` it reads as
an empty log instead (``None``: there is no store to open). ``aios audit show``, ``checkpoint``, ``prove`` and
``consistency``, the ``lineage`` commands, ``evidence export``, ``approvals show`` and ``list`` and ``models show``,
``history`` and ``list`` check here too: a read on a mistyped path used to leave an empty database there, which a
later ``aios audit verify`` of that path then found and passed.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from flytekitplugins.aios_audit.api import audit_log, resolve_store_url
from flytekitplugins.aios_audit.stores import AuditStore
from flytekitplugins.aios_core.errors import ConfigError
from flytekitplugins.aios_core.redact import mask_text
from flytekitplugins.aios_core.settings import Settings


class StoreMissing(ConfigError):
    """The store to verify or read does not exist (or holds no audit log)."""


def open_existing(
    settings: Settings, url: str | None = None, *, allow_empty: bool = False, ids_tail_read: int | None = None
) -> AuditStore | None:
    """The store ``url`` (default: the configured one) if it has an audit log; None if not and ``allow_empty``.

    ``ids_tail_read`` is passed to :func:`~.api.audit_log` (a one-shot reader's figure).

    Raises:
        StoreMissing: no such store and not ``allow_empty``; nothing was created.
    """
    url = url or resolve_store_url(settings)
    store = _open_present(settings, url, ids_tail_read)
    if store is None and not allow_empty:
        raise _missing(url, _ALLOW_EMPTY)
    return store


def open_reading(settings: Settings, url: str | None = None, *, ids_tail_read: int | None = None) -> AuditStore:
    """The store a read command reads: :func:`open_existing` for a command that has no ``--allow-empty``.

    Raises:
        StoreMissing: no such store; nothing was created.
    """
    url = url or resolve_store_url(settings)
    store = _open_present(settings, url, ids_tail_read)
    if store is None:
        raise _missing(url, "")
    return store


def _open_present(settings: Settings, url: str, ids_tail_read: int | None) -> AuditStore | None:
    """The store at ``url`` if it holds an audit log, else None (nothing created). The probe is held while the store
    opens: the write-ahead log's index is read once, not twice."""
    with _probe(url) as present:
        return audit_log(settings, url=url, emit=False, ids_tail_read=ids_tail_read) if present else None


def require_log(settings: Settings, url: str | None = None) -> str:
    """The store's URL if it holds an audit log (what a read command checks before it opens the store its own way).

    Raises:
        StoreMissing: no such store; nothing was created.
    """
    url = url or resolve_store_url(settings)
    if not _has_log(url):
        raise _missing(url, "")
    return url


def absent_note(settings: Settings, url: str | None = None) -> str | None:
    """For a listing on a store that does not exist (its answer: nothing), the note it prints on stderr; None when
    the store holds an audit log. Nothing is created either way."""
    url = url or resolve_store_url(settings)
    if _has_log(url):
        return None
    where = f"no audit log at {mask_text(url)} yet (nothing was created)"
    return f"note: {where}: check --store / AIOS_AUDIT_STORE / AIOS_STATE_DIR"


_ALLOW_EMPTY = ", or pass --allow-empty if an empty log is expected"


def _missing(url: str, hint: str) -> StoreMissing:
    msg = f"no audit log at {mask_text(url)} (nothing was created): check --store / AIOS_AUDIT_STORE / AIOS_STATE_DIR"
    return StoreMissing(msg + hint)


def _has_log(url: str) -> bool:
    with _probe(url) as present:
        return present


@contextlib.contextmanager
def _probe(url: str) -> Iterator[bool]:
    """Whether the store ``url`` holds an audit log, the SQLite database's read-only connection kept open while the
    caller's block runs. The first connection to a database in WAL mode rebuilds the log's index by reading all of
    it; a store opened in the block finds it built (a probe closed first made it read it twice: 65 ms more a command
    with 150 MB of log)."""
    if not url.startswith("sqlite:///"):
        yield _has_log_elsewhere(url)
        return
    path = Path(url.removeprefix("sqlite:///"))
    if not path.is_file():
        yield False
        return
    from flytekitplugins.aios_audit.private_files import UnsafeFile, check_sqlite_files

    try:  # another user's file, or a -wal of theirs beside it, is not read: refused as the store's open refuses it
        check_sqlite_files(path)
    except UnsafeFile as e:
        msg = f"refusing the SQLite audit store {path}: {e}"
        raise ConfigError(msg) from None
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        try:
            found = conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='audit_log'").fetchone()
        except sqlite3.Error as e:
            msg = f"cannot read the SQLite audit store at {path}: {e}"
            raise ConfigError(msg) from None
        yield found is not None
    finally:
        conn.close()


def _has_log_elsewhere(url: str) -> bool:
    if url.startswith(("postgresql://", "postgres://", "postgresql+psycopg://")):
        import psycopg

        dsn = url.replace("postgresql+psycopg://", "postgresql://", 1)
        try:
            with psycopg.connect(dsn, connect_timeout=10) as pg:
                row = pg.execute("SELECT to_regclass('audit_log') IS NOT NULL").fetchone()
        except psycopg.Error as e:
            msg = f"cannot reach the PostgreSQL audit store {mask_text(url)}: {mask_text(e)}"
            raise ConfigError(msg) from None
        return bool(row and row[0])
    return True  # another scheme: open_store names the problem
