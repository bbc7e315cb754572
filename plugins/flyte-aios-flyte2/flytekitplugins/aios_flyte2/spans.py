"""OpenTelemetry spans of governed Flyte 2 tasks that join the traces flyteplugins-otel produces.

flyteplugins-otel (an observer of the flyte SDK) makes one span per task attempt with the attributes
``flyte.action_name``, ``flyte.run_name``, ``flyte.project``, ``flyte.domain``, ``flyte.org`` and
``flyte.task_name``; its root spans share a trace id derived from the run (BLAKE2b of org, project, domain and
run name, personalised ``flyte.otel.run.v1``). A governed task's span here:

* is a child of the current span when one is active (flyteplugins-otel's task span runs around the task body);
* otherwise lands in the same trace: its parent is a remote span context carrying that derived trace id.

flyteplugins-otel is not imported (it need not be installed). Tracing follows the pack's settings
(``OTEL_TRACES_EXPORTER`` / ``AIOS_OTEL_EXPORTER``, or the application's global provider).
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from typing import Any

from flytekitplugins.aios_core.context import ExecutionRef

_RUN_NAMESPACE = b"flyte.otel.run.v1"


def trace_id_for_run(org: str, project: str, domain: str, run_name: str) -> int:
    """The trace id flyteplugins-otel gives every span of a run (never 0)."""
    digest = hashlib.blake2b(
        b"\x00".join(p.encode("utf-8") for p in (org, project, domain, run_name)),
        digest_size=16,
        person=_RUN_NAMESPACE[:16],
    ).digest()
    return int.from_bytes(digest, "big") or 1


def _run_span_id(trace_id: int) -> int:
    return int.from_bytes(hashlib.sha256(b"aios-flyte2-run:" + trace_id.to_bytes(16, "big")).digest()[:8], "big") or 1


def span_attributes(ex: ExecutionRef, org: str = "", run_name: str = "") -> dict[str, Any]:
    """flyteplugins-otel's attribute names for the action, plus the attempt and task version (``run_name``: Flyte's
    own run name, which a local run's execution name carries after the pack's local run id)."""
    attrs: dict[str, Any] = {
        "flyte.action_name": ex.node_id,
        "flyte.run_name": run_name or ex.name,
        "flyte.project": ex.project,
        "flyte.domain": ex.domain,
        "flyte.task_name": ex.task_name,
        "flyte.attempt": ex.retry_attempt,
    }
    if org:
        attrs["flyte.org"] = org
    if ex.task_version:
        attrs["flyte.task_version"] = ex.task_version
    return attrs


def _parent_context(run: tuple[str, str, str, str]) -> Any:
    from opentelemetry import trace
    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

    if trace.get_current_span().get_span_context().is_valid:
        return None  # the current context: under flyteplugins-otel's task span (or the caller's span)
    trace_id = trace_id_for_run(*run)
    parent = SpanContext(trace_id, _run_span_id(trace_id), is_remote=True, trace_flags=TraceFlags(1))
    return trace.set_span_in_context(NonRecordingSpan(parent))


@contextlib.contextmanager
def task_span(ex: ExecutionRef, run: tuple[str, str, str, str], exporter: str) -> Iterator[Any | None]:
    """A span around one governed task attempt (``None`` when tracing is off); status set by the caller.

    Args:
        ex: the attempt's identity (the audit records' execution).
        run: the run as flyteplugins-otel hashes it: (org, project, domain, run name) as the ActionID has them
            (project and domain are empty in local mode, where the records say ``local``/``development``).
        exporter: the task's ``settings.otel_exporter``.
    """
    from flytekitplugins.aios_audit.otel import tracer

    tr = tracer(exporter)
    if tr is None:
        yield None
        return
    from opentelemetry import trace
    from opentelemetry.trace import SpanKind

    span = tr.start_span(
        f"aios.governed {ex.task_name}",
        context=_parent_context(run),
        kind=SpanKind.INTERNAL,
        attributes=span_attributes(ex, run[0], run[3]),
        record_exception=False,
        set_status_on_exception=False,
    )
    with trace.use_span(span, end_on_exit=True, record_exception=False, set_status_on_exception=False):
        yield span


def finish_span(span: Any | None, record_id: str, error: BaseException | None) -> None:
    """Stamp the outcome: the task record's id, OK or ERROR (the message withheld: it may quote inputs)."""
    if span is None:
        return
    from opentelemetry.trace import Status, StatusCode

    if record_id:
        span.set_attribute("aios.record_id", record_id)
    if error is None:
        span.set_status(Status(StatusCode.OK))
        return
    kind = f"{type(error).__module__}.{type(error).__qualname__}"
    span.set_attribute("aios.error_type", kind)
    span.set_status(Status(StatusCode.ERROR, kind))


__all__ = ["finish_span", "span_attributes", "task_span", "trace_id_for_run"]
