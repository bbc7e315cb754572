"""A large SQLite log that lacks its read indexes opens at once; `aios audit rebuild-projections` builds them.

Opening a log written before an index (an upgrade) built it under the write lock: at ten million records the first
open, perhaps a governance call's, took minutes while every other writer waited. Now a log above
``OPEN_INDEX_MAX`` records is opened without them, `aios audit show` answers the same by reading the log (and says
so), and the upgrade command builds them with a line each.
"""

from __future__ import annotations

import itertools
import json
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from flytekitplugins.aios_audit import AuditEvent
from flytekitplugins.aios_audit import projections_show as ps
from flytekitplugins.aios_audit.stores import open_store
from flytekitplugins.aios_audit.stores import sqlite as sq
from flytekitplugins.aios_core.cli import cli
from flytekitplugins.aios_core.context import ExecutionRef

ACTORS = ["service:pipeline", "user:alice", "user:bob"]
RUNS = [ExecutionRef(project="p", domain="d", name=f"run-{i}", task_name=f"tasks.t{i % 2}.step") for i in range(3)]
INDEXES = ["audit_log_execution_named", "audit_claims_seq", "audit_show"]
"""What a log written before the read indexes lacks: the log's own and ``audit_show`` (the kind, time and actor of
``aios audit show``, with its indexes)."""
OLD_SHOW = ["audit_log_kind", "audit_log_recorded", "audit_log_actor"]  # the log's own, before audit_show


def _to_old(path: Path, old_show: bool = False) -> None:
    """Take the read indexes away, as a version before them left the log (``old_show``: as the version before
    ``audit_show`` left it, the log's own kind, time and actor indexes in its place)."""
    with sqlite3.connect(path) as db:
        for name in INDEXES[:2]:
            db.execute(f"DROP INDEX {name}")
        db.execute("DROP TABLE audit_show")
        for name in OLD_SHOW if old_show else ():
            column = {"audit_log_kind": "kind", "audit_log_recorded": "recorded_at"}.get(name, ps.actor_sql("sqlite"))
            db.execute(f"CREATE INDEX {name} ON audit_log({column})")


def _fill(url: str) -> None:
    s = open_store(url)
    for batch in range(3):  # three batches: three recorded_at values to cut windows at
        s.append_many(
            [
                AuditEvent(
                    kind=["task", "policy_decision", "approval_decision"][(i + batch) % 3],
                    actor=ACTORS[(i + batch) % 3],
                    execution=RUNS[i % 3] if i % 4 else None,
                    subject=f"b{batch}-{i}",
                    # an approval record's execution in a string field: the named-execution index's records
                    attributes={"execution": RUNS[(i + 1) % 3].execution_key} if i % 5 == 1 else {},
                )
                for i in range(30)
            ]
        )
        time.sleep(0.02)
    s.close()


