"""The emitter process: OpenLineage events and OTLP spans are built, encoded and sent outside the task's process.

Building a RunEvent (attrs objects, validators), ``OpenLineageClient.emit`` (environment and tag facets) and
serializing it (``Serde``) cost about a millisecond of Python per task attempt. On a thread of the task's
process that work holds the GIL the task needs, which is what a task's latency p99 pays. So, as Airflow's
OpenLineage listener does, the events are emitted by another process: one per task process, started on
first use (``python -m flytekitplugins.aios_audit.emit_process``), fed through a pipe.

* The task thread writes one length-prefixed JSON message (:mod:`lineage_events`: ``start_message`` ...)
  to the pipe, without blocking (a few microseconds). What a full pipe does not take waits in an outbox that
  a thread writes as the pipe drains (that thread exists only once the pipe was full).
* The queue is bounded: at most ``lineage_queue_size`` messages in flight (queued, not yet handled).
  Beyond that the message is dropped, counted (``dropped``) and reported by the caller (log warning,
  metric ``aios.lineage.events.dropped``); so is what was in flight when the process died.
* The process builds each event and emits it through an ``OpenLineageClient`` made exactly as in the task's
  process (``emit._make_client``) from the task process's environment, working directory and
  ``lineage_url`` (a *destination*, sent once). Progress (messages handled, emits failed, the last
  failure's text) is shared in a small memory-mapped file; failures are logged by the task's process.
* Spans of the pack's own TracerProvider with the ``otlp`` exporter come the same way (``otel.py``:
  ``ForwardingSpanProcessor``); the process exports them through a ``BatchSpanProcessor`` and the same OTLP
  exporter, with the task process's resource.
* :meth:`EmitterProcess.flush` waits until every message written is handled; at exit the pipe is closed and
  the process ends after its last message. It also ends when the task's process dies (end of file).
"""

from __future__ import annotations

import contextlib
import logging
import mmap
import os
import select
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

log = logging.getLogger(__name__)
_SHARED = 4096  # [0:8] messages handled, [8:16] emits failed, [16:20] + text: the last failure (masked)
_ERR_AT = 16


def _dumps(message: list[Any]) -> bytes:
    data = orjson.dumps(message, default=str)
    return len(data).to_bytes(4, "little") + data


