"""OpenTelemetry traces of governed tasks, one trace per Flyte execution.

Provider: the application's global TracerProvider when one is set; otherwise one of our own configured from
the standard environment (``OTEL_SDK_DISABLED``, ``OTEL_TRACES_EXPORTER`` = ``otlp``/``console``/``none``,
``OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL`` = ``http/protobuf`` (default) or ``grpc``, ``OTEL_EXPORTER_OTLP_*``
endpoint and headers read by the exporter itself, ``OTEL_SERVICE_NAME`` and ``OTEL_RESOURCE_ATTRIBUTES``),
falling back to the ``otel_exporter`` setting (``AIOS_OTEL_EXPORTER``; ``memory`` is for tests).

With the ``otlp`` exporter our provider hands each ended span to the emitter process (``emit_process.py``),
which encodes and exports it: the OTLP encoding never holds the task's GIL.

Each task attempt is a span with its real start and end, status OK or ERROR and the exception recorded (its
message replaced by a digest: it may quote input data). Its parent is the execution span, whose trace id and
span id derive from ``project/domain/name``, so every pod of one execution lands in the same trace without
passing context; records appended inside a task become child spans of the task span. Attribute names follow
flyteplugins-otel (``flyte.project``, ``flyte.domain``, ``flyte.run_name``, ``flyte.action_name``,
``flyte.task_name``) so traces of both join.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import functools
import hashlib
import logging
import os
import threading
import traceback
from typing import TYPE_CHECKING, Any, cast

from flytekitplugins.aios_audit.records import AuditRecord
from flytekitplugins.aios_core.context import ExecutionRef

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import SpanProcessor

TRACER_NAME = "flytekitplugins.aios_audit"
log = logging.getLogger(__name__)
_forced_ids: contextvars.ContextVar[tuple[int, int] | None] = contextvars.ContextVar("aios_ids", default=None)
_providers: dict[str, Any] = {}
_lock = threading.Lock()
_memory: Any = None


def trace_id_for(execution_key: str) -> int:
    """128-bit trace id of a Flyte execution (deterministic)."""
    return int.from_bytes(hashlib.sha256(b"aios-trace:" + execution_key.encode()).digest()[:16], "big") or 1


def root_span_id_for(execution_key: str) -> int:
    """64-bit id of the execution span every task span hangs under."""
    return int.from_bytes(hashlib.sha256(b"aios-span:" + execution_key.encode()).digest()[:8], "big") or 1


def traceparent(execution_key: str) -> str:
    """W3C ``traceparent`` header of an execution, for systems outside the pack."""
    return f"00-{trace_id_for(execution_key):032x}-{root_span_id_for(execution_key):016x}-01"


def exporter_kind(setting: str) -> str:
    """The traces exporter in force: ``OTEL_SDK_DISABLED``, then ``OTEL_TRACES_EXPORTER``, then the setting."""
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return "none"
    kinds = [k.strip() for k in os.environ.get("OTEL_TRACES_EXPORTER", "").split(",") if k.strip()]
    return ",".join(kinds) if kinds else setting


def memory_exporter() -> Any:
    """The in-memory span exporter used when the exporter is ``memory`` (tests)."""
    _own_provider("memory")
    return _memory


def _global_provider() -> Any | None:
    from opentelemetry import trace

    provider = trace.get_tracer_provider()
    if isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider):
        return None
    return provider


def resource() -> Any:
    """The SDK resource from ``OTEL_SERVICE_NAME`` / ``OTEL_RESOURCE_ATTRIBUTES``; service ``flyte-aios`` if unset."""
    from opentelemetry.sdk.resources import Resource

    res = Resource.create()
    if str(res.attributes.get("service.name", "")).startswith("unknown_service"):
        res = res.merge(Resource({"service.name": "flyte-aios"}))
    return res


def otlp_protocol(signal: str) -> str:
    """``OTEL_EXPORTER_OTLP_<signal>_PROTOCOL``, else ``OTEL_EXPORTER_OTLP_PROTOCOL``, else ``http/protobuf``."""
    return (
        os.environ.get(f"OTEL_EXPORTER_OTLP_{signal}_PROTOCOL") or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL") or ""
    ).strip() or "http/protobuf"


def _span_exporter(kind: str) -> tuple[Any, bool]:
    """(exporter, export synchronously) for one exporter name."""
    global _memory
    if kind == "memory":
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        _memory = InMemorySpanExporter()
        return _memory, True
    if kind == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter(), True
    if kind == "otlp" and otlp_protocol("TRACES") == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter

        return GrpcExporter(), False
    if kind == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter(), False
    from flytekitplugins.aios_core.errors import ConfigError

    msg = f"traces exporter {kind!r} is not supported: use otlp, console or none (OTEL_TRACES_EXPORTER)"
    raise ConfigError(msg)


def _own_provider(kinds: str) -> Any:
    with _lock:
        if kinds in _providers:
            return _providers[kinds]
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
        from opentelemetry.sdk.trace.id_generator import RandomIdGenerator

        class _Ids(RandomIdGenerator):
            def generate_span_id(self) -> int:
                forced = _forced_ids.get()
                return forced[1] if forced is not None else super().generate_span_id()

            def generate_trace_id(self) -> int:
                forced = _forced_ids.get()
                return forced[0] if forced is not None else super().generate_trace_id()

        # shut down by emit.shutdown() at exit, after the last spans (local execution spans) are ended
        res = resource()
        provider = TracerProvider(resource=res, id_generator=_Ids(), shutdown_on_exit=False)
        for kind in kinds.split(","):
            if kind == "otlp":  # encoded and sent by the emitter process, off this process's GIL
                _span_exporter(kind)  # fails here, in the task's process, when the exporter cannot be made
                forwarding = ForwardingSpanProcessor(kind, dict(res.attributes))  # duck-typed: no SDK import here
                provider.add_span_processor(cast("SpanProcessor", forwarding))
                continue
            exporter, sync = _span_exporter(kind)
            provider.add_span_processor(SimpleSpanProcessor(exporter) if sync else BatchSpanProcessor(exporter))
        _providers[kinds] = provider
        return provider


def span_message(span: Any) -> list[Any]:
    """An ended span as a JSON array (ids as hex: JSON numbers stop at 64 bits); :func:`span_from_message`."""
    ctx, parent, status, scope = span.context, span.parent, span.status, span.instrumentation_scope
    return [
        "t",
        span.name,
        f"{ctx.trace_id:032x}",
        f"{ctx.span_id:016x}",
        int(ctx.trace_flags),
        f"{parent.span_id:016x}" if parent is not None else None,
        bool(parent.is_remote) if parent is not None else False,
        span.kind.value,
        span.start_time,
        span.end_time,
        dict(span.attributes or {}),
        status.status_code.value,
        status.description,
        [[e.name, e.timestamp, dict(e.attributes or {})] for e in span.events],
        scope.name if scope is not None else TRACER_NAME,
        scope.version if scope is not None else None,
    ]


def span_from_message(m: list[Any], res: Any) -> Any:
    """The ReadableSpan a :func:`span_message` describes, with the resource ``res`` (in the emitter process)."""
    from opentelemetry.sdk.trace import Event, ReadableSpan
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope
    from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

    _, name, tid, sid, flags, psid, remote, kind, start, end, attrs, code, desc, events, scope, version = m
    trace_id = int(tid, 16)
    ctx = SpanContext(trace_id, int(sid, 16), is_remote=False, trace_flags=TraceFlags(flags))
    parent = SpanContext(trace_id, int(psid, 16), is_remote=remote, trace_flags=TraceFlags(flags)) if psid else None
    return ReadableSpan(
        name=name,
        context=ctx,
        parent=parent,
        resource=res,
        attributes=attrs,
        events=[Event(n, a, timestamp=ts) for n, ts, a in events],
        kind=SpanKind(kind),
        status=Status(StatusCode(code), desc),
        start_time=start,
        end_time=end,
        instrumentation_scope=InstrumentationScope(scope, version),
    )


def exporting_processor(kind: str, attributes: dict[str, Any]) -> Any:
    """The emitter process's side: a batch processor exporting forwarded spans with the task's resource."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    processor = BatchSpanProcessor(_span_exporter(kind)[0])
    processor.aios_resource = Resource(attributes)  # type: ignore[attr-defined]
    return processor