def _tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as db:
        return {n for (n,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def _indexes(path: Path) -> set[str]:
    with sqlite3.connect(path) as db:
        return {n for (n,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}


@pytest.fixture
def old_log(aios_env: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, Path]:
    """A log as a version before the read indexes left it, larger than the open-time limit (lowered to 10)."""
    path = aios_env / "old.db"
    url = f"sqlite:///{path}"
    _fill(url)
    _to_old(path)
    monkeypatch.setattr(sq, "OPEN_INDEX_MAX", 10, raising=False)  # (raising: the old code had none)
    return url, path


def test_a_large_log_opens_without_waiting_for_the_write_lock(old_log: tuple[str, Path]) -> None:
    """Another writer holds the log's write lock: opening the store does not wait for it (the old code began a write
    transaction to build the indexes, and waited up to its 60 s busy timeout), and builds nothing."""
    url, path = old_log
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    opened: list[object] = []
    t = threading.Thread(target=lambda: opened.append(open_store(url)), daemon=True)
    t.start()
    t.join(10)
    waited = t.is_alive()
    holder.execute("ROLLBACK")
    holder.close()
    t.join(70)
    assert not waited, "opening the store waited for the write lock"
    assert opened and not set(INDEXES) & _indexes(path) and "audit_show" not in _tables(path)
    assert opened[0].missing_indexes() == INDEXES  # type: ignore[attr-defined]


def test_show_answers_the_same_without_the_indexes(old_log: tuple[str, Path]) -> None:
    """Every filter over a log without its read indexes selects what a filtered scan selects (the time window newest
    by seq, the same order, instead of sorting the window by time), and `unindexed` names the filters that read the
    log for it."""
    url, _ = old_log
    store = open_store(url)
    assert store.missing_indexes() == INDEXES  # type: ignore[attr-defined]
    everything = list(store.scan())
    times = sorted({r.recorded_at for r in everything})
    assert len(times) == 3
    cases = itertools.product(
        [None, "task", "approval_decision"],
        [None, "user:alice"],
        [None, "p/d/run-1", "run-2"],
        [(None, None), (times[1], None), (times[0], times[2])],
    )
    for kind, actor, run, (since, until) in cases:
        f = ps.ShowFilter(kind=kind, actor=actor, execution=run, since=since, until=until)
        want = [r for r in everything if f.matches(r)]
        for limit in (2, 1000):
            assert ps.select_records(store, f, limit) == want[-limit:], (f, limit)
    f = ps.ShowFilter(kind="task", actor="user:bob", execution="run-1", since=times[1])
    assert ps.unindexed(store, f) == ["--kind", "--since/--until", "--actor", "--execution"]
    assert ps.unindexed(store, ps.ShowFilter(task="t1")) == []  # no index serves a task substring anyway
    plan = " ".join(str(r[3]) for r in store.read_sql("EXPLAIN QUERY PLAN SELECT seq FROM audit_log ORDER BY seq DESC"))
    assert "audit_log_recorded" not in plan


def test_show_says_which_filter_reads_the_log(old_log: tuple[str, Path]) -> None:
    url, _ = old_log
    res = CliRunner().invoke(
        cli, ["audit", "show", "--actor", "user:alice", "--limit", "3", "--json"], env={"AIOS_AUDIT_STORE": url}
    )
    assert res.exit_code == 0, res.output
    assert "index for --actor is not built yet" in res.stderr and "aios audit rebuild-projections" in res.stderr
    assert [json.loads(x)["event"]["actor"] for x in res.stdout.strip().splitlines()] == ["user:alice"] * 3


def test_rebuild_projections_builds_them_and_show_reads_them(old_log: tuple[str, Path]) -> None:
    url, path = old_log
    res = CliRunner().invoke(cli, ["audit", "rebuild-projections", "--store", url])
    assert res.exit_code == 0, res.output
    for name in INDEXES:
        assert f"log indexes: {name} built in " in res.stderr
    assert set(INDEXES[:2]) <= _indexes(path) and "audit_show" in _tables(path)
    store = open_store(url)
    assert store.missing_indexes() == []  # type: ignore[attr-defined]
    assert store.show_indexed() == store.size()  # type: ignore[attr-defined]
    times = sorted({r.recorded_at for r in store.scan()})
    f = ps.ShowFilter(since=times[0], until=times[2])
    conds, params = ps.where_sql(f, "sqlite", kind_index=False)
    q = "EXPLAIN QUERY PLAN SELECT seq FROM audit_show WHERE " + " AND ".join(conds) + " ORDER BY recorded_at DESC"
    assert "audit_show_recorded" in " ".join(str(r[3]) for r in store.read_sql(q, params))
    again = CliRunner().invoke(cli, ["audit", "rebuild-projections", "--store", url, "--json"])
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout.strip().splitlines()[-1])["log_indexes"] == []  # nothing left to build
    res = CliRunner().invoke(
        cli, ["audit", "show", "--actor", "user:alice", "--limit", "3"], env={"AIOS_AUDIT_STORE": url}
    )
    assert res.exit_code == 0 and "not built yet" not in res.stderr


def test_a_small_log_gets_them_at_its_next_open(aios_env: Path) -> None:
    path = aios_env / "small.db"
    _fill(f"sqlite:///{path}")
    _to_old(path)
    open_store(f"sqlite:///{path}").close()  # 90 records: at most OPEN_INDEX_MAX, built on the spot
    assert set(INDEXES[:2]) <= _indexes(path) and "audit_show" in _tables(path)
    assert [*sq.LOG_INDEXES, "audit_show"] == INDEXES


def test_a_log_with_the_old_show_indexes_moves_to_audit_show(aios_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A log the version before ``audit_show`` wrote (the kind, time and actor indexes on the log itself): a small one
    is moved at its next open, a large one by `aios audit rebuild-projections`; `aios audit show` answers the same
    before, during and after, and the old indexes (a page of write-ahead log each per append) are gone."""
    url = f"sqlite:///{aios_env / 'small.db'}"
    _fill(url)
    everything = list(open_store(url).scan())
    times = sorted({r.recorded_at for r in everything})
    filters = [
        ps.ShowFilter(kind="task"),
        ps.ShowFilter(actor="user:alice", since=times[1]),
        ps.ShowFilter(since=times[0], until=times[2], execution="run-1"),
    ]
    want = [[r for r in everything if f.matches(r)][-7:] for f in filters]
    for large in (False, True):
        path = aios_env / f"old-{large}.db"
        with sqlite3.connect(path) as db, sqlite3.connect(url.removeprefix("sqlite:///")) as src:
            src.backup(db)
        _to_old(path, old_show=True)
        if large:
            monkeypatch.setattr(sq, "OPEN_INDEX_MAX", 10)
        store = open_store(f"sqlite:///{path}")
        assert store.show_indexed() is (None if large else store.size())  # type: ignore[attr-defined]
        assert [ps.select_records(store, f, 7) for f in filters] == want
        if large:  # opened as it was: the old indexes serve show meanwhile, and appends skip audit_show
            assert set(OLD_SHOW) <= _indexes(path) and "audit_show" not in _tables(path)
            assert store.missing_indexes() == INDEXES  # type: ignore[attr-defined]
            res = CliRunner().invoke(cli, ["audit", "rebuild-projections", "--store", f"sqlite:///{path}"])
            assert res.exit_code == 0, res.output
            assert [ps.select_records(store, f, 7) for f in filters] == want
        assert not set(OLD_SHOW) & _indexes(path) and store.show_indexed() == store.size()  # type: ignore[attr-defined]
        assert store.show_problems() == []  # type: ignore[attr-defined]
        monkeypatch.undo()