class EmitterProcess:
    """The task process's side: start the emitter, write messages, count what was dropped, flush, close."""

    def __init__(self) -> None:
        self.dropped = 0  # lineage events the caller dropped (queue full) + messages lost with a dead process
        self.failed_seen = 0
        self.broken = False  # the process could not be started: the caller emits on its own thread
        self._dests: dict[int, tuple[Any, int, list[Any]]] = {}  # id(client) -> (client, dest id, definition)
        self._starts = 0
        self._reset()
        os.register_at_fork(after_in_child=self._forked)

    def _reset(self) -> None:
        self._pid = -1
        self._proc: subprocess.Popen[bytes] | None = None
        self._fd = -1
        self._shared: mmap.mmap | None = None
        self._dead = False  # the pipe's reader is gone (seen on a write)
        self._sent = 0  # messages queued to the current process (written or in the outbox)
        self._outbox = bytearray()  # what the pipe did not take yet, in order (the drainer thread writes it)
        self._defined: set[int] = set()  # destinations the current process was told about
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._drainer = False

    def _forked(self) -> None:
        """In a forked child: the parent's emitter, pipe and lock are not ours (a new emitter starts on use)."""
        fd = self._fd
        self._reset()
        if fd >= 0:
            with contextlib.suppress(OSError):
                os.close(fd)

    # -- lifecycle -------------------------------------------------------------------------------------------
    def _start(self) -> bool:
        """Start the emitter (again after it died); False when it cannot run. Called with the lock held."""
        if self._proc is not None and not self._dead:
            return True
        if self._proc is not None:  # it died: what was in flight is lost, say so
            self._lost()
        if self._starts >= 5:
            self.broken = True
            return False
        self._starts += 1
        try:
            self._spawn()
        except Exception as e:
            log.warning("audit: OpenLineage emitter process not started (%s); emitting on a thread instead", e)
            self.broken = True
            return False
        self._pid = os.getpid()
        return True

    def _lost(self) -> None:
        lost = self._sent - self.handled()
        if lost > 0:
            self.dropped += lost
            log.warning("audit: the OpenLineage emitter process ended; %d queued event(s) dropped", lost)
        with contextlib.suppress(OSError):
            os.close(self._fd)
        self._proc, self._fd, self._sent, self._outbox, self._defined = None, -1, 0, bytearray(), set()

    def _spawn(self) -> None:
        shared_file = tempfile.TemporaryFile()  # closed below: the mapping and the child keep it
        try:
            shared_file.truncate(_SHARED)
            shared = mmap.mmap(shared_file.fileno(), _SHARED)
            r, w = os.pipe()
            try:
                env = dict(os.environ)
                here = str(Path(__file__).resolve().parents[2])  # the directory holding flytekitplugins/
                env["PYTHONPATH"] = os.pathsep.join(p for p in (here, env.get("PYTHONPATH", "")) if p)
                cmd = [sys.executable, "-m", "flytekitplugins.aios_audit.emit_process", str(shared_file.fileno())]
                proc = subprocess.Popen(  # our own interpreter and module
                    cmd, stdin=r, pass_fds=(shared_file.fileno(),), env=env, cwd="/", close_fds=True
                )
            except BaseException:
                os.close(w)
                raise
            finally:
                os.close(r)
        finally:
            shared_file.close()
        os.set_blocking(w, False)
        with contextlib.suppress(OSError, ImportError, AttributeError):
            import fcntl

            fcntl.fcntl(w, 1031, 1 << 20)  # F_SETPIPE_SZ: 1 MiB of room for bursts (Linux only)
        self._proc, self._fd, self._shared, self._dead = proc, w, shared, False
        self._sent, self._outbox, self._defined = 0, bytearray(), set()

    def handled(self) -> int:
        """Messages the current emitter process has handled."""
        return struct.unpack_from("<Q", self._shared, 0)[0] if self._shared is not None else 0

    def failed(self) -> tuple[int, str]:
        """(emits that failed in the current emitter process, the last failure's text)."""
        if self._shared is None:
            return 0, ""
        n, size = struct.unpack_from("<QI", self._shared, 8)
        return n, self._shared[_ERR_AT + 4 : _ERR_AT + 4 + size].decode("utf-8", "replace")

    def destination(self, client: Any, url: str, extra: Any = None) -> int:
        """The destination id of ``client`` (made from ``url`` and this process's environment and cwd now).

        ``url`` is the ``lineage_url`` setting, or ``otel:<exporter>`` for spans (``extra``: resource attributes).
        """
        found = self._dests.get(id(client))
        if found is not None and found[0] is client:
            return found[1]
        if url.startswith("file:"):
            url = "file:" + os.path.abspath(url.removeprefix("file:"))
        dest = len(self._dests) + 1
        self._dests[id(client)] = (client, dest, ["d", dest, url, dict(os.environ), os.getcwd(), extra])
        return dest

    # -- the task thread -------------------------------------------------------------------------------------
    def send(self, client: Any, url: str, message: list[Any], maxsize: int, extra: Any = None) -> bool:
        """Queue one message for ``client``; False when it was dropped (``maxsize`` in flight)."""
        dest = self.destination(client, url, extra)
        frame = _dumps([dest, *message])
        with self._lock:
            if not self._start():
                return False
            if self._sent - self.handled() >= maxsize:  # the caller counts it (an event or a span)
                return False
            if dest not in self._defined:
                self._queue(_dumps(self._dests[id(client)][2]))
                self._defined.add(dest)
            self._queue(frame)
            self._report_failures()
            return True

    def _queue(self, frame: bytes) -> None:
        """Write ``frame`` now if the pipe takes it, else append (the rest of) it to the outbox."""
        self._sent += 1
        if not self._outbox and not self._dead:
            try:
                n = os.write(self._fd, frame)
            except BlockingIOError:
                n = 0
            except OSError:  # the reader is gone: counted as lost when the emitter restarts
                self._dead, n = True, 0
            if n == len(frame):
                return
            frame = frame[n:]
        self._outbox += frame
        if not self._drainer:
            self._drainer = True
            threading.Thread(target=self._drain, name="aios-lineage-pipe", daemon=True).start()
        self._wake.notify()

    def _drain(self) -> None:
        """Write the outbox whenever the pipe has room (a thread that exists only once the pipe was full)."""
        pid = os.getpid()
        while True:
            with self._lock:
                while not self._outbox or self._dead:
                    self._wake.wait(1.0)
                    if os.getpid() != pid:
                        return
                fd = self._fd
            select.select([], [fd], [], 0.1)
            with self._lock:
                if fd != self._fd or not self._outbox:
                    continue
                try:
                    n = os.write(fd, self._outbox[: 1 << 20])
                except BlockingIOError:
                    n = 0
                except OSError:
                    self._dead, n = True, 0
                del self._outbox[:n]

    def _report_failures(self) -> None:
        n, last = self.failed()
        if n > self.failed_seen:
            log.warning("audit: OpenLineage emit failed (%d event(s) so far): %s", n, last)
            self.failed_seen = n

    # -- flush and close -------------------------------------------------------------------------------------
    def flush(self, timeout: float | None = None, stall: float | None = None) -> bool:
        """Wait until every queued message is handled (or the process ended, or ``timeout`` s passed, or, with
        ``stall``, that many seconds passed without one message handled: a backend that takes nothing)."""
        now = time.monotonic()
        deadline = None if timeout is None else now + timeout
        progress, last = -1, now
        pause = 0.0005
        while True:
            with self._lock:
                if self._proc is None:
                    return True
                handled = self.handled()
                if handled >= self._sent:
                    self._report_failures()
                    return True
                if self._dead or self._proc.poll() is not None:
                    self._dead = True
                    self._lost()
                    return False
                now = time.monotonic()
                if handled != progress:
                    progress, last = handled, now
                if (deadline is not None and now > deadline) or (stall is not None and now - last > stall):
                    log.warning("audit: %d OpenLineage event(s) still queued", self._sent - handled)
                    return False
            time.sleep(pause)
            pause = min(pause * 2, 0.02)

    def close(self, timeout: float = 10.0) -> None:
        """Flush, then end the emitter process (end of its input) and wait for it: ``timeout`` s in all, then it is
        killed (what it had not sent is dropped)."""
        end = time.monotonic() + timeout
        if timeout > 0:
            self.flush(timeout)
        with self._lock:
            proc, fd = self._proc, self._fd
            if proc is None:
                return
            self._proc, self._fd, self._shared, self._outbox = None, -1, None, bytearray()
            os.close(fd)
        try:
            proc.wait(max(end - time.monotonic(), 0.2))  # a moment to end after its input closed
        except subprocess.TimeoutExpired:
            proc.kill()


