"""Observation of one governed task attempt: OpenLineage START and COMPLETE/FAIL, the task span, its latency.

``task.run_audited`` wraps the body in :func:`observe_task`. On the task thread this costs a few tens of
microseconds (a span start, a JSON array written to a pipe); OpenLineage events are built and sent by the
emitter process (``emit_process.py``).
Nothing here can fail the task: an observation error is logged and the task goes on.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import datetime as dt
import logging
import os
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from types import FrameType
from typing import Any

from flytekitplugins.aios_audit.records import AuditRecord
from flytekitplugins.aios_audit.scope import AuditScope
from flytekitplugins.aios_core.context import ExecutionRef, is_local_run
from flytekitplugins.aios_core.settings import Settings

log = logging.getLogger(__name__)
_finishing: contextvars.ContextVar[bool] = contextvars.ContextVar("aios_finishing", default=False)
_local: dict[str, list[Any]] = {}  # local execution|client|tracer -> [ex, workflow, start, end, failed, client, tracer]
_local_lock = threading.Lock()
ADHOC_WORKFLOW = "flyte.local_tasks"  # parent job of tasks called outside any workflow (local only)


def finishing() -> bool:
    """Whether the record being appended is the task attempt's own (its span is the task span)."""
    return _finishing.get()


@contextlib.contextmanager
def appending_own_record() -> Iterator[None]:
    """Mark the append of the attempt's own record (store listeners then skip a separate span for it)."""
    token = _finishing.set(True)
    try:
        yield
    finally:
        _finishing.reset(token)


@dataclasses.dataclass
class Observation:
    """What :func:`observe_task` tracks; the task sets ``record`` and ``outputs`` when it has them."""

    settings: Settings
    client: Any
    tracer: Any
    kind: str
    attempt: Any
    execution: ExecutionRef
    workflow: str
    span: Any = None
    t0: float = 0.0
    record: AuditRecord | None = None
    outputs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    metrics_on: bool = True


def _local_workflow() -> str:
    """Name of the outermost flytekit workflow running on this thread's stack (local runs), else ""."""
    try:
        from flytekit.core.workflow import WorkflowBase
    except ImportError:
        return ""
    name = ""
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        if "self" in frame.f_code.co_varnames[:1]:
            obj = frame.f_locals.get("self")
            if isinstance(obj, WorkflowBase):
                name = obj.name
        frame = frame.f_back
    return name


def workflow_name(ex: ExecutionRef) -> str:
    """The Flyte workflow of an execution (cluster env), the local workflow running, or :data:`ADHOC_WORKFLOW`."""
    return ex.workflow or ex.launch_plan or _local_workflow() or ADHOC_WORKFLOW


_ENV_KEYS: tuple[str, ...] = ("OPENLINEAGE_URL", "OPENLINEAGE_CONFIG", "OPENLINEAGE_DISABLED", "OTEL_SDK_DISABLED")
_ENV_KEYS += ("OTEL_TRACES_EXPORTER", "OTEL_METRICS_EXPORTER")
_resolved: dict[tuple[Any, ...], tuple[Settings, Any, Any, str, bool]] = {}


def _destinations(settings: Settings) -> tuple[Settings, Any, Any, str, bool]:
    """(settings, lineage client, tracer, exporter kind, metrics on), cached per settings and environment."""
    from opentelemetry import metrics as otel_metrics
    from opentelemetry import trace

    env = os.environ
    key = (id(settings), *(env.get(k) for k in _ENV_KEYS), os.getcwd())
    key += (id(trace.get_tracer_provider()), id(otel_metrics.get_meter_provider()))
    found = _resolved.get(key)
    if found is not None and found[0] is settings:
        return found
    from flytekitplugins.aios_audit import emit, metrics, otel

    kind = otel.exporter_kind(settings.otel_exporter)
    made = (
        settings,
        emit.lineage_client(settings),
        otel.tracer(settings.otel_exporter),
        kind,
        metrics.meter_provider(kind) is not None,
    )
    if len(_resolved) > 64:
        _resolved.clear()
    _resolved[key] = made
    return made


def _start(scope: AuditScope, values: Mapping[str, Any], doc: str, settings: Settings) -> Observation | None:
    from flytekitplugins.aios_audit import emit, otel
    from flytekitplugins.aios_audit.recorder import execution_ref

    _, client, tr, kind, metrics_on = _destinations(settings)
    if os.environ.get("RANK", "0") != "0":  # a distributed task (Elastic): one lineage run, from rank 0
        client = None
    if client is None and tr is None and not metrics_on:
        return None
    ex = execution_ref(scope.task_name)
    workflow = workflow_name(ex)
    _local_started(ex, workflow, scope.started_at, client, tr, settings)
    attempt = None
    if client is not None:
        from flytekitplugins.aios_audit import lineage_events as le

        attempt = le.TaskAttempt.of(ex, workflow, scope.started_at, doc, inputs=le.datasets(values, scope.inputs))
        emit.send(client, le.start_message(attempt), settings)
    obs = Observation(settings, client, tr, kind, attempt, ex, workflow, metrics_on=metrics_on)
    obs.t0 = time.perf_counter()
    if tr is not None:
        obs.span = otel.start_task_span(tr, ex, workflow, scope.started_at)
    return obs


