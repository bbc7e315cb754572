"""The emitter process: lineage events and OTLP spans leave the task's process through a pipe.

Bounded queue with a drop counter (log and metric), a lost emitter counted and restarted, the thread fallback
when no process can start, and spans exported by the emitter with the task process's resource.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import signal
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from flytekitplugins.aios_audit import emit, lineage_events, metrics, observe, otel
from flytekitplugins.aios_audit.emit_process import EmitterProcess
from flytekitplugins.aios_core.context import ExecutionRef
from flytekitplugins.aios_core.settings import get_settings, reset_settings
from tests.audit import governed_tasks as gt
from tests.observability.receivers import Receiver, attrs
from tests.observability.schemas import validate_event

EX = ExecutionRef(project="p", domain="d", name="exec-1", task_name="t.task")


@pytest.fixture
def fresh_process(monkeypatch: pytest.MonkeyPatch) -> Iterator[EmitterProcess]:
    """A new emitter (process started on first use) in place of this process's, ended after the test."""
    proc = EmitterProcess()
    monkeypatch.setattr(emit, "_process", proc)
    yield proc
    proc.close(10.0)


def _start_message(i: int) -> list[Any]:
    attempt = lineage_events.TaskAttempt.of(EX, "wf", dt.datetime.now(dt.UTC), f"task {i}")
    return lineage_events.start_message(attempt)


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]


class _Gate:
    """An OpenLineage HTTP receiver that holds every request until released (a slow lineage backend)."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.bodies: list[dict[str, Any]] = []
        gate = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                gate.release.wait(30)
                gate.bodies.append(json.loads(body))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def _dropped_metric() -> int:
    data = metrics.memory_reader().get_metrics_data()
    return sum(
        p.value
        for rm in (data.resource_metrics if data else [])
        for sm in rm.scope_metrics
        for m in sm.metrics
        if m.name == "aios.lineage.events.dropped"
        for p in m.data.data_points
    )


def test_full_queue_drops_counts_and_never_blocks(
    aios_env: Path, fresh_process: EmitterProcess, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    gate = _Gate()
    try:
        monkeypatch.setenv("AIOS_LINEAGE_URL", gate.url)
        monkeypatch.setenv("AIOS_OTEL_EXPORTER", "memory")
        for name, fresh in (("_provider", {}), ("_instruments", {}), ("_memory", None)):
            monkeypatch.setattr(metrics, name, fresh)  # this test's own meter provider and in-memory reader
        reset_settings()
        settings = get_settings().model_copy(update={"lineage_queue_size": 3})
        client = emit.lineage_client(settings)
        emit.send(client, _start_message(0), settings)
        deadline = time.monotonic() + 60
        while fresh_process.handled() < 1 and time.monotonic() < deadline:  # the emitter started, read the
            time.sleep(0.01)  # destination and now waits on the backend with the first event
        assert fresh_process.handled() == 1
        with caplog.at_level(logging.WARNING):
            t0 = dt.datetime.now(dt.UTC)
            for i in range(1, 9):
                emit.send(client, _start_message(i), settings)
            spent = (dt.datetime.now(dt.UTC) - t0).total_seconds()
        assert spent < 1.0  # never waited for the backend
        # in flight: the definition (handled), the event held by the backend, then 2 more: the other 6 dropped
        assert fresh_process.dropped == 6
        assert emit.dropped() == 6
        assert any("queue full" in m and "dropped" in m for m in caplog.messages)
        assert _dropped_metric() == 6
        gate.release.set()
        assert fresh_process.flush(30.0)
        assert len(gate.bodies) == 3  # what was queued arrives; nothing else
        for body in gate.bodies:
            validate_event(body)
    finally:
        gate.close()


def test_a_dead_emitter_is_counted_and_replaced(
    aios_env: Path, fresh_process: EmitterProcess, caplog: pytest.LogCaptureFixture
) -> None:
    settings = get_settings()
    client = emit.lineage_client(settings)
    events = aios_env / "lineage" / "events.jsonl"
    emit.send(client, _start_message(1), settings)
    assert fresh_process.flush(30.0)
    first = fresh_process._proc
    assert first is not None and first.pid != os.getpid()
    os.kill(first.pid, signal.SIGKILL)
    first.wait(10)
    with caplog.at_level(logging.WARNING):
        emit.send(client, _start_message(2), settings)  # written into a pipe nobody reads: lost
        assert fresh_process.flush(10.0) is False
    assert fresh_process.dropped == 1
    assert any("emitter process ended; 1 queued event(s) dropped" in m for m in caplog.messages)
    emit.send(client, _start_message(3), settings)  # a new emitter process takes over
    assert fresh_process.flush(30.0)
    assert fresh_process._proc is not None and fresh_process._proc.pid != first.pid
    assert [e["job"]["facets"]["documentation"]["description"] for e in _lines(events)] == ["task 1", "task 3"]


def test_thread_fallback_when_no_process_can_start(
    aios_env: Path, fresh_process: EmitterProcess, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr("sys.executable", str(aios_env / "no-such-python"))
    with caplog.at_level(logging.WARNING):
        gt.tokenize(text="a b")
        emit.flush()
    assert fresh_process.broken and fresh_process._proc is None
    assert any("emitter process not started" in m for m in caplog.messages)
    events = _lines(aios_env / "lineage" / "events.jsonl")
    assert [e["eventType"] for e in events[-2:]] == ["START", "COMPLETE"]  # sent by the thread instead
    for e in events:
        validate_event(e)


def test_spans_are_exported_by_the_emitter_process(aios_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with Receiver() as otlp:
        monkeypatch.setenv("AIOS_LINEAGE_URL", "none")
        monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp")
        monkeypatch.setenv("OTEL_METRICS_EXPORTER", "none")
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", otlp.url)
        monkeypatch.setenv("OTEL_SERVICE_NAME", "svc-forwarded")
        monkeypatch.setattr(otel, "_providers", {})
        monkeypatch.setattr(observe, "_local", {})  # no execution span of this provider left for the exit
        reset_settings()
        before = _batch_threads()
        try:
            gt.tokenize(text="a")
            provider = otel._providers["otlp"]
            processors = provider._active_span_processor._span_processors
            assert [type(p).__name__ for p in processors] == ["ForwardingSpanProcessor"]
            assert _batch_threads() == before  # no span exporter thread in the task's process
            assert provider.force_flush()  # the emitter process exports its batch now
            spans = otlp.spans()
        finally:
            otel.shutdown()
    ((resource, span),) = spans
    assert resource["service.name"] == "svc-forwarded"
    assert span.name.endswith("governed_tasks.tokenize") and span.status.code == 1  # OK
    assert span.end_time_unix_nano > span.start_time_unix_nano
    a = attrs(span)
    assert a["flyte.task_name"] == span.name and a["aios.record_id"]
    assert span.parent_span_id.hex() == f"{otel.root_span_id_for(a['flyte.execution_id']):016x}"
    assert span.trace_id.hex() == f"{otel.trace_id_for(a['flyte.execution_id']):032x}"


def _batch_threads() -> set[int | None]:
    return {t.ident for t in threading.enumerate() if t.name.startswith("OtelBatchSpan")}


def test_span_message_round_trip() -> None:
    """What the emitter rebuilds is the span that ended: ids, times, status, attributes, exception events."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import Status, StatusCode

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tr = provider.get_tracer("x", "1.2")
    ctx = otel.execution_context("p/d/exec-9")
    span = tr.start_span("t", context=ctx, attributes={"flyte.attempt": 2, "aios.tags": ("a", "b"), "ok": True})
    span.record_exception(ValueError("v"), attributes={"exception.message": "withheld"})
    span.set_status(Status(StatusCode.ERROR, "builtins.ValueError"))
    span.end()
    (done,) = exporter.get_finished_spans()
    rebuilt = otel.span_from_message(json.loads(json.dumps(otel.span_message(done))), Resource({"service.name": "s"}))
    assert (rebuilt.context.trace_id, rebuilt.context.span_id) == (done.context.trace_id, done.context.span_id)
    assert rebuilt.parent is not None and done.parent is not None
    assert (rebuilt.parent.span_id, rebuilt.parent.is_remote) == (done.parent.span_id, True)
    assert (rebuilt.start_time, rebuilt.end_time, rebuilt.name) == (done.start_time, done.end_time, "t")
    assert rebuilt.status.status_code == StatusCode.ERROR and rebuilt.status.description == "builtins.ValueError"
    assert dict(rebuilt.attributes or {}) == {"flyte.attempt": 2, "aios.tags": ["a", "b"], "ok": True}
    assert [e.name for e in rebuilt.events] == ["exception"] and rebuilt.events[0].timestamp == done.events[0].timestamp
    assert rebuilt.events[0].attributes["exception.message"] == "withheld"
    assert rebuilt.instrumentation_scope is not None and rebuilt.instrumentation_scope.version == "1.2"
    assert rebuilt.resource.attributes["service.name"] == "s"


