"""Run one check in a forked child while this process does another (a second core at work, same results).

``aios audit verify --checkpoint`` re-derives the projection rows of the records after the checkpoint in a child
while this process walks those records' hashes: on two cores the command then takes about the longer of the two
instead of their sum; the document pipeline's parse stage hands shares of a chunk to such children the same way.
Whatever goes wrong with the child (no ``fork`` on this platform, a worker that may not have
children, an exception, no answer in time) only costs time: :meth:`Aside.result` then runs the check here and
returns what the child would have.
"""

from __future__ import annotations

import gc
import logging
import multiprocessing as mp
import os
import signal
import threading
import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar, cast

T = TypeVar("T")
log = logging.getLogger(__name__)

GRACE_S = 60.0
"""The least a child is waited for once :meth:`Aside.result` is called (then ten times what the caller's own part
took); past that it is stuck (e.g. a lock held at fork time) and is killed."""


class Aside(Generic[T]):
    """``fn(*args)`` started in a forked child (or, where that cannot be, run later in this process)."""

    def __init__(self, fn: Callable[..., T], *args: Any) -> None:
        self._fn, self._args = fn, args
        self.here = False
        """True once :meth:`result` ran the check in this process (the child gave no answer, or none was started)."""
        self._proc: Any = None
        self._recv: Any = None
        self._started = time.monotonic()
        _reap()
        if "fork" not in mp.get_all_start_methods():
            return
        ctx = mp.get_context("fork")
        recv, send = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=_child, args=(fn, args, send), daemon=True)
        try:
            proc.start()
        except Exception:  # e.g. inside a daemonic worker, which may not have children
            recv.close()
            return
        finally:
            send.close()
        self._proc, self._recv = proc, recv

    def result(self, waiting: Callable[[], None] | None = None) -> T:
        """The child's answer, waiting for it; the check run here when the child gave none. ``waiting()`` is called
        every quarter of a second while the child is waited for (a progress bar that counts the child's work)."""
        if self._proc is None:
            self.here = True
            return self._fn(*self._args)
        deadline = time.monotonic() + max(GRACE_S, 10 * (time.monotonic() - self._started))
        status: str = "error"
        value: Any = None
        try:
            while not self._recv.poll(0.25):
                if time.monotonic() > deadline:
                    log.warning("the check running beside this one gave no answer in time; running it here")
                    raise EOFError
                if waiting is not None:
                    waiting()
            status, value = self._recv.recv()
        except (EOFError, OSError):
            status = "error"
        finally:
            self.cancel()
        if status != "ok":
            self.here = True
            return self._fn(*self._args)  # the same check, here: raises what it raises, reports what it reports
        return cast(T, value)

    def cancel(self) -> None:
        """Stop the child (its answer is not wanted, or has been read), without waiting for it to end.

        A child forked from a process with models loaded takes milliseconds to tear its memory down once killed or
        ended (8 ms a child here, with the document pipeline's models loaded), and nothing here needs its exit
        status: it is collected by :func:`_reap` now if it has ended, else by the next :class:`Aside` or the next
        ``multiprocessing`` child started (``Process.start`` polls the ended ones), and at the latest when this
        process exits (``multiprocessing`` joins its children then).
        """
        if self._proc is None:
            return
        proc, self._proc = self._proc, None
        self._recv.close()
        if proc.is_alive():
            proc.kill()  # SIGKILL: the child inherited this process's handlers, which may not exit
        with _ENDING_LOCK:
            _ENDING.append((os.getpid(), proc))
        _reap()


_ENDING: list[tuple[int, Any]] = []
"""Children killed or answered and not yet collected (see :meth:`Aside.cancel`), each with the pid of the process
that started it: a process forked later inherits the list, and only the parent may collect a child."""
_ENDING_LOCK = threading.Lock()


def _reap() -> None:
    """Collect the exit status of every child in :data:`_ENDING` that has ended; never waits. Entries a forked
    process inherited from its parent are dropped (they are not its children)."""
    me = os.getpid()
    with _ENDING_LOCK:
        for entry in list(_ENDING):
            parent, proc = entry
            if parent == me:
                proc.join(timeout=0)
                if proc.exitcode is None:
                    continue
            _ENDING.remove(entry)


def _child(fn: Callable[..., Any], args: tuple[Any, ...], conn: Any) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the parent's handlers: a terminated child just ends
    gc.freeze()  # what it inherited stays: its collections walk only its own objects (and copy no pages)
    try:
        conn.send(("ok", fn(*args)))
    except BaseException as e:  # the parent runs the check itself and sees the error there
        conn.send(("error", repr(e)))
    finally:
        conn.close()
