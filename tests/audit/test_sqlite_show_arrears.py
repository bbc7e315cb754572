"""SQLite's ``audit_show``: the kind, time and actor of ``aios audit show``, indexed a batch at a time, not per append.

The log used to carry three indexes of its own for ``audit show``; each append wrote a page of each before its
``fsync`` (3.5 of a single append's 9.8 pages, benchmarks/README.md). Now writers copy those columns into
``audit_show`` once :data:`~flytekitplugins.aios_audit.stores.sqlite_show.BATCH` records are waiting, readers take the
records after its last from the log, and ``aios audit verify`` checks every row of it against the log.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from flytekitplugins.aios_audit import AuditEvent
from flytekitplugins.aios_audit import projections_show as ps
from flytekitplugins.aios_audit.stores import open_store
from flytekitplugins.aios_audit.stores import sqlite_show as show
from flytekitplugins.aios_core.cli import cli

ACTORS = ["service:pipeline", "user:alice", "user:bob"]
KINDS = ["task", "policy_decision", "approval_decision"]


def _event(i: int) -> AuditEvent:
    return AuditEvent(kind=KINDS[i % 3], actor=ACTORS[i % 2 + (i % 7 == 0)], subject=f"s-{i}")


def _run(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(cli, list(args))
    return res.exit_code, res.output


def test_appends_leave_the_show_columns_to_a_batch_and_show_reads_the_tail(aios_env: Path) -> None:
    """The log has no index of its kind, time or actor (each cost every append a page of write-ahead log); a single
    append writes no row of ``audit_show`` until a batch is waiting, and ``audit show`` finds every record either
    way, the same as filtering them all."""
    store = open_store(f"sqlite:///{aios_env}/audit.db")
    indexes = {n for (n,) in store.read_sql("SELECT name FROM sqlite_master WHERE tbl_name = 'audit_log'")}
    assert not {"audit_log_kind", "audit_log_recorded", "audit_log_actor"} & indexes
    for i in range(show.BATCH - 1):
        store.append(_event(i))
    assert store.show_indexed() == 0  # type: ignore[attr-defined]
    everything = list(store.scan())
    for f in (ps.ShowFilter(kind="task"), ps.ShowFilter(actor="user:bob"), ps.ShowFilter()):
        assert ps.select_records(store, f, 1000) == [r for r in everything if f.matches(r)]
    store.append(_event(show.BATCH - 1))  # the batch: copied in this append's transaction
    assert store.show_indexed() == show.BATCH  # type: ignore[attr-defined]
    store.append_many([_event(i) for i in range(show.BATCH, show.BATCH + 40)])
    assert store.show_indexed() == show.BATCH  # type: ignore[attr-defined]  # 40 waiting: the tail
    everything = list(store.scan())
    times = sorted({r.recorded_at for r in everything})
    for f in (
        ps.ShowFilter(kind="task"),
        ps.ShowFilter(actor="user:bob", kind="policy_decision"),
        ps.ShowFilter(since=times[len(times) // 2]),
        ps.ShowFilter(until=times[-1], actor="service:pipeline"),
    ):
        want = [r for r in everything if f.matches(r)]
        for limit in (3, 30, 1000):
            assert ps.select_records(store, f, limit) == want[-limit:], (f, limit)
    rows = store.read_sql("SELECT s.kind = l.kind FROM audit_show s JOIN audit_log l USING (seq)")
    assert len(rows) == show.BATCH and all(ok for (ok,) in rows)
    assert store.show_problems() == []  # type: ignore[attr-defined]
    store.close()


def test_batches_larger_than_a_chunk_never_leave_the_table_behind(aios_env: Path) -> None:
    """A transaction copies every record it appended: a bulk writer's batches of thousands once left the table a
    chunk further behind each (4.46 million records behind a 10M-record log built in batches of 2,000), which the
    next single appends then paid for, 1,024 records each."""
    store = open_store(f"sqlite:///{aios_env}/audit.db")
    for n in range(4):
        store.append_many([_event(i) for i in range(2 * show.CHUNK + show.BATCH + n)])
        assert store.show_indexed() == store.size(), n  # type: ignore[attr-defined]
    assert store.show_problems() == []  # type: ignore[attr-defined]
    store.close()


def test_a_backlog_is_caught_up_a_chunk_an_append_besides_its_own_records(
    aios_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A backlog (written by code that let the table fall behind) costs each append at most a chunk of older records,
    besides its own, until it is gone; ``audit show`` answers the same all along."""
    store = open_store(f"sqlite:///{aios_env}/audit.db")
    with monkeypatch.context() as m:
        m.setattr(show, "after_append", lambda *a: None)  # writers that leave the table behind
        store.append_many([_event(i) for i in range(3 * show.CHUNK)])
    assert store.show_indexed() == 0  # type: ignore[attr-defined]
    everything = list(store.scan())
    bob = [r for r in everything if r.event.actor == "user:bob"]
    store.append(_event(1))
    assert store.show_indexed() == show.CHUNK + 1  # type: ignore[attr-defined]  # a chunk of the backlog, and its own
    store.append_many([_event(i) for i in range(10)])
    assert store.show_indexed() == 2 * show.CHUNK + 11  # type: ignore[attr-defined]
    bob += [r for r in list(store.scan())[len(everything) :] if r.event.actor == "user:bob"]
    assert ps.select_records(store, ps.ShowFilter(actor="user:bob"), 10_000) == bob  # half indexed, half tail
    store.append(_event(2))
    assert store.show_indexed() == store.size()  # type: ignore[attr-defined]
    assert store.show_problems() == []  # type: ignore[attr-defined]
    store.close()


