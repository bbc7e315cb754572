"""Lineage, traces and metrics of governed tasks, off the task's critical path.

The audit record is the source of truth: emission is best-effort and never fails a task or loses a record
(``aios lineage`` can always rebuild lineage from the log).

* OpenLineage goes through openlineage-python's own ``OpenLineageClient`` and transport factory, so
  ``OPENLINEAGE_URL`` (+ ``OPENLINEAGE_API_KEY``, ``OPENLINEAGE_ENDPOINT``), ``OPENLINEAGE_CONFIG`` /
  ``openlineage.yml``, ``OPENLINEAGE__TRANSPORT__*`` and ``OPENLINEAGE_DISABLED`` work as everywhere else
  (http with auth, kafka, console, file, composite...). Without any of them the ``lineage_url`` setting
  applies (``file:PATH``, ``http(s)://`` or ``none``).
* The task thread only writes a small description of the attempt (a JSON array) to the pipe of an emitter
  process (``emit_process.py``), which builds the events and sends them through its own ``OpenLineageClient``
  made from the same configuration: their Python work never holds the task's GIL. Should that process not
  start, a daemon thread of the task's process does the same. Either queue is bounded
  (``lineage_queue_size``): when it is full the event is dropped, counted (:func:`dropped`, metric
  ``aios.lineage.events.dropped``) and logged, never blocking the task. :func:`flush` waits for both; it
  runs at exit and in ``close_all()``.
* Spans and metrics: see ``otel.py`` and ``metrics.py``.
"""

from __future__ import annotations

import atexit
import functools
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from flytekitplugins.aios_audit.emit_process import EmitterProcess
from flytekitplugins.aios_audit.records import AuditRecord
from flytekitplugins.aios_audit.stores import AuditStore
from flytekitplugins.aios_core.errors import ConfigError
from flytekitplugins.aios_core.settings import Settings, UntrustedFile, local_path_problem, read_local_yaml

log = logging.getLogger(__name__)
_STANDARD_VARS = ("OPENLINEAGE_URL", "OPENLINEAGE_CONFIG", "OPENLINEAGE_DISABLED")
_SPAN_QUEUE = 10_000  # spans in flight to the emitter process before they are dropped (counted, logged)


class _Worker:
    """One daemon thread per process running queued jobs; a full queue drops (and counts) instead of blocking."""

    def __init__(self) -> None:
        self.maxsize = 10_000
        self.dropped = 0
        self.failed = 0
        self._pid = -1
        self._queue: queue.Queue[Callable[[], None]] = queue.Queue(self.maxsize)
        self._lock = threading.Lock()

    def _ensure_thread(self, maxsize: int) -> None:
        if self._pid == os.getpid():  # after fork() the child has the queue but not the thread
            return
        with self._lock:
            if self._pid != os.getpid():
                self.maxsize = maxsize
                self._queue = queue.Queue(maxsize)
                threading.Thread(target=self._run, name="aios-lineage-emitter", daemon=True).start()
                self._pid = os.getpid()

    def _run(self) -> None:
        q = self._queue
        while True:
            job = q.get()
            time.sleep(0)  # let the task thread run first if it is waiting for the GIL
            try:
                job()
            except Exception as e:  # a job logs its own failures; this is the last guard of the thread
                self.failed += 1
                log.warning("audit: lineage emission failed: %s", e)
            finally:
                q.task_done()

    def submit(self, job: Callable[[], None], maxsize: int) -> bool:
        self._ensure_thread(maxsize)
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            self.dropped += 1
            _warn_dropped(maxsize)
            return False
        return True

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued job ran (or ``timeout`` s passed: False)."""
        if self._pid != os.getpid():
            return True
        q = self._queue
        end = None if timeout is None else time.monotonic() + timeout
        with q.all_tasks_done:
            while q.unfinished_tasks:
                left = None if end is None else end - time.monotonic()
                if left is not None and left <= 0:
                    return False
                q.all_tasks_done.wait(left)
        return True


def _warn_dropped(maxsize: int) -> None:
    n = dropped()
    if n == 1 or n % 1000 == 0:
        log.warning(
            "audit: OpenLineage queue full (%d events): %d event(s) dropped so far; the audit log keeps "
            "every record (aios lineage). Raise lineage_queue_size or check the lineage backend",
            maxsize,
            n,
        )


_worker = _Worker()
_process = EmitterProcess()


def dropped() -> int:
    """OpenLineage events dropped in this process because the emission queue was full."""
    return _worker.dropped + _process.dropped


def flush() -> None:
    """Wait until every queued OpenLineage event of this process was sent (or failed with a warning)."""
    _process.flush()
    _worker.flush()


def standard_lineage_config() -> bool:
    """Whether OpenLineage is configured the standard way (env, ``openlineage.yml``), not by the pack setting. An
    ``openlineage.yml`` of the current folder counts even where :func:`lineage_config_file` refuses it: emission is
    then off with a warning, not sent where the ``lineage_url`` setting says behind the user's back."""
    if any(os.environ.get(v) for v in _STANDARD_VARS) or any(k.startswith("OPENLINEAGE__") for k in os.environ):
        return True
    home = os.path.expanduser("~/.openlineage/openlineage.yml")
    return os.path.isfile("openlineage.yml") or os.path.isfile(home)


