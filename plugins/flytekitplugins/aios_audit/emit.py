"""Best-effort emitters attached to the store returned by ``audit_log()``.

The audit record is the source of truth: emitters run after the durable commit, and a failing emitter
logs a warning and loses nothing (``aios lineage`` can always rebuild lineage from the log).

OpenLineage events for a local file (``file:PATH``, the default) are built directly as JSON and appended
inline: tens of microseconds, and no thread competing with the task for the GIL. Network transports (HTTP
to Marquez) run on one background thread per process (:class:`BackgroundEmitter`): an append returns once
the record is durable, not once its event is posted. :func:`flush` waits for that queue (tests, CLI); it also
runs at interpreter exit, so a short-lived ``pyflyte run`` process still sends every event. The queue is
bounded: when it is full the caller emits synchronously instead of dropping events.
"""

from __future__ import annotations

import atexit
import logging
import os
import queue
import threading
import weakref
from collections.abc import Callable, Sequence
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
        from flytekitplugins.aios_audit.lineage_events import run_event_dict

        for record in records:
            try:
                self.transport.emit(run_event_dict(record))
            except Exception as e:
                log.warning("audit: OpenLineage emit of record %s to %s failed: %s", record.seq, self.url, e)

    def __repr__(self) -> str:
        return f"OpenLineageEmitter({self.url!r})"


class BackgroundEmitter:
    """Runs a listener on a daemon thread; records are handed over through a bounded queue."""

    def __init__(self, inner: Callable[[Sequence[AuditRecord]], None], maxsize: int = 10_000) -> None:
        self.inner = inner
        self.maxsize = maxsize
        self._pid = -1
        self._queue: queue.Queue[Sequence[AuditRecord]] = queue.Queue(maxsize)
        self._lock = threading.Lock()
        _live.add(self)

    def _ensure_thread(self) -> None:
        # after fork() the child has the queue object but not the thread: start its own
        if self._pid == os.getpid():
            return
        with self._lock:
            if self._pid != os.getpid():
                self._queue = queue.Queue(self.maxsize)
                threading.Thread(target=self._run, name="aios-lineage-emitter", daemon=True).start()
                self._pid = os.getpid()

    def _run(self) -> None:
        q = self._queue
        while True:
            records = q.get()
            try:
                self.inner(records)
            finally:
                q.task_done()

    def __call__(self, records: Sequence[AuditRecord]) -> None:
        self._ensure_thread()
        try:
            self._queue.put_nowait(list(records))
        except queue.Full:
            self.inner(records)

    def flush(self) -> None:
        """Block until every handed-over record was emitted (or failed with a warning)."""
        if self._pid == os.getpid():
            self._queue.join()

    def __repr__(self) -> str:
        return f"BackgroundEmitter({self.inner!r})"


_live: weakref.WeakSet[BackgroundEmitter] = weakref.WeakSet()


def flush() -> None:
    """Wait until every background emitter of this process has emitted what it was given."""
    for emitter in list(_live):
        emitter.flush()


atexit.register(flush)


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
            emitter = OpenLineageEmitter(settings.lineage_url)
            # a local file append costs tens of microseconds: done inline, no thread to compete with the task for
            # the GIL; network transports (Marquez) run on the background thread, off the critical path
            remote = not settings.lineage_url.startswith("file:")
            store.add_listener(BackgroundEmitter(emitter) if remote else emitter)
        except Exception as e:
            log.warning("audit: OpenLineage emitter disabled: %s", e)
    if settings.otel_exporter != "none":
        store.add_listener(SpanEmitter(settings.otel_exporter))
