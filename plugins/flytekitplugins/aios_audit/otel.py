"""Audit records as OpenTelemetry spans, one trace per Flyte execution.

The trace id is derived from the execution id (``project/domain/name``), so every task of one execution,
in any pod, lands in the same trace without passing context around; each span's parent is a synthetic
execution span whose id is derived the same way, and the span id is taken from the record id. Spans go
to ``settings.otel_exporter``: ``console``, ``memory`` (tests), ``otlp`` (needs
``opentelemetry-exporter-otlp``) or ``none``.
"""

from __future__ import annotations

import contextvars
import hashlib
import threading
from typing import Any

from flytekitplugins.aios_audit.records import AuditRecord

_next_span_id: contextvars.ContextVar[int | None] = contextvars.ContextVar("aios_span_id", default=None)
_providers: dict[str, Any] = {}
_lock = threading.Lock()
_memory: Any = None


def trace_id_for(execution_key: str) -> int:
    """128-bit trace id of a Flyte execution (deterministic)."""
    return int.from_bytes(hashlib.sha256(b"aios-trace:" + execution_key.encode()).digest()[:16], "big") or 1


def root_span_id_for(execution_key: str) -> int:
    """64-bit id of the synthetic execution span every task span hangs under."""
    return int.from_bytes(hashlib.sha256(b"aios-span:" + execution_key.encode()).digest()[:8], "big") or 1


def traceparent(execution_key: str) -> str:
    """W3C ``traceparent`` header of an execution, for systems outside the pack."""
    return f"00-{trace_id_for(execution_key):032x}-{root_span_id_for(execution_key):016x}-01"


def memory_exporter() -> Any:
    """The in-memory exporter used when ``otel_exporter`` is ``memory`` (tests)."""
    _provider("memory")
    return _memory


def _provider(kind: str) -> Any:
    global _memory
    with _lock:
        if kind in _providers:
            return _providers[kind]
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
        from opentelemetry.sdk.trace.id_generator import RandomIdGenerator

        class _Ids(RandomIdGenerator):
            def generate_span_id(self) -> int:
                forced = _next_span_id.get()
                return forced if forced is not None else super().generate_span_id()

        provider = TracerProvider(resource=Resource.create({"service.name": "flyte-aios"}), id_generator=_Ids())
        if kind == "memory":
            from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

            _memory = InMemorySpanExporter()
            provider.add_span_processor(SimpleSpanProcessor(_memory))
        elif kind == "console":
            from opentelemetry.sdk.trace.export import ConsoleSpanExporter

            provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
        else:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        _providers[kind] = provider
        return provider


def _ns(value: Any) -> int | None:
    return int(value.timestamp() * 1e9) if value is not None else None


def emit_span(record: AuditRecord, kind: str) -> None:
    """Export one span for ``record`` through the ``kind`` exporter."""
    from opentelemetry import trace
    from opentelemetry.trace import NonRecordingSpan, SpanContext, Status, StatusCode, TraceFlags

    ev, ex = record.event, record.event.execution
    key = ex.execution_key if ex else f"record/{record.record_id}"
    parent = SpanContext(trace_id_for(key), root_span_id_for(key), is_remote=True, trace_flags=TraceFlags(1))
    ctx = trace.set_span_in_context(NonRecordingSpan(parent))
    attrs: dict[str, Any] = {
        "aios.record_id": record.record_id,
        "aios.seq": record.seq,
        "aios.chain_hash": record.chain_hash,
        "aios.kind": ev.kind,
        "aios.status": ev.status,
        "aios.actor": ev.actor,
        "flyte.execution.id": key,
    }
    if ex is not None:
        attrs.update({"flyte.node_id": ex.node_id, "flyte.task.name": ex.task_name})
        attrs.update({"flyte.task.version": ex.task_version, "flyte.retry_attempt": ex.retry_attempt})
    attrs.update({f"aios.input.{k}": v for k, v in ev.inputs.items()})
    attrs.update({f"aios.output.{k}": v for k, v in ev.outputs.items()})
    attrs.update({f"aios.model.{m.name}": f"{m.version}@{m.digest}" for m in ev.models})
    tracer = _provider(kind).get_tracer("flytekitplugins.aios_audit")
    token = _next_span_id.set(int(record.record_id[:16], 16) or 1)
    try:
        name = f"{ev.kind} {ex.task_name if ex else ''}".strip()
        span = tracer.start_span(
            name, context=ctx, attributes=attrs, start_time=_ns(ev.started_at or record.recorded_at)
        )
    finally:
        _next_span_id.reset(token)
    if ev.status == "failed":
        span.set_status(Status(StatusCode.ERROR, str(ev.attributes.get("error_type", "failed"))))
    span.end(end_time=_ns(ev.ended_at or record.recorded_at))
