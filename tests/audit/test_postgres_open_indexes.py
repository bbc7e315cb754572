"""A large PostgreSQL log that lacks its read indexes opens without taking the log's lock; the upgrade builds them
concurrently (real PostgreSQL).

An open that found the time or actor index missing ran every schema statement under the log's advisory lock, so
``CREATE INDEX`` held off every append while it read the whole table (13.4 s and 11.9 s at ten million records). Now a
log above ``OPEN_INDEX_MAX`` records is opened without them, `aios audit show` answers the same meanwhile, and
`aios audit rebuild-projections` builds them with ``CREATE INDEX CONCURRENTLY``.
"""

from __future__ import annotations

import itertools
import json
import threading
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from flytekitplugins.aios_audit import projections_show as ps
from flytekitplugins.aios_audit.stores import open_store
from flytekitplugins.aios_audit.stores import postgres as pg
from flytekitplugins.aios_core.cli import cli
from tests.audit.test_sqlite_open_indexes import _fill

INDEXES = ["audit_log_recorded", "audit_log_actor"]
_PRESENT = "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() AND indexname = ANY(%s)"


def _present(url: str) -> set[str]:
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        return {name for (name,) in conn.execute(_PRESENT, (INDEXES,))}


@pytest.fixture
def old_log(aios_env: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A log as a version before the time and actor indexes left it, larger than the open-time limit (lowered)."""
    _fill(pg_url)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        for name in INDEXES:
            conn.execute(f"DROP INDEX {name}")
    monkeypatch.setattr(pg, "OPEN_INDEX_MAX", 10, raising=False)  # (raising: the old code had none)
    return pg_url


def test_a_large_log_opens_without_waiting_for_the_log_lock(old_log: str) -> None:
    """A writer holds the log's advisory lock: opening the store does not wait for it and builds nothing (the old
    code took the lock to run its schema statements, the two index builds among them)."""
    holder = psycopg.connect(old_log, autocommit=True)
    holder.execute(f"SELECT pg_advisory_lock({pg._LOCK})")
    opened: list[object] = []
    t = threading.Thread(target=lambda: opened.append(open_store(old_log)), daemon=True)
    t.start()
    t.join(10)
    waited = t.is_alive()
    holder.execute(f"SELECT pg_advisory_unlock({pg._LOCK})")
    holder.close()
    t.join(60)
    assert not waited, "opening the store waited for the log's lock"
    assert opened and not _present(old_log)
    assert opened[0].missing_indexes() == INDEXES  # type: ignore[attr-defined]


def test_show_answers_the_same_without_them(old_log: str) -> None:
    store = open_store(old_log)
    everything = list(store.scan())
    times = sorted({r.recorded_at for r in everything})
    for actor, (since, until) in itertools.product(
        [None, "user:alice"], [(None, None), (times[1], None), (times[0], times[2])]
    ):
        f = ps.ShowFilter(actor=actor, since=since, until=until, kind="task")
        want = [r for r in everything if f.matches(r)]
        for limit in (2, 1000):
            assert ps.select_records(store, f, limit) == want[-limit:], (f, limit)
    f = ps.ShowFilter(kind="task", actor="user:bob", execution="run-1", since=times[1])
    assert ps.unindexed(store, f) == ["--since/--until", "--actor"]  # the kind and execution indexes are older
    store.close()


def test_rebuild_projections_builds_them_concurrently(old_log: str) -> None:
    res = CliRunner().invoke(cli, ["audit", "rebuild-projections", "--store", old_log])
    assert res.exit_code == 0, res.output
    for name in INDEXES:
        assert f"log indexes: {name} built in " in res.stderr
    assert _present(old_log) == set(INDEXES)
    store = open_store(old_log)
    assert store.missing_indexes() == []  # type: ignore[attr-defined]
    # an index an interrupted concurrent build left invalid counts as missing, and is built again
    with psycopg.connect(old_log, autocommit=True) as conn:
        conn.execute("UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'audit_log_actor'::regclass")
    assert store.missing_indexes() == ["audit_log_actor"]  # type: ignore[attr-defined]
    again = CliRunner().invoke(cli, ["audit", "rebuild-projections", "--store", old_log, "--json"])
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout.strip().splitlines()[-1])["log_indexes"] == ["audit_log_actor"]
    assert store.missing_indexes() == []  # type: ignore[attr-defined]
    store.close()


def test_a_small_log_gets_them_at_its_next_open(aios_env: Path, pg_url: str) -> None:
    _fill(pg_url)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        for name in INDEXES:
            conn.execute(f"DROP INDEX {name}")
    open_store(pg_url).close()  # 90 records: at most OPEN_INDEX_MAX, built by the open
    assert _present(pg_url) == set(INDEXES)


def test_a_store_that_cannot_say_reads_as_without_them(old_log: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """If the catalog cannot be read for them, the store's own read indexes count as missing (its own names, not the
    other store's), and a time window is still answered exactly."""
    store = open_store(old_log)

    def fails() -> list[str]:
        raise psycopg.errors.InsufficientPrivilege("permission denied for pg_index")

    monkeypatch.setattr(store, "missing_indexes", fails)
    assert ps.missing_indexes(store) == INDEXES
    everything = list(store.scan())
    f = ps.ShowFilter(since=sorted({r.recorded_at for r in everything})[1])
    assert ps.select_records(store, f, 5) == [r for r in everything if f.matches(r)][-5:]
    store.close()
