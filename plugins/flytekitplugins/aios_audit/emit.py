"""Best-effort emitters attached to the store returned by ``audit_log()``.

The audit record is the source of truth: emitters run after the durable commit, and a failing emitter
logs a warning and loses nothing (``aios lineage`` can always rebuild lineage from the log).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from flytekitplugins.aios_audit.records import AuditRecord
from flytekitplugins.aios_audit.stores import AuditStore
from flytekitplugins.aios_core.settings import Settings

log = logging.getLogger(__name__)


class OpenLineageEmitter:
    """Sends each record as a RunEvent through an openlineage-python transport."""

    def __init__(self, url: str) -> None:
        from flytekitplugins.aios_audit.lineage_events import make_transport

        self.url = url
        self.transport: Any = make_transport(url)

    def __call__(self, records: Sequence[AuditRecord]) -> None:
        from flytekitplugins.aios_audit.lineage_events import to_run_event

        for record in records:
            try:
                self.transport.emit(to_run_event(record))
            except Exception as e:
                log.warning("audit: OpenLineage emit of record %s to %s failed: %s", record.seq, self.url, e)

    def __repr__(self) -> str:
        return f"OpenLineageEmitter({self.url!r})"


class SpanEmitter:
    """Exports each record as an OpenTelemetry span (one trace per Flyte execution)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def __call__(self, records: Sequence[AuditRecord]) -> None:
        from flytekitplugins.aios_audit.otel import emit_span

        for record in records:
            try:
                emit_span(record, self.kind)
            except Exception as e:
                log.warning("audit: OpenTelemetry span for record %s failed: %s", record.seq, e)

    def __repr__(self) -> str:
        return f"SpanEmitter({self.kind!r})"


def attach_emitters(store: AuditStore, settings: Settings) -> None:
    """Attach the emitters ``settings`` ask for (``lineage_url``, ``otel_exporter``); a bad URL only warns."""
    if settings.lineage_url not in ("", "none"):
        try:
            store.add_listener(OpenLineageEmitter(settings.lineage_url))
        except Exception as e:
            log.warning("audit: OpenLineage emitter disabled: %s", e)
    if settings.otel_exporter != "none":
        store.add_listener(SpanEmitter(settings.otel_exporter))