def test_the_emitter_process_masks_what_its_exporters_log(tmp_path: Path) -> None:
    """The emitter process only called logging.basicConfig, so its exporters and transports logged unmasked:
    urllib3's retry warnings quoted an OTLP URL's ``?api_key=`` and an OpenLineage URL's ``?token=``, and a gRPC
    OTLP endpoint's ``user:password@host:port`` (no scheme, so no pattern can see it). A fresh interpreter set up
    as ``main`` sets up its logging logs what those libraries log."""
    import subprocess
    import sys

    canary = "3mitter-canary"
    env = {
        **os.environ,
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"https://otlp.example.com/v1/traces?api_key={canary}-a",
        "OPENLINEAGE_URL": f"http://ol.example.com/api?token={canary}-b",
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"collector:{canary}-c@otlp.example.com:4317",
        "OTEL_EXPORTER_OTLP_HEADERS": f"authorization=Bearer {canary}-d",
        "OPENLINEAGE_API_KEY": f"{canary}-e",
    }
    code = (
        "import logging, os\n"
        "from flytekitplugins.aios_audit.emit_process import configure_logging\n"
        "configure_logging(os.environ)\n"
        "pool = logging.getLogger('urllib3.connectionpool')\n"
        "for name in ('OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', 'OPENLINEAGE_URL', 'OTEL_EXPORTER_OTLP_ENDPOINT'):\n"
        "    pool.warning('Retrying after connection broken: %s', os.environ[name])\n"
        "logging.getLogger('grpc').warning('metadata %s key %s', os.environ['OTEL_EXPORTER_OTLP_HEADERS'],\n"
        "    os.environ['OPENLINEAGE_API_KEY'])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr
    assert out.stderr.count("aios-lineage-emitter: WARNING") == 4, out.stderr
    assert canary not in out.stderr, out.stderr
