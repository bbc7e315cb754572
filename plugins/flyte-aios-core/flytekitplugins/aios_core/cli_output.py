"""What every ``aios`` command prints: one-line errors, JSON results and tables that read at any width.

Exit codes (the contract scripts rely on; the table is in docs/cli.md):

* 0: done; the check passed, the request was accepted.
* 1: a verification or check failed (tampering, invalid proof, failing policy tests).
* 2: usage or input error: bad flag, missing file, bad JSON/YAML, unknown id, bad configuration.
* 3: refused: a policy denied the request, an approval decision was refused.
* 4: internal error (a bug): one line on stderr; ``AIOS_DEBUG=1`` shows the traceback.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import click

from flytekitplugins.aios_core.visible import visible

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_REFUSED, EXIT_INTERNAL = 0, 1, 2, 3, 4


class UserError(click.ClickException):
    """A bad input the user can fix: printed as one ``error: ...`` line, exit 2."""

    exit_code = EXIT_USAGE

    def show(self, file: IO[Any] | None = None) -> None:
        """Print ``error: <message>`` on stderr as one line (no ``Usage:`` block, no traceback)."""
        click.echo(f"error: {visible(' '.join(self.format_message().split()))}", err=True, file=file)


class InternalError(UserError):
    """An unexpected exception (a bug): one line, exit 4."""

    exit_code = EXIT_INTERNAL


def output_path(**kwargs: Any) -> click.Path:
    """The type of an ``--out`` option: a name that is not a folder, never checked for reading. click's default
    (``readable=True``) refused ``--out /dev/stdout`` where standard output is a pipe or terminal the user may write
    but not read (one another user opened, after ``su`` or ``runuser`` to a service user), before the write that
    would have gone there (re-review R24); where the name may be written is :func:`.private_files.write_private`'s
    to judge."""
    return click.Path(dir_okay=False, readable=False, **kwargs)


def names_stdout(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` leads to this process's standard output (``--out /dev/stdout``, ``/dev/fd/1``, the terminal or
    the file it was sent to). Check it before writing there: a command's line saying what it wrote goes to stderr
    then, as it must not follow the output into the same stream (``aios audit public-key --out /dev/stdout > key.pem``
    put "public key ... written to /dev/stdout" into the PEM file)."""
    try:  # the name as write_private takes it (a Path: "/dev/stdout/" and "/dev/stdout/." are /dev/stdout; R24)
        named, stdout = os.stat(Path(path)), os.fstat(sys.stdout.fileno())
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):  # not there yet; stdout closed or in memory
        return False
    return (named.st_dev, named.st_ino) == (stdout.st_dev, stdout.st_ino)


def echo_json(doc: Any) -> None:
    """Print ``doc`` as indented, key-sorted JSON (what ``--json`` prints)."""
    click.echo(json.dumps(doc, indent=2, sort_keys=True, default=str))


def make_console(width: int | None = None) -> Any:
    """A rich console: the terminal's width on a TTY; ``COLUMNS`` or 200 for pipes and logs."""
    from rich.console import Console

    if width is None and not sys.stdout.isatty():
        width = int(os.environ.get("COLUMNS", "0") or 0) or 200
    return Console(width=width, soft_wrap=False)


@dataclasses.dataclass(frozen=True)
class Column:
    """One table column: how narrow it may get, and what gives way first when the table does not fit.

    Args:
        header: the column's title (never cut: keep it short).
        min_width: never narrower than this, unless every cell is shorter (default: ``MIN_TEXT``; never narrower
            than the header).
        max_width: never wider than this (free text is cut with an ellipsis beyond it).
        drop: 0 keeps the column at every width; at narrow widths the highest ``drop`` goes first.
        short: the compact form of a cell, used once the full table does not fit (a short digest, a compact
            timestamp).
        key: an id or a short fixed-form value (``apr-...``, ``seq``, ``0/2``): never cut (and, with ``drop`` 0,
            never hidden).
    """

    header: str
    min_width: int = 0
    max_width: int | None = None
    drop: int = 0
    short: Callable[[str], str] | None = None
    key: bool = False


@dataclasses.dataclass
class Layout:
    """How a table was printed: each shown column's width, the hidden columns, and whether cells were cut."""

    widths: dict[str, int]
    hidden: list[str]
    compact: bool = False
    cut: bool = False
    cards: bool = False


MIN_TEXT = 10
"""A text column is at least this wide (or as wide as its longest cell, when that is shorter)."""
COMFORT = 24
"""Spare width goes first to the columns kept longest, up to this many characters each, then to whole cells."""
GAP = 3
"""Characters between two columns (padding, rule, padding)."""


