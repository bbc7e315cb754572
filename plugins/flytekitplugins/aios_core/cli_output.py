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
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import IO, Any

import click

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_REFUSED, EXIT_INTERNAL = 0, 1, 2, 3, 4
WORD = 24  # words up to this long are never cut: a column is at least this wide or as wide as its longest word


class UserError(click.ClickException):
    """A bad input the user can fix: printed as one ``error: ...`` line, exit 2."""

    exit_code = EXIT_USAGE

    def show(self, file: IO[Any] | None = None) -> None:
        """Print ``error: <message>`` on stderr as one line (no ``Usage:`` block, no traceback)."""
        click.echo(f"error: {' '.join(self.format_message().split())}", err=True, file=file)


class InternalError(UserError):
    """An unexpected exception (a bug): one line, exit 4."""

    exit_code = EXIT_INTERNAL


def echo_json(doc: Any) -> None:
    """Print ``doc`` as indented, key-sorted JSON (what ``--json`` prints)."""
    click.echo(json.dumps(doc, indent=2, sort_keys=True, default=str))


def make_console(width: int | None = None) -> Any:
    """A rich console: the terminal's width on a TTY; ``COLUMNS`` or 200 for pipes and logs."""
    from rich.console import Console

    if width is None and not sys.stdout.isatty():
        width = int(os.environ.get("COLUMNS", "0") or 0) or 200
    return Console(width=width, soft_wrap=False)


def _min_width(header: str, cells: Sequence[str]) -> int:
    words = header.split() + [w for c in cells for w in c.split()]
    return max([min(len(w), WORD) for w in words] + [1])


def print_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[str]], console: Any = None) -> None:
    """Print a table that never cuts a word of up to ``WORD`` characters.

    When the columns fit the console at their minimum widths (each as wide as its longest word, up to
    ``WORD``) this is one table; when they do not (80 columns, many fields) each row is printed as a
    ``field  value`` block instead of squeezing every column to a character or two.

    Args:
        title: The table's title.
        columns: Header of each column.
        rows: Cell text (plain, not rich markup) per row.
        console: A rich console (default: ``make_console()``).
    """
    from rich.markup import escape
    from rich.table import Table

    console = console or make_console()
    widths = [_min_width(c, [r[i] for r in rows]) for i, c in enumerate(columns)]
    if sum(widths) + 3 * len(columns) + 1 <= console.width:
        table = Table(title=escape(title))
        for c, w in zip(columns, widths, strict=True):
            table.add_column(escape(c), overflow="fold", min_width=w)
        for r in rows:
            table.add_row(*(escape(c) for c in r))
        console.print(table)
        return
    console.print(escape(f"{title}: {len(rows)}"), style="bold")
    for r in rows:
        card = Table(show_header=False, box=None, padding=(0, 1))
        card.add_column(style="bold", no_wrap=True)
        card.add_column(overflow="fold")
        for c, v in zip(columns, r, strict=True):
            card.add_row(escape(c), escape(v))
        console.rule(style="dim")
        console.print(card)


@contextlib.contextmanager
def working(message: str, total: int | None = None) -> Iterator[Callable[[int], None]]:
    """A rich progress bar on stderr while long work runs, only when stdout is a terminal.

    Args:
        message: What is being done ("verifying 1,200,000 records").
        total: Units of work, for a bar with an ETA; None shows a spinner.

    Yields:
        ``advance(n)``: report ``n`` more units done (a no-op off a terminal, so scripts and logs stay clean).
    """
    if not sys.stdout.isatty():
        yield lambda n: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeRemainingColumn

    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(message, total=total)
        yield lambda n: bar.advance(task, n)