def _readable(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.R_OK)


def lineage_config_file() -> str | None:
    """The ``openlineage.yml`` openlineage-python reads, found where it looks (``OPENLINEAGE_CONFIG``, the current
    folder, ``~/.openlineage``), or None; a ConfigError where it is the current folder's and
    :func:`.settings.local_path_problem` finds it may be another local user's.

    Review R9: from a shared folder another user's ``openlineage.yml`` sent every lineage event of the pack's
    tasks (job, run and dataset names) to a transport of theirs, and may name a transport class for the factory to
    import; ``./config`` is checked the same way (:mod:`.settings`). ``OPENLINEAGE_CONFIG`` (the caller's explicit
    choice) and the user's own ``~/.openlineage`` are taken as they are.
    """
    explicit = os.environ.get("OPENLINEAGE_CONFIG")
    if explicit and _readable(explicit):
        return explicit
    local = _local_config_path()
    if _readable(local):
        problem = local_path_problem(Path(local))
        if problem is not None:
            raise _local_refused(problem)
        return local
    home = os.path.join(os.path.expanduser("~/.openlineage"), "openlineage.yml")
    return home if _readable(home) else None


def _local_config_path() -> str:
    return os.path.join(os.getcwd(), "openlineage.yml")


def _local_refused(problem: str) -> ConfigError:
    msg = (
        f"refusing the current folder's openlineage.yml: {problem}, so another local user may have put it there to "
        "send this process's lineage events elsewhere. Name the file you mean with OPENLINEAGE_CONFIG, or run from "
        "another folder; if this one is yours, make it yours alone (chown, chmod go-w)"
    )
    return ConfigError(msg)


def _local_config_content(path: str) -> dict[str, Any]:
    """The current folder's ``openlineage.yml`` as a mapping, checked on the file opened (another user able to write
    the folder could swap the name after :func:`lineage_config_file` looked): a ConfigError where it is refused."""
    try:
        data = read_local_yaml(Path(path), "OpenLineage config file")
    except UntrustedFile as e:
        raise _local_refused(e.problem) from None
    if data is not None and not isinstance(data, dict):
        raise ConfigError(f"OpenLineage config file {path} must hold a mapping, got {type(data).__name__}")
    return data or {}


@functools.cache
def _client_class() -> Any:
    """openlineage-python's ``OpenLineageClient`` with its config file lookup replaced by :func:`lineage_config_file`
    (its own reads ``./openlineage.yml`` whoever put it there, also under a transport or config given to it)."""
    from openlineage.client import OpenLineageClient

    class Client(OpenLineageClient):
        @staticmethod
        def _find_yaml_config_path() -> str | None:
            return lineage_config_file()

        @staticmethod
        def _get_config_file_content(config_path: str) -> dict[str, Any]:
            explicit = os.environ.get("OPENLINEAGE_CONFIG")
            if not (explicit and _readable(explicit)) and config_path == _local_config_path():
                return _local_config_content(config_path)
            return OpenLineageClient._get_config_file_content(config_path)

    return Client