def _local_started(
    ex: ExecutionRef, workflow: str, started: dt.datetime, client: Any, tr: Any, settings: Settings
) -> None:
    """The first task of a local execution starts the execution's own run (START event; span at the end)."""
    key = f"{ex.execution_key}|{id(client)}|{id(tr)}"  # per destination: settings may change in one process
    if not is_local_run(ex.name) or key in _local:
        return
    with _local_lock:
        if key in _local:
            return
        from flytekitplugins.aios_audit.otel import owns

        # the execution span needs the derived ids only a provider of ours hands out: not the application's
        _local[key] = [ex, workflow, started, started, False, client, tr if owns(tr) else None]
    if client is not None:
        from flytekitplugins.aios_audit import emit
        from flytekitplugins.aios_audit.lineage_events import workflow_message

        emit.send(client, workflow_message(ex, workflow, "START", started), settings)


def _finish(obs: Observation, error: BaseException | None) -> None:
    from flytekitplugins.aios_audit import emit, metrics, otel

    seconds = time.perf_counter() - obs.t0
    attempt = obs.attempt
    if attempt is not None:
        from flytekitplugins.aios_audit import lineage_events as le

        record = obs.record
        attempt.outputs = le.datasets(obs.outputs, record.event.outputs if record is not None else {})
        why = None
        if error is not None:  # the message may quote input data: only its digest leaves the task
            why = [f"{type(error).__module__}.{type(error).__qualname__}", le.error_digest(str(error))]
        facts = le.record_facts(record) if record is not None else None
        ended = dt.datetime.now(dt.UTC).isoformat()
        emit.send(obs.client, le.end_message(attempt, facts, why, ended), obs.settings)
    entry = _local.get(f"{obs.execution.execution_key}|{id(obs.client)}|{id(obs.tracer)}")
    if entry is not None:
        entry[3] = dt.datetime.now(dt.UTC)
        entry[4] = entry[4] or error is not None
    if obs.span is not None:
        otel.end_task_span(obs.span, obs.record, error)
    if obs.metrics_on:
        ex = obs.execution
        attrs = {"flyte.task_name": ex.task_name, "flyte.workflow_name": obs.workflow}
        attrs.update({"flyte.project": ex.project, "flyte.domain": ex.domain})
        metrics.task_finished(obs.kind, attrs, seconds, error is None)


@contextlib.contextmanager
def observe_task(scope: AuditScope, values: Mapping[str, Any], doc: str = "") -> Iterator[Observation | None]:
    """Observe the attempt whose body runs inside: START now, the outcome when the block ends.

    Args:
        scope: The attempt's audit scope (task name, start time, input digests).
        values: The native inputs (datasets are named from those that have a storage location).
        doc: The task's docstring (the job's documentation facet).
    """
    settings = scope.settings  # resolved once by the task's entry point
    try:
        obs = _start(scope, values, doc, settings)
    except Exception as e:  # its type only: an exception's text can quote a URL's userinfo (urllib's port error)
        log.warning("audit: could not start observing task %s (%s)", scope.task_name, type(e).__name__)
        obs = None
    if obs is None:
        yield None
        return
    token = None
    if obs.span is not None:
        from opentelemetry import context, trace

        token = context.attach(trace.set_span_in_context(obs.span))
    error: BaseException | None = None
    try:
        yield obs
    except BaseException as e:
        error = e
        raise
    finally:
        if token is not None:
            from opentelemetry import context

            context.detach(token)
        try:
            _finish(obs, error)
        except Exception as e:  # its type only, as at the start: the outputs' locations are read there too
            log.warning("audit: could not finish observing task %s (%s)", scope.task_name, type(e).__name__)


def end_local_executions() -> None:
    """Send COMPLETE (or FAIL) for every local execution of this process and export its execution span."""
    with _local_lock:
        entries = list(_local.values())
        _local.clear()
    if not entries:  # nothing to end: import nothing (this runs at interpreter exit)
        return
    from flytekitplugins.aios_audit import otel
    from flytekitplugins.aios_audit.lineage_events import event_from_message, workflow_message

    for ex, workflow, start, end, failed, client, tr in entries:
        try:
            if client is not None:
                client.emit(event_from_message(workflow_message(ex, workflow, "FAIL" if failed else "COMPLETE", end)))
            if tr is not None:
                otel.end_execution_span(tr, ex, workflow, start, end)
        except FileNotFoundError as e:  # the lineage file's folder is gone (a removed temp dir): nowhere to write
            log.debug("audit: local execution %s not ended in a removed file: %s", ex.execution_key, e)
        except Exception as e:
            log.warning("audit: could not end local execution %s: %s", ex.execution_key, e)
