"""`aios audit show` filters, orders and limits in SQL: the same records as filtering a full scan, on both backends."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from flytekitplugins.aios_audit import AuditEvent
from flytekitplugins.aios_audit import projections_show as ps
from flytekitplugins.aios_audit.stores import AuditStore, open_store
from flytekitplugins.aios_core.cli import cli
from flytekitplugins.aios_core.context import ExecutionRef

KINDS = ["task", "policy_decision", "approval_request", "catalog"]
ACTORS = ["service:pipeline", "user:alice", 'user:"quoted"\\x', "user:élodie", "user:a_b%"]
RUNS = [ExecutionRef(project="p", domain="d", name=f"run-{i}", task_name=f"tasks.t{i % 2}.step") for i in range(3)]


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, aios_env: Path) -> Iterator[AuditStore]:
    url = f"sqlite:///{aios_env}/show.db" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    s = open_store(url)
    for batch in range(4):  # four batches: four distinct recorded_at values to cut time ranges at
        events = [
            AuditEvent(
                kind=KINDS[(i + batch) % len(KINDS)],
                actor=ACTORS[(i * 3 + batch) % len(ACTORS)],
                execution=RUNS[i % 3] if i % 4 else None,
                subject=f"b{batch}-{i}",
            )
            for i in range(40)
        ]
        s.append_many(events)
        time.sleep(0.02)
    yield s
    s.close()


def test_sql_filters_equal_a_filtered_scan(store: AuditStore) -> None:
    everything = list(store.scan())
    times = sorted({r.recorded_at for r in everything})
    assert len(times) == 4
    cases = itertools.product(
        [None, "task", "catalog"],
        [None, *ACTORS[1:4]],
        [None, "p/d/run-1", "run-2", "run-"],
        [None, "t1", "tasks.t0.step"],
        [(None, None), (times[1], None), (None, times[2]), (times[1], times[3])],
    )
    checked = 0
    for kind, actor, run, task, (since, until) in cases:
        f = ps.ShowFilter(kind=kind, actor=actor, execution=run, task=task, since=since, until=until)
        want = [r for r in everything if f.matches(r)]
        for limit in (3, 50, 1000):
            got = ps.select_records(store, f, limit)
            assert got == want[-limit:], (f, limit)
        checked += bool(want)
    assert checked > 100  # most combinations select something
    assert ps.select_records(store, ps.ShowFilter(), 0) == []


def test_where_sql_is_in_the_query_not_python(store: AuditStore) -> None:
    conds, params = ps.where_sql(ps.ShowFilter(kind="task", actor="user:alice", execution="run-1"), store.dialect)
    assert len(conds) == 3 and "kind = ?" in conds
    rows = store.read_sql(
        "SELECT count(*) FROM audit_log WHERE " + " AND ".join(conds), params
    )  # the SQL alone selects exactly the matching records
    want = [
        r
        for r in store.scan()
        if r.event.kind == "task"
        and r.event.actor == "user:alice"
        and r.event.execution
        and r.event.execution.name == "run-1"
    ]
    assert rows[0][0] == len(want) > 0


def test_cli_show_json(store: AuditStore) -> None:
    res = CliRunner().invoke(
        cli,
        ["audit", "show", "--kind", "task", "--actor", "user:alice", "--limit", "2", "--json"],
        env={"AIOS_AUDIT_STORE": store.url},
    )
    assert res.exit_code == 0, res.output
    lines = [json.loads(x) for x in res.output.strip().splitlines()]
    want = [r for r in store.scan() if r.event.kind == "task" and r.event.actor == "user:alice"][-2:]
    assert [x["seq"] for x in lines] == [r.seq for r in want]