def short_digest(text: str, n: int = 12) -> str:
    """``sha256:3f9a...`` -> its first ``n`` hex characters (enough to tell records apart by eye)."""
    return text.partition(":")[2][:n] if ":" in text else text[:n]


def compact_time(text: str) -> str:
    """``2026-11-21 10:02:13`` -> ``11-21 10:02`` (the year and the seconds go at narrow widths)."""
    return text[5:16] if len(text) >= 16 and text[4] == "-" and text[10] == " " else text


def _plan(
    columns: Sequence[Column], rows: Sequence[Sequence[str]], width: int, compact: bool = False
) -> tuple[list[int], list[int]]:
    """(shown column indexes, their widths) for ``width`` characters, or ([], []) when even the minimums do not fit.

    Columns go in ``drop`` order (highest first) while the minimum widths do not fit. Then, while a cell is cut,
    less important whole columns (higher ``drop``) go, one by one, if that leaves every column more important than
    the last one gone whole: a record id gives way to the approver it would otherwise cut, never the other way
    round. With ``compact`` the rows hold the compact forms, which are never cut (they are the short version).
    """
    natural, minimum = [], []
    for i, c in enumerate(columns):
        whole = c.key or (compact and c.short is not None)
        longest = max([len(c.header), *(len(r[i]) for r in rows)])
        nat = longest if whole or c.max_width is None else max(len(c.header), min(longest, c.max_width))
        natural.append(nat)
        minimum.append(nat if whole else min(nat, max(len(c.header), c.min_width or MIN_TEXT)))

    def room(idx: list[int]) -> int:
        return width - GAP * (len(idx) - 1)

    def allocate(idx: list[int]) -> list[int]:
        widths = {i: minimum[i] for i in idx}
        spare = room(idx) - sum(widths.values())
        # the kept-longest columns (lowest ``drop``) first: up to COMFORT characters each, then whole
        tiers = sorted({columns[i].drop for i in idx})
        comfort = {i: min(natural[i], max(minimum[i], COMFORT)) for i in idx}
        for cap in (comfort, natural):
            for tier in tiers:
                spare = _fill(widths, cap, [i for i in idx if columns[i].drop == tier], spare)
        return [widths[i] for i in idx]

    def by_drop(idx: list[int]) -> list[int]:
        return sorted((i for i in idx if columns[i].drop > 0), key=lambda i: (-columns[i].drop, -i))

    shown = list(range(len(columns)))
    droppable = by_drop(shown)
    while sum(minimum[i] for i in shown) > room(shown) and droppable:
        shown.remove(droppable.pop(0))
    if sum(minimum[i] for i in shown) > room(shown):
        return [], []
    widths = allocate(shown)
    while cut := [columns[i].drop for i, w in zip(shown, widths, strict=True) if w < natural[i]]:
        uncut = {i for i, w in zip(shown, widths, strict=True) if w >= natural[i]}
        trial, better = list(shown), None
        for j in (j for j in by_drop(shown) if j in uncut and columns[j].drop > min(cut)):
            trial.remove(j)  # less important whole columns go, one by one, while that helps
            got = allocate(trial)
            if all(w >= natural[i] for i, w in zip(trial, got, strict=True) if columns[i].drop < columns[j].drop):
                better = (trial, got)
                break
        if better is None:
            break
        shown, widths = better
    return shown, widths