def _tampered(aios_env: Path) -> sqlite3.Connection:
    c = sqlite3.connect(aios_env / "audit.db", isolation_level=None)
    c.execute("DROP TRIGGER audit_show_no_update")
    c.execute("DROP TRIGGER audit_show_no_delete")
    return c


def test_verify_reports_a_show_row_missing_changed_or_beyond_the_log(aios_env: Path, tmp_path: Path) -> None:
    """Someone with write access to the store hides a record from ``audit show --kind`` (deletes its row), relabels
    one (another kind), or adds a row beyond the log (so that the newest records look indexed and are never read
    from the tail): the full walk and the walk from a checkpoint each name the row, and ``rebuild-projections
    --full`` repairs the table."""
    store = open_store(f"sqlite:///{aios_env}/audit.db")
    store.append_many([_event(i) for i in range(show.BATCH)])
    cp = tmp_path / "cp"
    assert _run("audit", "checkpoint", "--out", str(cp))[0] == 0
    store.append_many([_event(i) for i in range(show.BATCH, 2 * show.BATCH)])
    assert store.show_indexed() == 2 * show.BATCH  # type: ignore[attr-defined]
    assert _run("audit", "verify")[0] == 0 and _run("audit", "verify", "--checkpoint", str(cp))[0] == 0
    with (c := _tampered(aios_env)):
        c.execute("DELETE FROM audit_show WHERE seq IN (10, 300)")
        c.execute("UPDATE audit_show SET kind = 'task' WHERE seq = 302")
        c.execute("INSERT INTO audit_show VALUES (900, 'task', '2099-01-01', X'')")
    hidden = ps.ShowFilter(kind=next(r for r in store.scan() if r.seq == 300).event.kind)
    assert 300 not in [r.seq for r in ps.select_records(store, hidden, 1000)]  # what the deletion does to show
    code, out = _run("audit", "verify", "--json")
    doc = json.loads(out.strip().splitlines()[-1])
    assert code == 1 and not doc["ok"], out
    assert [p.split(":")[0] for p in doc["projection_problems"]] == [
        "projection_missing in audit_show at seq 10",
        "projection_missing in audit_show at seq 300",
        "projection_changed in audit_show at seq 302",
        "projection_extra in audit_show at seq 900",
    ], doc["projection_problems"]
    code, out = _run("audit", "verify", "--checkpoint", str(cp))
    found = [line for line in out.splitlines() if line.startswith("FAILED: projection")]
    assert code == 1 and len(found) == 3, out  # from the checkpoint on: seq 10 is before it
    assert "at seq 300" in found[0] and "at seq 302" in found[1] and "at seq 900" in found[2], out
    code, out = _run("audit", "rebuild-projections", "--full")
    assert code == 0, out
    assert _run("audit", "verify")[0] == 0
    assert store.show_indexed() == store.size() and store.show_problems() == []  # type: ignore[attr-defined]
    store.close()
