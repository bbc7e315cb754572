"""Lineage edges are a projection written in the record's own transaction, read by index, verified against the log."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from flytekitplugins.aios_audit import AuditEvent
from flytekitplugins.aios_audit.edge_store import StoreEdges
from flytekitplugins.aios_audit.edges import EdgeIndex
from flytekitplugins.aios_audit.projections import ProjectionTampered, verify_projections
from flytekitplugins.aios_audit.stores import open_store
from flytekitplugins.aios_core.cli import cli
from tests.lineage.synthetic import write_trail


def _nodes(index: EdgeIndex) -> set[str]:
    return {n for c, p, _r, _s in index.all_edges() for n in (c, p)}


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_the_projection_answers_exactly_what_the_derived_index_answers(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """On a realistic trail (payments approved, rejected, models trained, promoted), every node's parents and
    children read from the store's projection equal those of the index derived from the log record by record."""
    url = f"sqlite:///{tmp_path}/a.db" if backend == "sqlite" else request.getfixturevalue("pg_url")
    store = open_store(url)
    docs = write_trail(store, 5)
    # the edges that name a request by its id: refusals, verifications, a promotion citing an approval
    store.append(AuditEvent(kind="approval_refused", actor="service:x", subject=docs[1]["request_id"]))
    store.append(AuditEvent(kind="approval_verified", actor="service:x", subject=docs[0]["request_id"]))
    store.append(AuditEvent(kind="approval_verified", actor="service:x", subject="apr-never-requested"))
    promote = {"op": "promote", "name": "m", "version": "2"}
    approvals = [{"request_id": docs[2]["request_id"]}, {"request_id": "apr-never-requested"}]
    store.append(AuditEvent(kind="catalog", actor="user:dana", attributes=promote, approvals=approvals))
    derived = EdgeIndex(tmp_path / "edges.db")
    assert derived.catch_up(store) == store.size()
    proj = EdgeIndex.for_store(store, tmp_path)
    assert isinstance(proj, StoreEdges)
    nodes = _nodes(derived)
    assert len(nodes) > 40
    for node in sorted(nodes):
        assert sorted(proj.parents(node)) == sorted(set(derived.parents(node))), node
        assert sorted(proj.children(node)) == sorted(set(derived.children(node))), node
        if len(node) == 64:
            assert (proj.kind(node), proj.seq_of(node)) == (derived.kind(node), derived.seq_of(node))
    rels = {r for _c, _p, r, _s in derived.all_edges()}
    want = {"approved_by", "decides", "authorized_by", "refused_for", "verifies", "promoted_by", "approval_request"}
    assert want | {"registered_by", "trained_by", "output_of", "determined_by", "document"} <= rels
    requests = [n for n in nodes if len(n) == 64 and derived.kind(n) == "approval_request"]
    for req in requests:
        name = next(r.event.subject for r in store.scan() if r.record_id == req)
        assert proj.alias(name) == derived.alias(name) == req
    for key in {k for _s, k in store.read_sql("SELECT seq, execution FROM audit_log WHERE execution <> ''")}:
        assert proj.execution_records(key) == derived.execution_records(key)
        name = key.split("/", 2)[-1]  # a bare name: the keys found by a loose scan of the rows' parent index
        assert proj.execution_records(name) == derived.execution_records(name)
    assert proj.nodes_like("model:%") == [n for n in derived.nodes_like("model:%")]
    assert verify_projections(store) == ([], "")
    derived.close()
    store.close()


