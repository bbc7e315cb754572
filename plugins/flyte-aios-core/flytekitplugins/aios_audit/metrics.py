"""Business KPIs as OpenTelemetry metrics, next to the traces (the Grafana-ready list is in docs/ops.md).

Provider: the application's global MeterProvider when one is set; otherwise one of our own when metrics are
on (``OTEL_METRICS_EXPORTER`` = ``otlp``/``console``, else the traces exporter in force), exporting every
``OTEL_METRIC_EXPORT_INTERVAL`` ms and once more at exit. Off, every instrument is the API's no-op.

Most figures are derived from the audit records as they are appended (:func:`observe_records`), so the
plugins that write them need no metrics code: quarantine, action, approval request and decision, policy
decision records, and the ``documents`` attribute of a batch's ingest step. Task latency comes from the task
attempts (:func:`task_finished`); cost from :func:`record_cost`, which the document pipeline's ``summarize``
task calls with its batch summary.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from collections.abc import Sequence
from typing import Any

from flytekitplugins.aios_audit.records import AuditRecord
from flytekitplugins.aios_core.settings import Settings

PREFIX = "aios"
_SECONDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600]
_WAIT = [60.0, 300, 900, 1800, 3600, 7200, 14400, 28800, 86400, 172800, 604800]
_USD = [1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 0.1, 1, 10]
# key -> (name after "aios.", unit, description, histogram buckets or None for a counter)
INSTRUMENTS: dict[str, tuple[str, str, str, list[float] | None]] = {
    "task_duration": ("task.duration", "s", "Governed task attempt latency", _SECONDS),
    "processed": ("documents.processed", "{document}", "Documents taken into processing (batch ingest)", None),
    "quarantined": ("documents.quarantined", "{document}", "Documents quarantined, by reason", None),
    "review": ("documents.review", "{request}", "Items routed to human review, by gate", None),
    "acted": ("documents.acted", "{action}", "Actions posted to a system of record", None),
    "approval_wait": ("approval.wait_time", "s", "Time from approval request to decision", _WAIT),
    "denials": ("policy.denials", "{decision}", "Policy denials, by policy id", None),
    "doc_cost": ("document.cost", "USD", "Cost per document", _USD),
    "workflow_cost": ("workflow.cost", "USD", "Cost per workflow execution", None),
    "dropped": ("lineage.events.dropped", "{event}", "OpenLineage events dropped (emission queue full)", None),
}
_lock = threading.Lock()
_instruments: dict[str, Any] = {}
_provider: dict[str, Any] = {}
_memory: Any = None
_requested_at: dict[str, dt.datetime] = {}  # approval request id -> created_at (seen in this process)


def exporter_kind(traces_kind: str) -> str:
    """``OTEL_METRICS_EXPORTER`` when set (``OTEL_SDK_DISABLED`` wins), else the traces exporter in force."""
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return "none"
    kinds = [k.strip() for k in os.environ.get("OTEL_METRICS_EXPORTER", "").split(",") if k.strip()]
    return ",".join(kinds) if kinds else traces_kind


def _reader(kind: str) -> Any:
    global _memory
    from opentelemetry.sdk.metrics.export import (
        ConsoleMetricExporter,
        InMemoryMetricReader,
        PeriodicExportingMetricReader,
    )

    if kind == "memory":
        _memory = InMemoryMetricReader()
        return _memory
    if kind == "console":
        return PeriodicExportingMetricReader(ConsoleMetricExporter())
    if kind != "otlp":
        from flytekitplugins.aios_core.errors import ConfigError

        msg = f"metrics exporter {kind!r} is not supported: use otlp, console or none (OTEL_METRICS_EXPORTER)"
        raise ConfigError(msg)
    from flytekitplugins.aios_audit.otel import otlp_protocol

    if otlp_protocol("METRICS") == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as GrpcExporter

        return PeriodicExportingMetricReader(GrpcExporter())
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

    return PeriodicExportingMetricReader(OTLPMetricExporter())


def meter_provider(traces_kind: str) -> Any | None:
    """The meter provider in force, or ``None`` when metrics are off."""
    from opentelemetry import metrics

    current = metrics.get_meter_provider()
    if type(current).__name__ not in ("_ProxyMeterProvider", "NoOpMeterProvider"):
        return current
    kinds = exporter_kind(traces_kind)
    if kinds in ("", "none"):
        return None
    if kinds in _provider:
        return _provider[kinds]
    with _lock:
        if kinds not in _provider:
            from opentelemetry.sdk.metrics import MeterProvider

            from flytekitplugins.aios_audit.otel import resource

            readers = [_reader(k) for k in kinds.split(",")]
            _provider[kinds] = MeterProvider(metric_readers=readers, resource=resource(), shutdown_on_exit=False)
        return _provider[kinds]


def memory_reader() -> Any:
    """The in-memory metric reader used when the exporter is ``memory`` (tests)."""
    meter_provider("memory")
    return _memory


def instruments(traces_kind: str) -> dict[str, Any] | None:
    """The pack's instruments on the provider in force (made once per provider), or ``None`` when off."""
    provider = meter_provider(traces_kind)
    if provider is None:
        return None
    key = str(id(provider))
    found = _instruments.get(key)
    if found is not None:
        return found
    m = provider.get_meter("flytekitplugins.aios_audit")
    made: dict[str, Any] = {}
    for key_, (name, unit, what, buckets) in INSTRUMENTS.items():
        if buckets is None:
            made[key_] = m.create_counter(f"{PREFIX}.{name}", unit=unit, description=what)
        else:
            made[key_] = m.create_histogram(
                f"{PREFIX}.{name}", unit=unit, description=what, explicit_bucket_boundaries_advisory=buckets
            )
    _instruments[key] = made
    return made


