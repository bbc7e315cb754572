"""Progress of long work: a rich bar on a terminal, a few plain lines in logs, nothing in ``--json`` mode.

One :class:`Reporter` shows one or more named stages (``parse + protect``, ``training``, ``verifying``):

* ``bar``: a rich progress bar per stage on stderr (what ``auto`` picks when stderr is a terminal);
* ``lines``: plain ``progress: <stage>: <done>/<total> <unit> ...`` lines on stderr (``auto`` off a terminal: CI
  logs, pods, a parent process reading the log): one when a stage starts, one at each quarter of its total
  and at most every ``every_s`` seconds in between, one when it ends. With ``quiet_s`` a stage that ends
  sooner prints nothing at all, so short commands keep their output unchanged;
* ``off``: nothing (``--json`` output, benchmarks).

:func:`parse_line` reads a ``lines`` line back: ``aios demo`` follows its workflow's log with it and draws the
bars a terminal user expects, from another process.
"""

from __future__ import annotations

import re
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import IO, Any

MODES = ("auto", "bar", "lines", "off")
PREFIX = "progress: "
_LINE = re.compile(r"^progress: (?P<stage>[^:]+):(?: (?P<done>\d+)/(?P<total>\d+|\?) (?P<unit>\S+))?(?P<rest>.*)$")


def resolve_mode(mode: str, stream: IO[str] | None = None) -> str:
    """``bar``, ``lines`` or ``off`` for ``mode``; ``auto`` (and ``on``) draw only when stderr is a terminal.

    Whether it is a terminal is rich's decision (``Console.is_terminal``: isatty, ``FORCE_COLOR``,
    ``TTY_COMPATIBLE``), so rich and this module never disagree.
    """
    if mode in ("off", "lines"):
        return mode
    if mode not in ("auto", "on", "bar"):
        msg = f"progress mode {mode!r} is not one of {', '.join(MODES)}"
        raise ValueError(msg)
    from rich.console import Console

    return "bar" if Console(file=stream or sys.stderr).is_terminal else "lines"