def test_rows_commit_and_roll_back_with_their_record(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/a.db"
    store = open_store(url)
    parent = store.append(AuditEvent(kind="task", actor="a", outputs={"out": "sha256:" + "1" * 64}))
    db = sqlite3.connect(tmp_path / "a.db")
    # readable at once, from the same commit: no catch-up, no second file
    assert db.execute("SELECT seq, child, parent, rel FROM audit_proj_lineage").fetchall() == [
        (1, "sha256:" + "1" * 64, "", "output_of")
    ]

    def refuse() -> None:
        raise RuntimeError("precondition failed")

    with pytest.raises(RuntimeError):
        store.append_many([AuditEvent(kind="task", actor="b", parents=[parent.record_id])], precondition=refuse)
    assert store.size() == 1 and db.execute("SELECT count(*) FROM audit_proj_lineage").fetchone() == (1,)
    child = store.append(AuditEvent(kind="task", actor="b", parents=[parent.record_id]))
    edges = EdgeIndex.for_store(store, tmp_path)
    assert edges.children(parent.record_id) == [
        ("sha256:" + "1" * 64, "output_of", 1),
        (child.record_id, "parent", 2),
    ]
    store.close()


def _tamper(path: Path, sql: str) -> None:
    db = sqlite3.connect(path)
    triggers = "".join(f"DROP TRIGGER IF EXISTS audit_proj_lineage_no_{op};" for op in ("update", "delete"))
    db.executescript(triggers + sql)  # an attacker with write access to the file removes the triggers first
    db.close()


def test_an_edited_lineage_row_is_refused_by_trace_and_reported_by_verify(aios_env: Path) -> None:
    from flytekitplugins.aios_core.settings import get_settings

    url = get_settings().audit_store
    store = open_store(url)
    docs = write_trail(store, 2)
    path = Path(url.removeprefix("sqlite:///"))
    paid, refused = docs[0], docs[1]
    # redirect the paid action's authorization to another document's request: a forged explanation
    seq = store.get(paid["action"]).seq  # type: ignore[union-attr]
    rows = store.read_sql("SELECT pos, parent FROM audit_proj_lineage WHERE seq = ? AND child = ''", [seq])
    assert rows
    _tamper(path, f"UPDATE audit_proj_lineage SET parent = '{refused['request']}' WHERE seq = {seq} AND pos = 0;")
    res = CliRunner().invoke(cli, ["lineage", "trace", paid["action"], "--json"])
    assert res.exit_code != 0
    assert "not what the sealed audit record" in res.output and "Traceback" not in res.output
    with pytest.raises(ProjectionTampered):
        StoreEdges(store).parents(paid["action"])
    problems, _note = verify_projections(store)
    assert [(p.code, p.table, p.seq) for p in problems] == [("projection_changed", "audit_proj_lineage", seq)]
    res = CliRunner().invoke(cli, ["audit", "verify", "--json"])
    assert res.exit_code != 0 and "audit_proj_lineage" in res.output
    # a deleted row (an edge hidden) is reported too; a full rebuild restores both from the log
    _tamper(path, f"DELETE FROM audit_proj_lineage WHERE seq = {seq + 1};")
    codes = {p.code for p in verify_projections(store)[0]}
    assert codes == {"projection_changed", "projection_missing"}
    res = CliRunner().invoke(cli, ["audit", "rebuild-projections", "--full", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output.strip().splitlines()[-1])["ok"] is True
    assert verify_projections(store) == ([], "")
    res = CliRunner().invoke(cli, ["lineage", "trace", paid["action"], "--json"])
    assert res.exit_code == 0 and json.loads(res.output)["cases"][0]["outcome"] == "posted"
    store.close()


def test_a_trace_shows_the_record_id_catch_up_as_a_step(aios_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A log written by appends alone leaves its record ids to the first look-up (minutes at ten million): the
    trace shows that as a progress step instead of waiting silently, and JSON output stays one document."""
    from flytekitplugins.aios_audit import lineage_cli
    from flytekitplugins.aios_core import cli_output
    from flytekitplugins.aios_core.settings import get_settings

    store = open_store(get_settings().audit_store)
    docs = write_trail(store, 2)
    store.append_many([AuditEvent(kind="task", actor="service:x", subject=f"d{i}") for i in range(30)])
    assert store.ids_backlog() > 0  # type: ignore[attr-defined]
    monkeypatch.setattr(lineage_cli, "BACKLOG_SHOWN", 10)
    monkeypatch.setattr(cli_output, "QUIET_S", 0.0)  # print the step however short it is
    res = CliRunner().invoke(cli, ["lineage", "trace", docs[0]["action"]])
    assert res.exit_code == 0, res.output
    assert "indexing record ids" in res.output, res.output
    assert store.ids_backlog() == 0  # type: ignore[attr-defined]
    store.append_many([AuditEvent(kind="task", actor="service:x", subject=f"e{i}") for i in range(30)])
    res = CliRunner().invoke(cli, ["lineage", "trace", docs[0]["action"], "--json"])
    assert res.exit_code == 0 and json.loads(res.output)["ref"] and "progress" not in res.output, res.output
    assert store.ids_backlog() == 0  # type: ignore[attr-defined]


def test_a_trace_reads_a_shorter_backlog_from_the_log_tail_with_the_same_answers(aios_env: Path) -> None:
    """More records waiting for the id table than the governance calls read from the log's tail (``IDS_TAIL_READ``),
    fewer than a trace indexes first (``BACKLOG_SHOWN``): the trace reads them from the tail and writes nothing,
    instead of indexing them all first (1.7-3.1 s for ten thousand at ten million records, benchmarks/README.md) or
    a step of them a look-up (a write transaction and its fsync each). Its answers, by full record id and by prefix,
    are those given once the ids are indexed."""
    from flytekitplugins.aios_audit import lineage_cli
    from flytekitplugins.aios_audit.stores import sqlite as sqlite_store
    from flytekitplugins.aios_core.settings import get_settings

    store = open_store(get_settings().audit_store)
    docs = write_trail(store, 2)
    filler = store.append_many([AuditEvent(kind="task", actor="service:x", subject=f"d{i}") for i in range(700)])
    waiting = store.ids_backlog()  # type: ignore[attr-defined]
    assert sqlite_store.IDS_TAIL_READ < waiting < lineage_cli.BACKLOG_SHOWN
    refs = [docs[0]["action"], docs[1]["action"][:12], filler[650].record_id, filler[3].record_id[:10]]

    def traces() -> list[dict[str, object]]:
        out = []
        for ref in refs:
            res = CliRunner().invoke(cli, ["lineage", "trace", ref, "--json"])
            assert res.exit_code == 0, res.output
            out.append(json.loads(res.output))
        return out

    from_tail = traces()
    left = store.ids_backlog()  # type: ignore[attr-defined]
    assert left == waiting  # none indexed: not all of them first, nor a step of them a look-up
    assert [d["resolved"] for d in from_tail[2:]] == [[filler[650].record_id], [filler[3].record_id]]
    assert from_tail[1]["resolved"] == [docs[1]["action"]]
    assert store.catch_up_ids()  # type: ignore[attr-defined]
    assert traces() == from_tail
    store.close()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_closure_reads_each_level_in_a_few_queries_with_the_same_answer(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """An evidence bundle's closure (everything upstream of an execution's records) reads a whole level of the walk
    at once: the parents' rows, ids, kinds and request aliases, and then the records, a few hundred a query. It used
    to ask one node at a time (16,000 one-row queries for an execution of 500 records at ten million). The trace and
    its records are those of the one-node-at-a-time walk, on both backends."""
    from flytekitplugins.aios_audit.lineage import Tracer

    url = f"sqlite:///{tmp_path}/a.db" if backend == "sqlite" else request.getfixturevalue("pg_url")
    store = open_store(url)
    docs = write_trail(store, 12)
    store.append(AuditEvent(kind="approval_verified", actor="service:x", subject=docs[0]["request_id"]))
    promote = {"op": "promote", "name": "m", "version": "2"}
    store.append(AuditEvent(kind="catalog", actor="user:dana", attributes=promote, approvals=[docs[2]]))
    every = [r.record_id for r in store.scan()]
    seeds = every[len(every) // 2 :]
    queries: list[str] = []
    read = store.read_sql

    def counted(sql: str, params: object = ()) -> list[tuple[object, ...]]:
        queries.append(sql)
        return read(sql, params)  # type: ignore[arg-type]

    one_by_one = StoreEdges(store)
    one_by_one.prefetch_parents = lambda nodes: None  # type: ignore[method-assign]
    store.read_sql = counted  # type: ignore[method-assign]
    want = Tracer(store, one_by_one).closure(seeds)
    slow = len(queries)
    queries.clear()
    got = Tracer(store, StoreEdges(store)).closure(seeds)
    del store.read_sql
    assert (got.upstream, got.edges, got.records) == (want.upstream, want.edges, want.records)
    assert len(got.records) > 40 and got.upstream
    assert len(queries) * 4 < slow, (len(queries), slow)
    store.close()