def task_finished(traces_kind: str, attrs: dict[str, Any], seconds: float, ok: bool) -> None:
    """Record one task attempt's latency."""
    inst = instruments(traces_kind)
    if inst is not None:
        inst["task_duration"].record(seconds, {**attrs, "status": "ok" if ok else "error"})


def lineage_dropped(traces_kind: str) -> None:
    """Count one OpenLineage event dropped because the emission queue was full."""
    inst = instruments(traces_kind)
    if inst is not None:
        inst["dropped"].add(1)


def record_cost(per_document_usd: float, documents: int, workflow: str | None, settings: Settings) -> None:
    """Record a batch's cost: the per-document cost (one sample per document) and the workflow's total.

    Cost model (the document pipeline's, ``tasks/documents/report.summarize``): CPU seconds measured per
    document (parse, protect, classify, decide) x ``ProcessingOptions.cost_per_cpu_hour`` / 3600, spread over
    every document of the batch (quarantined ones included): ``BatchSummary.cost_per_document_usd``.

    Args:
        per_document_usd: Cost of one document (USD), e.g. the batch summary's ``cost_per_document_usd``.
        documents: Documents in the batch.
        workflow: Flyte workflow name (the ``flyte.workflow_name`` attribute); ``None``: the running one.
        settings: The caller's settings (their ``otel_exporter`` when no standard OTEL_* variable says).
    """
    from flytekitplugins.aios_audit.otel import exporter_kind

    inst = instruments(exporter_kind(settings.otel_exporter))
    if inst is None or documents <= 0:
        return
    if workflow is None:
        from flytekitplugins.aios_audit.observe import workflow_name
        from flytekitplugins.aios_core.context import current_execution

        workflow = workflow_name(current_execution())
    attrs = {"flyte.workflow_name": workflow}
    for _ in range(min(documents, 10_000)):
        inst["doc_cost"].record(per_document_usd, attrs)
    inst["workflow_cost"].add(per_document_usd * documents, attrs)


def record_approval_wait(seconds: float, decision: str, settings: Settings) -> None:
    """Record one approval's wait (request to decision) measured elsewhere (e.g. across processes)."""
    from flytekitplugins.aios_audit.otel import exporter_kind

    inst = instruments(exporter_kind(settings.otel_exporter))
    if inst is not None:
        inst["approval_wait"].record(max(0.0, seconds), {"decision": decision})


def _when(value: Any) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


def _approval(inst: dict[str, Any], record: AuditRecord) -> None:
    ev = record.event
    if ev.kind == "approval_request":
        request = ev.attributes.get("request") or {}
        inst["review"].add(1, {"gate": str(request.get("gate", ""))})
        created = _when(request.get("created_at"))
        if created is not None and len(_requested_at) < 100_000:
            _requested_at[ev.subject] = created
        return
    created = _requested_at.get(ev.subject)
    decided = _when((ev.attributes.get("decision") or {}).get("decided_at"))
    if created is not None and decided is not None:
        inst["approval_wait"].record(max(0.0, (decided - created).total_seconds()), {"decision": ev.status})


def _one(inst: dict[str, Any], record: AuditRecord) -> None:
    ev = record.event
    if ev.kind == "quarantine":
        inst["quarantined"].add(1, {"reason": str(ev.attributes.get("reason", ""))})
    elif ev.kind == "action" and ev.status == "posted":
        inst["acted"].add(1, {"action": str(ev.attributes.get("action", ""))})
    elif ev.kind in ("approval_request", "approval_decision"):
        _approval(inst, record)
    elif ev.kind == "policy_decision" and ev.status == "deny":
        for d in ev.policy_decisions:
            for pid in d.get("policy_ids") or ["(no policy: default deny)"]:
                inst["denials"].add(1, {"policy.id": str(pid)})
    elif ev.kind == "task" and ev.attributes.get("stage") == "ingest":
        documents = ev.attributes.get("documents")
        if isinstance(documents, int) and documents > 0:
            inst["processed"].add(documents)


_KINDS = frozenset({"quarantine", "action", "approval_request", "approval_decision", "policy_decision", "task"})


def observe_records(traces_kind: str, records: Sequence[AuditRecord]) -> None:
    """Derive the KPIs from appended records (a store listener: cheap, one set look-up per record)."""
    if not any(r.event.kind in _KINDS for r in records):
        return
    inst = instruments(traces_kind)
    if inst is None:
        return
    for record in records:
        if record.event.kind in _KINDS:
            _one(inst, record)


def shutdown() -> None:
    """Export what is pending and shut the providers of this module down (at exit)."""
    with _lock:
        providers = list(_provider.values())
        _provider.clear()
        _instruments.clear()
    for p in providers:
        p.shutdown()