def _elapsed(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}h{s % 3600 // 60:02d}m{s % 60:02d}s" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


@dataclass
class _Stage:
    total: int | None
    done: int = 0
    started: float = field(default_factory=time.monotonic)
    last_line: float = 0.0
    lines: int = 0
    mark: int = 0  # the last quarter (of ``marks``) a line was printed for
    info: str = ""
    ended: bool = False
    task: Any = None  # the rich task id in bar mode


class Reporter:
    """Progress of named stages; thread-safe; a no-op in ``off`` mode.

    Args:
        unit: what is counted, plural ("documents", "records", "steps").
        mode: ``auto``, ``bar``, ``lines`` or ``off`` (see the module docstring).
        every_s: in lines mode, a line per stage this often while it runs (besides the ``marks``).
        marks: in lines mode, a line each time a stage passes another 1/marks of its total (0: none).
        quiet_s: in lines mode, a stage that ends within this many seconds prints no line at all.
        transient: in bar mode, remove the bars when the reporter closes (a command that prints a result).
        stream: where lines and bars go (default: stderr).
    """

    def __init__(
        self,
        unit: str,
        *,
        mode: str = "auto",
        every_s: float = 30.0,
        marks: int = 4,
        quiet_s: float = 0.0,
        transient: bool = False,
        stream: IO[str] | None = None,
    ) -> None:
        self.unit, self.every_s, self.quiet_s, self.transient = unit, every_s, quiet_s, transient
        self.marks = marks
        self._stream = stream
        self.mode = resolve_mode(mode, stream)
        self._lock = threading.RLock()
        self._stages: dict[str, _Stage] = {}
        self._bar: Any = None

    @property
    def stream(self) -> IO[str]:
        """Where lines and bars go."""
        return self._stream or sys.stderr

    # -- the display ------------------------------------------------------------------------------------------

    def _progress(self) -> Any:
        if self._bar is None:
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

            self._bar = Progress(
                TextColumn("{task.description:>16}"),
                BarColumn(bar_width=30),
                TextColumn("{task.fields[count]}"),
                TimeElapsedColumn(),
                TextColumn("eta"),
                TimeRemainingColumn(),
                TextColumn("{task.fields[info]}"),
                console=Console(file=self.stream),
                transient=self.transient,
            )
            self._bar.start()
        return self._bar

    def _show(self, st: _Stage, ended: bool = False) -> None:
        """Update the stage's bar: ``done/total unit``, ``done unit`` (unknown total) or nothing (no count)."""
        count = "" if st.total is None and not st.done else f"{st.done}/{st.total if st.total is not None else '?'}"
        total, completed = (1, 1) if ended and not st.total else (st.total, st.done)  # ended: a full bar
        unit = f" {self.unit}" if count else ""
        self._progress().update(st.task, total=total, completed=completed, info=st.info, count=count + unit)

    def _line(self, name: str, st: _Stage, end: bool = False, stopped: bool = False) -> None:
        now = time.monotonic()
        took = now - st.started
        total = "?" if st.total is None else str(st.total)
        counted = st.total is not None or st.done > 0  # a stage of unknown size says "started" and how long it took
        text = f"{PREFIX}{name}:" + (f" {st.done}/{total} {self.unit}" if counted else "")
        if not (counted or end or stopped):
            text += " started"
        if stopped:
            text += f" stopped after {_elapsed(took)}"
        elif end:
            rate = f", {st.done / took:.1f}/s" if took >= 1 and st.done else ""
            text += f" done in {_elapsed(took)}{rate}"
        elif st.done:
            text += f" after {_elapsed(took)}"
        if st.info:
            text += f" ({st.info})"
        print(text, file=self.stream, flush=True)
        st.last_line, st.lines = now, st.lines + 1

    # -- the API ------------------------------------------------------------------------------------------------

    def stage(self, name: str, total: int | None = None, done: int = 0) -> None:
        """Start stage ``name`` (or give it a total); ``done`` units of it are already done (a resumed run)."""
        if self.mode == "off":
            return
        with self._lock:
            st = self._stages.get(name)
            if st is None:
                st = self._stages[name] = _Stage(total, done)
                if self.mode == "bar":
                    st.task = self._progress().add_task(name, total=total, completed=done, info="", count="")
                    self._show(st)
                elif self.quiet_s <= 0:
                    self._line(name, st)
                return
            st.total = total if total is not None else st.total
            if st.task is not None:
                self._show(st)

    def update(self, name: str, done: int | None = None, *, advance: int = 0, info: str | None = None) -> None:
        """Set stage ``name`` to ``done`` units (or ``advance`` it); ``info`` is a short note (``loss 0.41``)."""
        if self.mode == "off":
            return
        with self._lock:
            if name not in self._stages:
                self.stage(name)
            st = self._stages[name]
            st.done = (done if done is not None else st.done) + advance
            st.info = st.info if info is None else info
            if st.task is not None:
                self._show(st)
                return
            now = time.monotonic()
            quiet = now - st.started < self.quiet_s
            mark = st.done * self.marks // st.total if st.total and self.marks else 0
            if st.total is not None and st.done >= st.total:
                self.end(name)
            elif not quiet and (mark > st.mark or now - (st.last_line or st.started) >= self.every_s):
                self._line(name, st)
            st.mark = max(st.mark, mark)

    def advance(self, name: str, n: int = 1, info: str | None = None) -> None:
        """Count ``n`` more units through stage ``name``."""
        self.update(name, advance=n, info=info)

    def end(self, name: str, info: str | None = None) -> None:
        """Stage ``name`` is over (its last line in lines mode; a full bar when its total was unknown)."""
        if self.mode == "off":
            return
        with self._lock:
            st = self._stages.get(name)
            if st is None or st.ended:
                return
            st.ended, st.info = True, st.info if info is None else info
            if st.task is not None:
                self._show(st, ended=True)
            elif st.lines or time.monotonic() - st.started >= self.quiet_s:
                self._line(name, st, end=True)

    def close(self, failed: bool = False) -> None:
        """End every stage and stop the display; ``failed``: the work stopped early (an exception)."""
        with self._lock:
            for name, st in self._stages.items():
                if failed and not st.ended and st.task is None and self.mode == "lines":
                    st.ended = True
                    self._line(name, st, stopped=True)
            for name in list(self._stages):
                self.end(name)
            if self._bar is not None:
                self._bar.stop()
                self._bar = None

    def echo(self, text: str) -> None:
        """Print a line for people: above the bars while they are drawn (a plain write would be wiped by their
        next refresh), else on stdout."""
        with self._lock:
            if self._bar is not None:
                self._bar.console.print(text, markup=False, highlight=False, soft_wrap=True)
                return
        print(text, flush=True)

    def callback(self, name: str) -> Any:
        """``fn(done)``: a plain callable for library code that reports an absolute count."""
        return lambda done: self.update(name, done)

    def __enter__(self) -> Reporter:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        self.close(failed=exc_type is not None)


@dataclass(frozen=True)
class Line:
    """One ``progress:`` line read back."""

    stage: str
    done: int
    total: int | None
    unit: str
    ended: bool
    info: str


def parse_line(text: str) -> Line | None:
    """The progress line in ``text`` (a log line), or None when it is not one."""
    m = _LINE.match(text.strip())
    if m is None:
        return None
    rest = m["rest"]
    info = rest[rest.index("(") + 1 : rest.rindex(")")] if rest.endswith(")") and "(" in rest else ""
    total = None if m["total"] in ("?", None) else int(m["total"])
    return Line(m["stage"], int(m["done"] or 0), total, m["unit"] or "", " done in " in rest, info)


class LogFollower:
    """Mirror the ``progress:`` lines a child process writes to a log file into a :class:`Reporter`.

    Args:
        path: the child's log (it may not exist yet).
        reporter: where the stages are shown.
    """

    def __init__(self, path: Any, reporter: Reporter) -> None:
        self.path, self.reporter = path, reporter
        self._offset = 0
        self._partial = ""

    def poll(self) -> list[Line]:
        """Read what the child wrote since the last call; returns the progress lines found."""
        try:
            with open(self.path, encoding="utf-8", errors="replace") as f:
                f.seek(self._offset)
                chunk = f.read()
                self._offset = f.tell()
        except FileNotFoundError:
            return []
        text = self._partial + chunk
        lines = text.split("\n")
        self._partial = lines.pop()  # an unfinished last line waits for the next call
        found = [(p, line) for line in lines if (p := parse_line(line)) is not None]
        for p, line in found:
            if self.reporter.mode == "lines":  # a log again: the child's own line, with its own timings
                print(line.strip(), file=self.reporter.stream, flush=True)
                continue
            self.reporter.stage(p.stage, p.total)
            self.reporter.update(p.stage, p.done, info=p.info)
            if p.ended:
                self.reporter.end(p.stage)
        return [p for p, _ in found]