_clients: dict[tuple[Any, ...], Any] = {}
_clients_lock = threading.Lock()


def _client_key(settings: Settings) -> tuple[Any, ...]:
    standard = tuple((k, v) for k, v in os.environ.items() if k.startswith("OPENLINEAGE"))
    return (settings.lineage_url, standard, os.getcwd())


def _make_client(url: str) -> Any | None:
    client_class = _client_class()  # openlineage-python's OpenLineageClient, its config file lookup checked

    if os.environ.get("OPENLINEAGE_DISABLED", "").strip().lower() == "true":
        return None
    if standard_lineage_config():
        from flytekitplugins.aios_core.redact import remember

        if os.environ.get("OPENLINEAGE_API_KEY"):  # masked in every message of this process from now on
            remember(f"api_key={os.environ['OPENLINEAGE_API_KEY']}")
        client = client_class()
        return None if client.transport.kind == "noop" else client
    if url in ("", "none"):
        return None
    if url.startswith("file:"):
        from flytekitplugins.aios_audit.lineage_events import JsonLinesTransport

        return client_class(transport=JsonLinesTransport(url.removeprefix("file:")))
    if url.startswith(("http://", "https://")):
        return client_class(config={"transport": {"type": "http", "url": url, "timeout": 5.0}})
    from flytekitplugins.aios_core.redact import mask_url

    fix = "use file:PATH, http(s)://HOST (Marquez) or none (AIOS_LINEAGE_URL)"
    msg = f"lineage_url {mask_url(url)!r} is invalid: {fix}"
    raise ConfigError(msg)


def lineage_client(settings: Settings) -> Any | None:
    """The process's OpenLineageClient for these settings and ``OPENLINEAGE*`` environment, or ``None`` (off)."""
    key = _client_key(settings)
    found = _clients.get(key, False)
    if found is not False:
        return found
    with _clients_lock:
        if key not in _clients:
            if len(_clients) >= 64:  # settings changing in one long process (tests): forget the oldest
                del _clients[next(iter(_clients))]
            try:
                _clients[key] = _make_client(settings.lineage_url)
            except Exception as e:
                from flytekitplugins.aios_core.redact import mask_text

                log.warning("audit: OpenLineage emission disabled: %s", mask_text(e))
                _clients[key] = None
        return _clients[key]


def _send(client: Any, build: Callable[[], Any]) -> None:
    try:
        event = build()
        time.sleep(0)  # hand the GIL to a waiting task thread between building and serializing (its p99)
        client.emit(event)
    except Exception as e:
        from flytekitplugins.aios_core.redact import mask_text

        _worker.failed += 1
        log.warning("audit: OpenLineage emit through %s failed: %s", client.transport.kind, mask_text(e))


def forward_span(processor: Any, message: list[Any]) -> bool | None:
    """Hand an ended span to the emitter process: True queued, False dropped (queue full), None no process."""
    if _process.broken:
        return None
    ok = _process.send(processor, f"otel:{processor.kind}", message, _SPAN_QUEUE, processor.resource_attributes)
    return None if _process.broken else ok


def _count_dropped(settings: Settings) -> None:
    from flytekitplugins.aios_audit.metrics import lineage_dropped
    from flytekitplugins.aios_audit.otel import exporter_kind

    lineage_dropped(exporter_kind(settings.otel_exporter))


def submit(client: Any, build: Callable[[], Any], settings: Settings) -> None:
    """Queue ``client.emit(build())`` for the emitter thread; count and log it when the queue is full."""
    if not _worker.submit(lambda: _send(client, build), settings.lineage_queue_size):
        _count_dropped(settings)


def send(client: Any, message: list[Any], settings: Settings) -> None:
    """Queue the event a ``lineage_events`` message describes for ``client`` (emitter process, else thread).

    The task thread's whole cost: one JSON array written to a pipe. Dropped (counted, logged, metric) when
    ``lineage_queue_size`` events are in flight; never blocks.
    """
    if _process.broken:
        from flytekitplugins.aios_audit.lineage_events import event_from_message

        submit(client, lambda: event_from_message(message), settings)
    elif not _process.send(client, settings.lineage_url, message, settings.lineage_queue_size):
        if _process.broken:  # it could not start: this event goes by the thread, like the next ones
            send(client, message, settings)
            return
        _process.dropped += 1
        _warn_dropped(settings.lineage_queue_size)
        _count_dropped(settings)


