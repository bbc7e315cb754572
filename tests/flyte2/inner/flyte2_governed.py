"""Flyte 2 local runs of governed tasks: audited identity, fail-closed gates, sync and async, spans."""

from __future__ import annotations

import asyncio
import hashlib
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from flytekitplugins.aios_audit import audit_log
from flytekitplugins.aios_core.settings import get_settings
from tests.flyte2.inner.governed_tasks import audited_override, driver, pay_async, pay_plugin, pay_sync, run_local

AIOS = str(Path(sys.executable).parent / "aios")


def records(kind: str | None = None) -> list[Any]:
    """The trail's events, oldest first (optionally of one kind)."""
    return [r.event for r in audit_log(get_settings()).scan() if kind is None or r.event.kind == kind]


def _local(run_name: str) -> str:
    """How the execution name a local run's records carry begins: this process's local run id, then the run's name
    (then ``@`` and the time the run started)."""
    from flytekitplugins.aios_core.context import local_run_id

    return f"{local_run_id()}:{run_name}"


def verify_trail() -> str:
    res = subprocess.run([AIOS, "audit", "verify"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    return res.stdout


@pytest.mark.parametrize("task", [pay_sync, pay_async], ids=["sync", "async"])
def test_allowed_run_writes_a_decision_then_a_task_record_that_verify(task: Any, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    out = run_local(task, doc_id="doc-1", amount=120.0, currency="EUR", marker=str(marker))
    run_name, action = out.split("|")
    assert marker.exists()
    kinds = [(e.kind, e.status) for e in records()]
    assert kinds == [("policy_decision", "allow"), ("task", "succeeded")]
    decision, task_rec = records()
    for ev in (decision, task_rec):
        ex = ev.execution
        assert (ex.project, ex.domain, ex.node_id) == ("local", "development", action)
        assert ex.name.startswith(_local(run_name) + "@")
        assert ex.task_name.endswith(task.func.__name__) and ex.retry_attempt == 0
    assert {"amount", "currency", "doc_id", "marker"} <= set(task_rec.inputs)
    assert task_rec.inputs["doc_id"].startswith("sha256:") and task_rec.outputs["o0"].startswith("sha256:")
    assert task_rec.policy_decisions[0]["effect"] == "allow"
    assert task_rec.attributes["runtime"] == "flyte2"
    assert "OK: 2 records" in verify_trail()


@pytest.mark.parametrize("task", [pay_sync, pay_async], ids=["sync", "async"])
def test_deny_fails_closed_before_the_body(task: Any, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    with pytest.raises(Exception, match="doc-known-currency"):
        run_local(task, doc_id="doc-2", amount=10.0, currency="JPY", marker=str(marker))
    assert not marker.exists()
    assert [(e.kind, e.status) for e in records()] == [("policy_decision", "deny"), ("task", "failed")]
    assert records("task")[0].attributes["reason_code"] == "policy_deny"
    verify_trail()


def test_engine_failure_denies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    broken = tmp_path / "policies"
    broken.mkdir()
    (broken / "bad.cedar").write_text("permit (principal, action, resource) when { nonsense", encoding="utf-8")
    monkeypatch.setenv("AIOS_POLICY_DIR", str(broken))
    marker = tmp_path / "ran"
    with pytest.raises(Exception, match="fail closed"):
        run_local(pay_async, doc_id="doc-3", amount=10.0, currency="EUR", marker=str(marker))
    assert not marker.exists()
    assert records("policy_decision")[0].status == "deny"


def test_audit_write_failure_denies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x", encoding="utf-8")
    monkeypatch.setenv("AIOS_AUDIT_STORE", f"sqlite:///{blocker}/audit.db")
    marker = tmp_path / "ran"
    with pytest.raises(Exception, match="could not be written"):
        run_local(pay_sync, doc_id="doc-4", amount=10.0, currency="EUR", marker=str(marker))
    assert not marker.exists()


def test_sub_action_is_gated_and_named_by_its_action(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    with pytest.raises(Exception, match="policy denied"):
        run_local(driver, doc_id="doc-5", amount=1.0, currency="XXX", marker=str(marker))
    assert not marker.exists()
    out = run_local(driver, doc_id="doc-6", amount=1.0, currency="USD", marker=str(marker))
    run_name, action = out.split("|")
    rec = records("task")[-1]
    assert rec.execution.name.startswith(_local(run_name) + "@") and rec.execution.node_id == action != run_name


def _flyte_otel_trace_id(org: str, project: str, domain: str, run: str) -> int:
    """flyteplugins-otel's run trace id (flyteplugins/otel/_ids.py), written out independently."""
    raw = b"\x00".join(p.encode() for p in (org, project, domain, run))
    return int.from_bytes(hashlib.blake2b(raw, digest_size=16, person=b"flyte.otel.run.v1"[:16]).digest(), "big") or 1


def test_span_joins_the_run_trace_of_flyteplugins_otel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIOS_OTEL_EXPORTER", "memory")
    from flytekitplugins.aios_audit.otel import memory_exporter

    exporter = memory_exporter()
    exporter.clear()
    out = run_local(pay_async, doc_id="doc-7", amount=5.0, currency="EUR", marker=str(tmp_path / "ran"))
    run_name, action = out.split("|")
    spans = [s for s in exporter.get_finished_spans() if s.name.startswith("aios.governed")]
    assert len(spans) == 1
    span = spans[0]
    assert span.context.trace_id == _flyte_otel_trace_id("", "", "", run_name)
    assert span.attributes["flyte.run_name"] == run_name and span.attributes["flyte.action_name"] == action
    last = list(audit_log(get_settings()).scan())[-1]
    assert last.event.kind == "task" and span.attributes["aios.record_id"] == last.record_id


def test_span_is_a_child_of_the_active_span(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIOS_OTEL_EXPORTER", "memory")
    from flytekitplugins.aios_audit.otel import memory_exporter, tracer

    exporter = memory_exporter()
    exporter.clear()
    with tracer("memory").start_as_current_span("flyte-task") as outer:  # as flyteplugins-otel's task span
        asyncio.run(pay_async.func(doc_id="d", amount=1.0, currency="EUR", marker=str(tmp_path / "m")))
    span = next(s for s in exporter.get_finished_spans() if s.name.startswith("aios.governed"))
    assert span.parent is not None and span.parent.span_id == outer.get_span_context().span_id
    assert span.context.trace_id == outer.get_span_context().trace_id


def test_task_plugin_gates_with_the_flyte_task_name(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    with pytest.raises(Exception, match="doc-known-currency"):
        run_local(pay_plugin, doc_id="doc-8", amount=3.0, currency="JPY", marker=str(marker))
    assert not marker.exists()
    assert run_local(pay_plugin, doc_id="doc-9", amount=3.0, currency="CHF", marker=str(marker)).count("|") == 1
    assert [(e.kind, e.status) for e in records()] == [
        ("policy_decision", "deny"),
        ("task", "failed"),
        ("policy_decision", "allow"),
        ("task", "succeeded"),
    ]
    assert {e.execution.task_name for e in records("task")} == {"aios_tests_plugin.pay_plugin"}


def test_task_plugin_by_override_audits_a_plain_task() -> None:
    assert run_local(audited_override, x=41) == 42
    (task,) = records()
    assert task.kind == "task" and task.execution.task_name == "aios_tests.audited_plain"
    assert set(task.inputs) == {"x"} and set(task.outputs) == {"o0"}
