"""Progress of a document batch: one stage per pipeline step, counted in documents.

Built on :class:`flytekitplugins.aios_core.progress.Reporter`. Local Flyte execution runs every mapped task in
this process, so the stages advance one shared display: rich bars when stderr is a terminal, otherwise a few
``progress: <stage>: <done>/<total> documents ...`` lines (a stage's start, each quarter, every 30 s, its end).
That is what a pod's log shows (each pod counts its own chunk) and what ``aios demo`` reads from its workflow's
log to draw the bars. ``ProcessingOptions.progress``: ``auto`` (that), ``on`` (bars even off a terminal: rich
then prints the final state), ``off`` (nothing).
"""

from __future__ import annotations

import threading
from typing import Any

from flytekitplugins.aios_core.progress import Reporter

UNIT = "documents"
EVERY_S = 30.0
_lock = threading.Lock()
_state: dict[str, Any] = {"reporter": None, "total": None}


def _reporter(mode: str) -> Reporter:
    """The batch's display, made on first use: ``on`` draws bars, ``auto`` lets rich tell a terminal from a log."""
    rep: Reporter | None = _state["reporter"]
    if rep is None:
        rep = _state["reporter"] = Reporter(UNIT, mode="bar" if mode == "on" else mode, every_s=EVERY_S)
    return rep


def start(total: int, mode: str) -> None:
    """Begin a batch of ``total`` documents (every later stage counts up to it)."""
    with _lock:
        _state["total"] = total
        _reporter(mode)


def begin(stage: str, mode: str = "auto") -> None:
    """Stage ``stage`` starts (its line says so before the first chunk is done)."""
    with _lock:
        _reporter(mode).stage(stage, _state["total"])


def advance(stage: str, n: int, mode: str = "auto") -> None:
    """Count ``n`` documents through ``stage`` (on a pod: of this chunk, whose total is not known there)."""
    if n <= 0:
        return
    with _lock:
        rep = _reporter(mode)
        rep.stage(stage, _state["total"])
        rep.advance(stage, n)


def chunk_done(stage: str) -> None:
    """A chunk went through ``stage``: where the batch total is unknown (a pod), that is the end of the stage.

    Where it is known (local runs) a stage ends when all the batch's documents are through it.
    """
    with _lock:
        rep: Reporter | None = _state["reporter"]
        if rep is not None and _state["total"] is None:
            rep.end(stage)


def step(stage: str, mode: str = "auto") -> Any:
    """A stage with nothing to count (``train models`` on a first run): its start and end, timed.

    Use as ``with progress.step("train models"): ...``.
    """
    return _Step(stage, mode)


class _Step:
    def __init__(self, stage: str, mode: str) -> None:
        self.stage, self.mode = stage, mode

    def __enter__(self) -> None:
        with _lock:
            _reporter(self.mode).stage(self.stage)

    def __exit__(self, exc_type: object, *exc: object) -> None:
        with _lock:
            rep: Reporter | None = _state["reporter"]
            if rep is not None and exc_type is None:
                rep.end(self.stage)


def stop() -> None:
    """Close the display (the batch is summarized)."""
    with _lock:
        rep: Reporter | None = _state["reporter"]
        if rep is not None:
            rep.close()
        _state.update(reporter=None, total=None)