class RecordObserver:
    """Store listener: metrics from every record, a span for records that are not a task attempt's own."""

    def __init__(self, otel_exporter: str) -> None:
        self.otel_exporter = otel_exporter

    def __call__(self, records: Sequence[AuditRecord]) -> None:
        from flytekitplugins.aios_audit import metrics, otel
        from flytekitplugins.aios_audit.observe import finishing

        kind = otel.exporter_kind(self.otel_exporter)
        metrics.observe_records(kind, records)
        tr = otel.tracer(self.otel_exporter)
        if tr is None or finishing():  # a task attempt's own record: its span is the task span
            return
        for record in records:
            otel.record_span(tr, record)

    def __repr__(self) -> str:
        return f"RecordObserver({self.otel_exporter!r})"


def attach_emitters(store: AuditStore, settings: Settings) -> None:
    """Attach the per-record observer (metrics, spans); task attempts are observed by ``observe.py``."""
    store.add_listener(RecordObserver(settings.otel_exporter))


EXIT_LIMIT_S = 60.0
"""Seconds a process may spend at exit sending its lineage events, spans and metrics, all steps together, while its
backend takes them. Each step had a bound of its own (60 s, 30 s twice, 5 s, then the OTel providers' 30 s and the
exporters' retries), so a backend that accepted connections and never answered held a task process 140 s after its
0.3 s body (every pod of a pipeline paid it, one after the other). What is not sent is dropped and said so; the
audit log keeps every record."""
EXIT_STALL_S = 5.0
"""At exit, seconds without one queued event handled after which the backend counts as not taking any."""
EXIT_GRACE_S = 2.0
"""Seconds left, all together, to the steps after the queue stalled (the executions' own events, the clients, the
OTel providers): a backend that took nothing for :data:`EXIT_STALL_S` gets no more."""


def _within(seconds: float, step: Callable[[], object]) -> bool:
    """Run ``step`` on a daemon thread and wait at most ``seconds`` (an OpenLineage emit retries a hung backend for
    half a minute, a provider's shutdown takes no deadline); False when it had not ended by then."""
    t = threading.Thread(target=step, name="aios-exit-flush", daemon=True)
    t.start()
    t.join(max(seconds, 0.0))
    return not t.is_alive()


def shutdown() -> None:
    """At exit: end local executions, send every queued event, flush and shut down the OTel providers, within
    :data:`EXIT_LIMIT_S` while the backend takes events and :data:`EXIT_STALL_S` plus :data:`EXIT_GRACE_S` once it
    takes none: an unreachable or hung backend must not hold the pod."""
    from flytekitplugins.aios_audit import metrics, otel
    from flytekitplugins.aios_audit.observe import end_local_executions

    end = time.monotonic() + EXIT_LIMIT_S

    def left() -> float:
        return max(end - time.monotonic(), 0.0)

    done = True
    try:
        done &= _process.flush(left(), stall=EXIT_STALL_S)  # the tasks' events first
        if not done:  # the backend takes nothing: what follows gets the grace, together
            end = min(end, time.monotonic() + EXIT_GRACE_S)
        done &= _worker.flush(left())
        done &= _within(left(), end_local_executions)  # then the executions' own COMPLETE (and execution spans)
        _process.close(left())  # the emitter process sends what it was handed, then ends (killed at the deadline)
        clients = {id(c): c for c in _clients.values() if c is not None}.values()
        done &= _within(left(), lambda: [client.close(5.0) for client in clients])
    finally:
        done &= _within(left(), otel.shutdown)
        done &= _within(left(), metrics.shutdown)
        if not done:
            log.warning(
                "audit: lineage events, spans or metrics the backend did not take at exit were dropped; the audit "
                "log keeps every record (aios lineage)"
            )


atexit.register(shutdown)
