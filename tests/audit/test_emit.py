"""OpenLineage RunEvents (2-0-2 schema, custom facet schemas) and OpenTelemetry spans, best-effort."""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path

import jsonschema
import pytest

from flytekitplugins.aios_audit import AuditEvent, ModelRef, audit_log, emit
from flytekitplugins.aios_audit.emit import flush
from flytekitplugins.aios_audit.lineage_events import SCHEMA_DIR, parent_run_id
from flytekitplugins.aios_audit.observe import end_local_executions
from flytekitplugins.aios_audit.otel import memory_exporter, trace_id_for
from flytekitplugins.aios_core.context import ExecutionRef, local_run
from flytekitplugins.aios_core.settings import get_settings, reset_settings
from tests.audit import governed_tasks as gt
from tests.observability.schemas import facet_schema_file, validate_event


def _events(state: Path) -> list[dict]:
    flush()  # events are built and written by the emitter thread, off the task's critical path
    lines = (state / "lineage" / "events.jsonl").read_text().splitlines()
    return [json.loads(x) for x in lines if x.strip()]


def test_runevents_validate_and_carry_facets(aios_env: Path) -> None:
    with local_run("emit"):
        gt.count(words=gt.tokenize(text="alpha beta"))
        with pytest.raises(ValueError):
            gt.boom(x=1)
    events = _events(aios_env)
    for e in events:
        validate_event(e)
    assert (aios_env / "lineage" / "events.jsonl").stat().st_mode & 0o077 == 0  # owner only, like all state
    records = list(audit_log(get_settings()).scan())
    parent = parent_run_id(records[0].event.execution.execution_key)
    assert events[0]["eventType"] == "START" and events[0]["run"]["runId"] == parent  # the local execution's run
    tasks = events[1:]
    assert [e["eventType"] for e in tasks] == ["START", "COMPLETE", "START", "COMPLETE", "START", "FAIL"]
    assert len({e["run"]["runId"] for e in tasks}) == 3  # one run per task attempt, START and end share it
    assert all(e["run"]["runId"] == tasks[i - i % 2]["run"]["runId"] for i, e in enumerate(tasks))
    tok, cnt, boom = tasks[1], tasks[3], tasks[5]
    assert tok["job"]["name"].endswith("governed_tasks.tokenize") and tok["job"]["namespace"] == "flyte://local/local"
    assert tok["job"]["facets"]["documentation"]["description"].startswith("Split text into words")
    assert tok["run"]["facets"]["aios_policy_decisions"]["decisions"][0]["effect"] == "allow"
    assert cnt["run"]["facets"]["aios_models"]["models"][0]["name"] == "counter"
    assert boom["run"]["facets"]["errorMessage"]["message"].startswith("builtins.ValueError")
    assert "secret value" not in json.dumps(boom)  # the message may quote input data: only its digest
    assert {e["run"]["facets"]["parent"]["run"]["runId"] for e in tasks} == {parent}
    assert [e["run"]["facets"]["aios_audit"]["recordId"] for e in (tok, cnt, boom)] == [r.record_id for r in records]


def test_custom_facet_schemas_are_shipped_and_strict(aios_env: Path) -> None:
    gt.count(words=["a"])
    done = _events(aios_env)[-1]
    facet = done["run"]["facets"]["aios_models"]
    path = facet_schema_file(facet["_schemaURL"])
    assert path.parent == SCHEMA_DIR and json.loads(path.read_text())["$id"] in facet["_schemaURL"]
    validator = jsonschema.Draft202012Validator(json.loads(path.read_text()))
    validator.validate({"aios_models": facet})
    del facet["models"][0]["digest"]
    with pytest.raises(jsonschema.ValidationError):
        validator.validate({"aios_models": facet})


def test_invalid_event_is_caught_by_the_schema(aios_env: Path) -> None:
    gt.tokenize(text="x")
    event = _events(aios_env)[-1]
    event["run"]["runId"] = "not-a-uuid"
    with pytest.raises(jsonschema.ValidationError):
        validate_event(event)