# -- the emitter process -------------------------------------------------------------------------------------
class _Emitter:
    """Handles messages in order; one OpenLineageClient per destination, made in its environment and cwd."""

    def __init__(self, shared: mmap.mmap) -> None:
        self.shared = shared
        self.handled = 0
        self.failed = 0
        self.dests: dict[int, list[Any]] = {}
        self.clients: dict[int, Any] = {}
        self.current = 0

    def _enter(self, dest: int) -> None:
        """Make ``dest``'s environment and working directory this process's (clients read them when emitting)."""
        if dest == self.current:
            return
        env, cwd = self.dests[dest][3:5]
        os.environ.clear()
        os.environ.update(env)
        try:
            os.chdir(cwd)
        except OSError:
            os.chdir("/")
        self.current = dest

    def _client(self, dest: int) -> Any:
        """The destination's OpenLineageClient (``None``: lineage off), or its span processor (``otel:``)."""
        if dest not in self.clients:
            url, extra = self.dests[dest][2], self.dests[dest][5]
            if url.startswith("otel:"):
                from flytekitplugins.aios_audit.otel import exporting_processor

                self.clients[dest] = exporting_processor(url.removeprefix("otel:"), extra or {})
            else:
                from flytekitplugins.aios_audit.emit import _make_client

                self.clients[dest] = _make_client(url)
        return self.clients[dest]

    def handle(self, message: list[Any]) -> None:
        if message[0] == "d":
            self.dests[message[1]] = message
            return
        dest, body = message[0], message[1:]
        self._enter(dest)
        try:
            client = self._client(dest)
            if body[0] == "t":
                from flytekitplugins.aios_audit.otel import span_from_message

                client.on_end(span_from_message(body, client.aios_resource))
            elif body[0] == "f":  # a span processor's force_flush: export what is batched now
                client.force_flush()
            elif client is not None:
                from flytekitplugins.aios_audit.lineage_events import event_from_message

                client.emit(event_from_message(body))
        except Exception as e:
            from flytekitplugins.aios_core.redact import mask_text

            kind = getattr(getattr(self.clients.get(dest), "transport", None), "kind", "?")
            self._failed(f"through {kind}: {type(e).__name__}: {mask_text(e)}")

    def _failed(self, text: str) -> None:
        self.failed += 1
        data = text.encode("utf-8", "replace")[: _SHARED - _ERR_AT - 4]
        self.shared[_ERR_AT + 4 : _ERR_AT + 4 + len(data)] = data
        struct.pack_into("<QI", self.shared, 8, self.failed, len(data))

    def done(self) -> None:
        self.handled += 1
        struct.pack_into("<Q", self.shared, 0, self.handled)


