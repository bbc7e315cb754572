"""A rich progress bar with counts and throughput for long local runs (one bar per stage, one process).

Local Flyte execution runs every mapped task in this process, so stages advance one shared display.
On a cluster each pod's stderr is not a terminal and nothing is drawn (``progress='auto'``).
"""

from __future__ import annotations

import sys
import threading
from typing import Any

_lock = threading.Lock()
_state: dict[str, Any] = {"progress": None, "tasks": {}, "total": 0}


def enabled(mode: str) -> bool:
    """Whether to draw: ``on``, ``off`` or ``auto`` (stderr is a terminal)."""
    return mode == "on" or (mode == "auto" and sys.stderr.isatty())


def start(total: int, mode: str) -> None:
    """Begin a batch of ``total`` documents."""
    with _lock:
        _state["total"] = total
        if not enabled(mode) or _state["progress"] is not None:
            return
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        prog = Progress(
            TextColumn("{task.description:>18}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]:>8} docs/s"),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=False,
        )
        prog.start()
        _state["progress"] = prog


def advance(stage: str, n: int) -> None:
    """Count ``n`` documents through ``stage``."""
    with _lock:
        prog = _state["progress"]
        if prog is None or n <= 0:
            return
        tasks: dict[str, Any] = _state["tasks"]
        if stage not in tasks:
            tasks[stage] = prog.add_task(stage, total=_state["total"] or None, rate="-")
        tid = tasks[stage]
        prog.advance(tid, n)
        task = prog.tasks[tid]
        if task.elapsed:
            prog.update(tid, rate=f"{task.completed / task.elapsed:.1f}")


def stop() -> None:
    """Close the display."""
    with _lock:
        prog = _state["progress"]
        if prog is not None:
            prog.stop()
        _state.update(progress=None, tasks={}, total=0)