def test_emitter_failure_keeps_the_record(
    aios_env: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("AIOS_LINEAGE_URL", f"file:{aios_env}/lineage")  # a directory: every emit fails
    (aios_env / "lineage").mkdir()
    reset_settings()
    with caplog.at_level(logging.WARNING):
        assert gt.tokenize(text="a b") == ["a", "b"]
        flush()
    assert len(list(audit_log(get_settings()).scan())) == 1
    assert any("OpenLineage emit" in m for m in caplog.messages)
    with caplog.at_level(logging.WARNING):
        end_local_executions()  # its COMPLETE fails the same way, here rather than at exit
    assert any("could not end local execution" in m for m in caplog.messages)


def test_full_queue_drops_counts_and_never_blocks(
    aios_env: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from flytekitplugins.aios_audit import metrics
    from flytekitplugins.aios_core.settings import get_settings

    monkeypatch.setenv("AIOS_OTEL_EXPORTER", "memory")
    reset_settings()
    gate = threading.Event()
    settings = get_settings().model_copy(update={"lineage_queue_size": 2})

    class Slow:
        class transport:
            kind = "slow"

        def emit(self, event: object) -> None:
            gate.wait(10)

    before = emit.dropped()
    monkeypatch.setattr(emit, "_worker", emit._Worker())
    with caplog.at_level(logging.WARNING):
        for _ in range(6):  # one taken by the thread (maybe), two queued, the rest dropped
            emit.submit(Slow(), lambda: None, settings)
    assert emit.dropped() >= 3 and before == 0
    assert any("queue full" in m and "dropped" in m for m in caplog.messages)
    gate.set()
    emit.flush()
    data = metrics.memory_reader().get_metrics_data()
    points = [
        p
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
        if m.name == "aios.lineage.events.dropped"
        for p in m.data.data_points
    ]
    assert sum(p.value for p in points) == emit.dropped()


def test_openlineage_disabled_wins_over_the_setting(aios_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENLINEAGE_DISABLED", "true")
    gt.tokenize(text="x")
    flush()
    assert not (aios_env / "lineage").exists()


def test_record_spans_share_one_trace_per_execution(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIOS_OTEL_EXPORTER", "memory")
    monkeypatch.setenv("AIOS_LINEAGE_URL", "none")
    reset_settings()
    exporter = memory_exporter()
    exporter.clear()
    ex1 = ExecutionRef(project="p", domain="d", name="exec-1", task_name="t1")
    ex2 = ExecutionRef(project="p", domain="d", name="exec-2", task_name="t1")
    store = audit_log(get_settings())
    recs = [
        store.append(AuditEvent(kind="task", actor="a", status="succeeded", execution=ex1)),
        store.append(
            AuditEvent(kind="task", actor="a", status="failed", execution=ex1.model_copy(update={"task_name": "t2"}))
        ),
        store.append(
            AuditEvent(kind="task", actor="a", execution=ex2, models=[ModelRef(name="m", version="1", digest="d")])
        ),
    ]
    spans = exporter.get_finished_spans()
    assert len(spans) == 3
    assert spans[0].context.trace_id == spans[1].context.trace_id == trace_id_for("p/d/exec-1")
    assert spans[2].context.trace_id == trace_id_for("p/d/exec-2") != spans[0].context.trace_id
    assert [s.attributes["aios.record_id"] for s in spans] == [r.record_id for r in recs]
    assert spans[0].parent is not None and spans[0].parent.span_id == spans[1].parent.span_id
    assert spans[0].status.status_code.name == "OK" and spans[1].status.status_code.name == "ERROR"
    assert spans[2].attributes["aios.model.m"] == "1@d" and spans[2].attributes["flyte.project"] == "p"


def test_task_span_has_real_times_status_and_exception(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIOS_OTEL_EXPORTER", "memory")
    reset_settings()
    exporter = memory_exporter()
    exporter.clear()
    gt.tokenize(text="a")
    with pytest.raises(ValueError):
        gt.boom(x=3)
    tok, boom = exporter.get_finished_spans()
    assert tok.end_time > tok.start_time and tok.status.status_code.name == "OK"
    assert tok.attributes["aios.record_id"] == next(iter(audit_log(get_settings()).scan())).record_id
    assert boom.status.status_code.name == "ERROR" and boom.events[0].name == "exception"
    assert boom.events[0].attributes["exception.type"] == "ValueError"
    assert "secret value 3" not in json.dumps(dict(boom.events[0].attributes))  # code lines yes, data no
    assert tok.context.trace_id == boom.context.trace_id  # one local execution, one trace


def test_global_tracer_provider_is_used_when_set(monkeypatch: pytest.MonkeyPatch) -> None:
    """An application that configured OpenTelemetry itself keeps its provider (exporters, sampler, resource)."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    app_exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(app_exporter))
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", provider)  # what set_tracer_provider does, undone after
    monkeypatch.setenv("AIOS_OTEL_EXPORTER", "none")
    reset_settings()
    gt.tokenize(text="a")
    (span,) = app_exporter.get_finished_spans()
    assert span.name.endswith("governed_tasks.tokenize")