class ForwardingSpanProcessor:
    """Span processor of our own provider: each ended span goes to the emitter process as a JSON array.

    Encoding spans to OTLP protobuf and posting them costs a few hundred microseconds of Python per span; in a
    ``BatchSpanProcessor`` thread of the task's process that work holds the task's GIL in bursts of hundreds of
    spans. The emitter process (``emit_process.py``) exports them through the same exporter, configured by
    the same ``OTEL_*`` environment, with this provider's resource. Should it not run, a batch processor of
    this process takes over.
    """

    def __init__(self, kind: str, resource_attributes: dict[str, Any]) -> None:
        self.kind = kind
        self.resource_attributes = resource_attributes
        self.dropped = 0
        self._fallback: Any = None

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        """Nothing to do when a span starts."""

    def _on_ending(self, span: Any) -> None:
        """Nothing to do while a span ends (the SDK calls this on every processor)."""

    def on_end(self, span: Any) -> None:
        """Forward the ended span (counted and logged when the emitter's queue is full)."""
        from flytekitplugins.aios_audit import emit

        if self._fallback is None:
            sent = emit.forward_span(self, span_message(span))
            if sent is not None:
                if not sent:
                    self.dropped += 1
                    if self.dropped == 1 or self.dropped % 1000 == 0:
                        log.warning("audit: %d span(s) dropped: the emitter's queue is full", self.dropped)
                return
            from opentelemetry.sdk.trace.export import BatchSpanProcessor

            self._fallback = BatchSpanProcessor(_span_exporter(self.kind)[0])
        self._fallback.on_end(span)

    def shutdown(self) -> None:
        """Shut the fallback processor down (the emitter process exports what it was handed before it ends)."""
        if self._fallback is not None:
            self._fallback.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Wait until the emitter process has exported every span handed to it."""
        from flytekitplugins.aios_audit import emit

        if emit.forward_span(self, ["f"]):
            emit.flush()
        return self._fallback.force_flush(timeout_millis) if self._fallback is not None else True


_tracers: dict[int, tuple[Any, Any]] = {}


def tracer(setting: str) -> Any | None:
    """The tracer to use, or ``None`` when tracing is off (no global provider and exporter ``none``)."""
    provider = _global_provider()
    if provider is None:
        kinds = exporter_kind(setting)
        if kinds in ("", "none"):
            return None
        provider = _providers.get(kinds) or _own_provider(kinds)
    found = _tracers.get(id(provider))
    if found is None or found[0] is not provider:
        found = _tracers[id(provider)] = (provider, provider.get_tracer(TRACER_NAME))
    return found[1]


def shutdown() -> None:
    """Flush and shut down the providers this module made (at exit)."""
    with _lock:
        providers = list(_providers.values())
        _providers.clear()
    for p in providers:
        p.shutdown()


def _ns(value: dt.datetime | None) -> int | None:
    return int(value.timestamp() * 1e9) if value is not None else None


def flyte_attributes(ex: ExecutionRef, workflow: str) -> dict[str, Any]:
    """Span attributes naming the Flyte execution and task (flyteplugins-otel names where they overlap)."""
    attrs: dict[str, Any] = {
        "flyte.project": ex.project,
        "flyte.domain": ex.domain,
        "flyte.run_name": ex.name,
        "flyte.execution_id": ex.execution_key,
        "flyte.task_name": ex.task_name,
        "flyte.workflow_name": workflow,
        "flyte.attempt": ex.retry_attempt,
    }
    if ex.node_id:
        attrs["flyte.action_name"] = ex.node_id
    if ex.task_version:
        attrs["flyte.task_version"] = ex.task_version
    return attrs


@functools.lru_cache(maxsize=256)
def execution_context(execution_key: str) -> Any:
    """OpenTelemetry context whose current span is the (remote) execution span (immutable: built once)."""
    from opentelemetry import trace
    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

    parent = SpanContext(
        trace_id_for(execution_key), root_span_id_for(execution_key), is_remote=True, trace_flags=TraceFlags(1)
    )
    return trace.set_span_in_context(NonRecordingSpan(parent))


def start_task_span(tr: Any, ex: ExecutionRef, workflow: str, started_at: dt.datetime) -> Any:
    """Start the span of a task attempt under its execution span."""
    from opentelemetry.trace import SpanKind

    return tr.start_span(
        ex.task_name,
        context=execution_context(ex.execution_key),
        kind=SpanKind.INTERNAL,
        attributes=flyte_attributes(ex, workflow),
        start_time=_ns(started_at),
        record_exception=False,
        set_status_on_exception=False,
    )


def record_attributes(record: AuditRecord) -> dict[str, Any]:
    """Span attributes of an audit record (ids and digests only, never values)."""
    ev = record.event
    attrs: dict[str, Any] = {
        "aios.record_id": record.record_id,
        "aios.seq": record.seq,
        "aios.chain_hash": record.chain_hash,
        "aios.kind": ev.kind,
        "aios.status": ev.status,
        "aios.actor": ev.actor,
    }
    attrs.update({f"aios.input.{k}": v for k, v in ev.inputs.items()})
    attrs.update({f"aios.output.{k}": v for k, v in ev.outputs.items()})
    attrs.update({f"aios.model.{m.name}": f"{m.version}@{m.digest}" for m in ev.models})
    return attrs


def end_task_span(span: Any, record: AuditRecord | None, error: BaseException | None) -> None:
    """Set the outcome (status, exception without its message) and end the span now."""
    from opentelemetry.trace import Status, StatusCode

    if record is not None:
        span.set_attributes(record_attributes(record))
    if error is None:
        span.set_status(Status(StatusCode.OK))
    else:
        kind = f"{type(error).__module__}.{type(error).__qualname__}"
        digest = "sha256:" + hashlib.sha256(str(error).encode("utf-8", "replace")).hexdigest()
        stack = "".join(traceback.format_tb(error.__traceback__))
        span.record_exception(
            error, attributes={"exception.message": f"message withheld ({digest})", "exception.stacktrace": stack}
        )
        span.set_status(Status(StatusCode.ERROR, kind))
    span.end()


_FAILED = {"failed", "deny", "denied", "rejected", "refused", "error"}


def record_span(tr: Any, record: AuditRecord) -> None:
    """A span for a record appended outside a task's own record: a child of the current task span if any."""
    from opentelemetry import trace
    from opentelemetry.trace import Status, StatusCode

    ev, ex = record.event, record.event.execution
    current = trace.get_current_span()
    if current.get_span_context().is_valid:
        ctx = None  # inside a governed task: the task span is the parent
    else:
        ctx = execution_context(ex.execution_key if ex else f"record/{record.record_id}")
    attrs = record_attributes(record)
    if ex is not None:
        attrs.update(flyte_attributes(ex, ex.workflow or ex.launch_plan))
    start = ev.started_at or ev.ended_at or record.recorded_at
    span = tr.start_span(f"aios.{ev.kind}", context=ctx, attributes=attrs, start_time=_ns(start))
    span.set_status(Status(StatusCode.ERROR, ev.status) if ev.status in _FAILED else Status(StatusCode.OK))
    span.end(end_time=max(_ns(start) or 0, _ns(ev.ended_at or record.recorded_at) or 0))


def end_execution_span(tr: Any, ex: ExecutionRef, workflow: str, start: dt.datetime, end: dt.datetime) -> None:
    """Export the execution span itself (local runs, where one process sees the whole execution).

    Only through a provider of this module: its id generator hands out the execution's derived ids.
    """
    from opentelemetry.context import Context
    from opentelemetry.trace import Status, StatusCode

    attrs = {k: v for k, v in flyte_attributes(ex, workflow).items() if not k.startswith("flyte.task")}
    attrs.pop("flyte.attempt", None)
    token = _forced_ids.set((trace_id_for(ex.execution_key), root_span_id_for(ex.execution_key)))
    try:
        span = tr.start_span(workflow, context=Context(), attributes=attrs, start_time=_ns(start))
    finally:
        _forced_ids.reset(token)
    span.set_status(Status(StatusCode.OK))
    span.end(end_time=_ns(end))


def owns(tr: Any) -> bool:
    """Whether ``tr`` comes from a provider of this module (not the application's global one)."""
    return _global_provider() is None and tr is not None
