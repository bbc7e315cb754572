"""``aios lineage trace`` answers the reviewer's four questions from the typed edges sealed in the trail."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from flytekitplugins.aios_audit import AuditEvent, audit_log
from flytekitplugins.aios_audit.edge_store import StoreEdges
from flytekitplugins.aios_audit.edges import EdgeIndex
from flytekitplugins.aios_core.cli import cli
from flytekitplugins.aios_core.settings import get_settings
from tests.lineage.synthetic import MODEL, TRAIN, write_trail


def _trace(ref: str, *extra: str) -> dict[str, Any]:
    res = CliRunner().invoke(cli, ["lineage", "trace", ref, "--json", *extra])
    assert res.exit_code == 0, res.output
    doc: dict[str, Any] = json.loads(res.output)
    return doc


def _text(ref: str) -> str:
    res = CliRunner().invoke(cli, ["lineage", "trace", ref])
    assert res.exit_code == 0, res.output
    return res.output


def test_why_was_this_paid_from_request_and_from_action(aios_env: Path) -> None:
    docs = write_trail(audit_log(get_settings(), emit=False), 6)
    paid = docs[0]
    for ref in (paid["request_id"], paid["action"]):
        t = _trace(ref)
        [case] = t["cases"]
        assert case["document"] == paid["document"] and case["outcome"] == "posted"
        assert case["source"]["name"] == "invoice-000000.pdf"
        assert case["classification"]["models"] == [MODEL.model_dump()]
        [pd] = case["policy_decisions"]
        assert pd["policy_ids"] == ["payments-need-signoff", "base"] and pd["reasons"]
        assert [(a["approver"], a["roles"]) for a in case["approvals"]] == [
            ("user:alice", ["finance-approver"]),
            ("user:carol", ["finance-manager"]),
        ]
        [act] = [a for a in case["actions"] if a["kind"] == "action"]
        assert act["record_id"] == paid["action"] and act["system_of_record"] == "document_actions"
        [model] = t["models"]  # and on from the model version to its training data, drift trigger, promotion
        assert model["training_data"] == [TRAIN] and model["drift_triggers"] and model["evaluations"]
        assert model["promotions"][0]["approvers"][0]["approver"] == "user:dana"
    text = _text(paid["action"])
    for needle in (
        "invoice-000000.pdf",
        "doc-type-fast@3",
        MODEL.digest,
        "payments-need-signoff",
        "user:alice [finance",
    ):
        assert needle in text
    assert "user:carol [finance-manager]" in text and "pay_invoice 12,000.00 EUR" in text


def test_rejected_payment_says_who_and_that_nothing_was_posted(aios_env: Path) -> None:
    docs = write_trail(audit_log(get_settings(), emit=False), 6)
    rejected = docs[2]
    t = _trace(rejected["request_id"])
    [case] = t["cases"]
    assert case["outcome"] == "rejected by user:alice: nothing was posted"
    assert t["actions"] == [] and not case["actions"]
    assert "rejected by user:alice: nothing was posted" in _text(rejected["document"])


def test_model_approver_and_policy_questions(aios_env: Path) -> None:
    docs = write_trail(audit_log(get_settings(), emit=False), 6)
    by_model = _trace(f"{MODEL.name}@{MODEL.version}")
    assert {c["document"] for c in by_model["cases"]} == {d["document"] for d in docs}
    outcomes = sorted(c["outcome"].split(":")[0] for c in by_model["cases"])
    assert outcomes == ["posted"] * 4 + ["rejected by user"] * 2
    carol = _trace("principal:user:carol")  # carol signs off only what was approved by two
    assert {c["document"] for c in carol["cases"]} == {d["document"] for d in docs if "action" in d}
    allowed = _trace("policy:payments-need-signoff")
    assert sorted(allowed["actions"]) == sorted(
        r["seq"] for c in allowed["cases"] for r in c["actions"] if r["kind"] == "action"
    )
    assert len(allowed["actions"]) == 4


def test_index_catches_up_and_is_rebuilt_for_another_log(aios_env: Path, tmp_path: Path) -> None:
    from flytekitplugins.aios_audit.stores import open_store

    store = audit_log(get_settings(), emit=False)
    docs = write_trail(store, 3)
    index = EdgeIndex(tmp_path / "edges.db")
    assert index.catch_up(store) == store.size()
    before = store.size()
    more = write_trail(store, 4)[3]
    assert index.catch_up(store) == store.size() - before > 0
    assert index.catch_up(store) == 0  # nothing new
    assert index.alias(more["request_id"]) == more["request"]
    # another log behind the same index (a store restored from elsewhere): the derived index is rebuilt, not trusted
    other = open_store(f"sqlite:///{tmp_path}/other.db")
    other.append(AuditEvent(kind="task", actor="t", status="succeeded"))
    other.append(AuditEvent(kind="task", actor="t", status="succeeded"))
    assert index.catch_up(other) == 2
    assert index.alias(docs[0]["request_id"]) == "" and index.seq_of(docs[0]["policy"]) == 0
    index.close()


def test_index_written_in_chunks_equals_index_written_at_once(
    aios_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """catch_up writes its rows in chunks; the edge rules' look-ups (a parent's kind, a request's alias, the
    decisions under a request) must see rows not yet written, so every chunk size gives the same index."""
    from flytekitplugins.aios_audit import edges

    store = audit_log(get_settings(), emit=False)
    write_trail(store, 9)
    whole = EdgeIndex(tmp_path / "whole.db")
    assert whole.catch_up(store) == store.size()
    got = {}
    for chunk in (1, 2, 3, 7):
        monkeypatch.setattr(edges, "CHUNK", chunk)
        index = EdgeIndex(tmp_path / f"chunk-{chunk}.db")
        assert index.catch_up(store) == store.size()
        got[chunk] = index.all_edges()
        index.close()
    expected = whole.all_edges()
    rels = {rel for _c, _p, rel, _s in expected}
    assert {"approved_by", "authorized_by", "decides", "policy_decision"} <= rels  # the look-up rules ran
    assert all(edges_ == expected for edges_ in got.values())
    whole.close()
    # an interrupted catch-up keeps the chunks it committed and resumes after them
    monkeypatch.setattr(edges, "CHUNK", 3)
    calls = {"n": 0}
    real_add = EdgeIndex.add

    def failing_add(self: EdgeIndex, rec: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 8:
            raise RuntimeError("killed mid-chunk")
        real_add(self, rec)

    monkeypatch.setattr(EdgeIndex, "add", failing_add)
    index = EdgeIndex(tmp_path / "interrupted.db")
    with pytest.raises(RuntimeError):
        index.catch_up(store)
    assert index.seq_of(index.id_of_seq(6)) == 6 and index.id_of_seq(7) == ""  # two chunks of 3 committed
    monkeypatch.setattr(EdgeIndex, "add", real_add)
    assert index.catch_up(store) == store.size() - 6
    assert index.all_edges() == expected
    index.close()


def test_trace_in_a_fresh_process_imports_no_flytekit_and_still_reads_the_system_of_record(aios_env: Path) -> None:
    """`aios lineage trace` is a reviewer's command: it must not pay for flytekit (it did, through the connector
    module, to resolve one URL: 2.7 s and 181 MB a call) and must still look the posted rows up."""
    import subprocess
    import sys

    paid = write_trail(audit_log(get_settings(), emit=False), 3)[0]
    code = (
        "import json, sys\n"
        "from flytekitplugins.aios_core.cli import cli\n"
        "cli.main(args=['lineage', 'trace', sys.argv[1], '--json'], standalone_mode=False)\n"
        "print('FLYTEKIT_LOADED', 'flytekit' in sys.modules)\n"
    )
    res = subprocess.run([sys.executable, "-c", code, paid["action"]], capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stderr[-2000:]
    body, marker = res.stdout.rsplit("FLYTEKIT_LOADED", 1)
    assert marker.strip() == "False"
    [case] = json.loads(body)["cases"]
    [act] = [a for a in case["actions"] if a["kind"] == "action"]
    assert act["row"] == {"note": "no such row in the system of record"}  # looked up at the configured database


def test_execution_records_by_key_and_by_name_take_the_name_literally(aios_env: Path, tmp_path: Path) -> None:
    from flytekitplugins.aios_core.context import ExecutionRef

    store = audit_log(get_settings(), emit=False)
    for name in ("run_1", "run-1", "run_1", "xrun_1"):
        ex = ExecutionRef(project="p", domain="d", name=name, task_name="t")
        store.append(AuditEvent(kind="task", actor="service:t", status="succeeded", execution=ex))
    index = EdgeIndex(tmp_path / "edges.db")
    index.catch_up(store)
    assert [s for s, _ in index.execution_records("p/d/run_1")] == [1, 3]  # the whole key: one index look-up
    assert [s for s, _ in index.execution_records("run_1")] == [1, 3]  # "_" is not a wildcard, "xrun_1" is not it
    assert [s for s, _ in index.execution_records("run-1")] == [2]
    index.close()
    rows = EdgeIndex.for_store(store, tmp_path)  # the store's lineage rows: a bare name's keys by a loose index scan
    assert isinstance(rows, StoreEdges)
    assert [s for s, _ in rows.execution_records("p/d/run_1")] == [1, 3]
    assert [s for s, _ in rows.execution_records("run_1")] == [1, 3]
    assert [s for s, _ in rows.execution_records("run-1")] == [2]
    assert rows.execution_records("run") == []


def test_unknown_reference_is_a_clear_error(aios_env: Path) -> None:
    write_trail(audit_log(get_settings(), emit=False), 1)
    res = CliRunner().invoke(cli, ["lineage", "trace", "apr-doesnotexist"])
    assert res.exit_code != 0
    assert "names nothing in the audit trail" in res.output and "Traceback" not in res.output


def test_trace_and_evidence_on_postgresql(pg_url: str, tmp_path: Path) -> None:
    from flytekitplugins.aios_audit.stores import open_store

    docs = write_trail(open_store(pg_url), 3)
    res = CliRunner().invoke(cli, ["lineage", "trace", docs[0]["action"], "--store", pg_url, "--json"])
    assert res.exit_code == 0, res.output
    [case] = json.loads(res.output)["cases"]
    assert case["outcome"] == "posted" and len(case["approvals"]) == 2
    bundle = tmp_path / "pg.zip"
    res = CliRunner().invoke(
        cli, ["--store", pg_url, "evidence", "export", "--document", docs[1]["document"], "-o", str(bundle)]
    )
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(cli, ["evidence", "verify", str(bundle)])
    assert res.exit_code == 0 and res.output.startswith("OK: "), res.output