def _frames(fd: int) -> Any:
    """Messages read from ``fd`` until end of file."""
    buf = bytearray()
    while True:
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            return
        buf += chunk
        while len(buf) >= 4:
            size = int.from_bytes(buf[:4], "little")
            if len(buf) < 4 + size:
                break
            yield orjson.loads(bytes(buf[4 : 4 + size]))
            del buf[: 4 + size]


def configure_logging(environ: Mapping[str, str]) -> None:
    """The emitter process's logging: WARNING to stderr, every record masked (``redact.mask_logs``), the OTLP and
    OpenLineage credentials of ``environ`` remembered: its exporters and transports log the URLs they retry
    (``...?api_key=``) and gRPC endpoints written ``user:password@host:port``, which no pattern can see."""
    from flytekitplugins.aios_core.redact import mask_logs, remember_telemetry

    logging.basicConfig(level=logging.WARNING, format="aios-lineage-emitter: %(levelname)s %(message)s")
    mask_logs()
    remember_telemetry(environ)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the emitter process: ``python -m flytekitplugins.aios_audit.emit_process SHARED_FD``."""
    args = sys.argv[1:] if argv is None else argv
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the task; this process drains, then ends
    with contextlib.suppress(OSError):
        os.nice(10)  # background work: where CPUs are short, the task's process goes first (the queue absorbs it)
    configure_logging(os.environ)
    logging.getLogger("openlineage.client.transport.console").setLevel(logging.INFO)  # the console transport's
    shared = mmap.mmap(int(args[0]), _SHARED)
    emitter = _Emitter(shared)
    for message in _frames(sys.stdin.fileno()):
        try:
            emitter.handle(message)
        except Exception as e:  # a malformed message: counted, never the end of the process
            emitter._failed(f"unreadable message: {e}")
        finally:
            emitter.done()
    for client in emitter.clients.values():
        try:
            if hasattr(client, "aios_resource"):
                client.shutdown()  # exports the spans still in its batch
            elif client is not None:
                client.close(5.0)
        except Exception as e:
            log.warning("audit: closing a lineage transport or span exporter failed: %s", e)


if __name__ == "__main__":
    main()