def _fill(widths: dict[int, int], cap: Sequence[int] | dict[int, int], idx: list[int], spare: int) -> int:
    """Share ``spare`` characters evenly among ``idx`` up to ``cap`` each; returns what is left."""
    while spare > 0:
        hungry = [i for i in idx if widths[i] < cap[i]]
        if not hungry:
            break
        share = max(1, spare // len(hungry))
        for i in hungry:
            give = min(share, cap[i] - widths[i], spare)
            widths[i] += give
            spare -= give
    return spare


def _whole(cols: Sequence[Column], rows: Sequence[Sequence[str]], shown: list[int], widths: list[int]) -> bool:
    """Every column shown and no cell cut."""
    return len(shown) == len(cols) and all(len(r[i]) <= w for r in rows for i, w in zip(shown, widths, strict=True))


def print_table(
    title: str,
    columns: Sequence[str | Column],
    rows: Sequence[Sequence[str]],
    console: Any = None,
    *,
    more: str = "--json has every field",
) -> Layout:
    """Print a table with one line per row that fits the console's width.

    It tries, in order: every column in full; the compact forms (``Column.short``); then, while the
    minimum widths do not fit, it hides the columns with the highest ``Column.drop``. Text wider than its
    column is cut with an ellipsis, never wrapped; ids (``Column.key``) are never cut. A dim note under the
    table says what was hidden or cut and where to see it (``more``). Only when even the kept columns do not
    fit at their minimum widths (a very narrow terminal) is each row printed as a ``field  value`` block.

    Args:
        title: the table's title.
        columns: header (or :class:`Column`) of each column.
        rows: cell text (plain, not rich markup) per row.
        console: a rich console (default: ``make_console()``).
        more: what the note under a cut table points to.

    Returns:
        The :class:`Layout` it printed (tests check the widths).
    """
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    console = console or make_console()
    cols = [c if isinstance(c, Column) else Column(c) for c in columns]
    # a cell is one line of visible text: its lines joined, its control characters escaped (see visible())
    full = [[visible(", ".join(cell.splitlines()) if "\n" in cell else cell) for cell in r] for r in rows]
    title = visible(title)
    if not full:
        console.print(escape(f"{title}: none"))
        return Layout({}, [])
    width = console.width
    shown, widths = _plan(cols, full, width)
    cells, compact = full, False
    if not _whole(cols, full, shown, widths) and any(c.short for c in cols):
        short = [[c.short(v) if c.short else v for c, v in zip(cols, r, strict=True)] for r in full]
        s_shown, s_widths = _plan(cols, short, width, compact=True)
        if s_shown:
            shown, widths, cells, compact = s_shown, s_widths, short, True
    if not shown:
        _cards(title, [c.header for c in cols], full, console)
        return Layout({}, [], cards=True)
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1))
    for i, w in zip(shown, widths, strict=True):
        table.add_column(escape(cols[i].header), width=w, no_wrap=True, overflow="ellipsis")
    cut = False
    for r in cells:
        table.add_row(*(escape(r[i]) for i in shown))
        cut = cut or any(len(r[i]) > w for i, w in zip(shown, widths, strict=True))
    console.print(escape(title), style="bold", overflow="fold")
    console.print(table)
    hidden = [c.header for i, c in enumerate(cols) if i not in shown]
    notes = [f"not shown at {width} columns: {', '.join(hidden)}"] if hidden else []
    notes += ["… = cut"] if cut else []
    if notes:
        console.print(escape(f"({'; '.join(notes)}; {more})"), style="dim", overflow="fold")
    return Layout({cols[i].header: w for i, w in zip(shown, widths, strict=True)}, hidden, compact, cut)


def _cards(title: str, headers: Sequence[str], rows: Sequence[Sequence[str]], console: Any) -> None:
    """Each row as a ``field  value`` block (for terminals too narrow for any table)."""
    from rich.markup import escape
    from rich.table import Table

    console.print(escape(f"{title}: {len(rows)}"), style="bold")
    for r in rows:
        card = Table(show_header=False, box=None, padding=(0, 1))
        card.add_column(style="bold", no_wrap=True)
        card.add_column(overflow="fold")
        for c, v in zip(headers, r, strict=True):
            card.add_row(escape(c), escape(v))
        console.rule(style="dim")
        console.print(card)


@contextlib.contextmanager
def working(
    message: str, total: int | None = None, *, unit: str = "records", json_mode: bool = False
) -> Iterator[Callable[[int], None]]:
    """Progress of one long step: a rich bar on stderr when stderr is a terminal, a few lines in logs.

    Off a terminal it prints a ``progress: ...`` line only when the step runs longer than ``QUIET_S`` (then
    one every 30 s and one at the end), so short commands print exactly what they always did. Nothing at
    all with ``json_mode`` (``--json``): stdout is one JSON document and stderr stays clean.

    Args:
        message: what is being done ("verifying"), the stage's name.
        total: units of work, for a bar with an ETA; None shows elapsed time only.
        unit: what is counted, plural.
        json_mode: the command prints JSON: no progress at all.

    Yields:
        ``update(done)``: report ``done`` units done so far (an absolute count, as library hooks report it).
    """
    from flytekitplugins.aios_core.progress import Reporter

    with Reporter(unit, mode="off" if json_mode else "auto", quiet_s=QUIET_S, transient=True) as rep:
        rep.stage(message, total)
        yield rep.callback(message)
        rep.end(message)


QUIET_S = 5.0
"""Off a terminal, a step that ends within this many seconds prints no progress line."""
