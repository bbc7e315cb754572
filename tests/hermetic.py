"""Guard of the suite's hermeticity: no test may leave files in the repository checkout.

Every test runs with its own state dir, cwd, HOME and TMPDIR (tests/conftest.py). This plugin checks that
nothing escaped them: it takes an inventory of the checkout's untracked files (``git ls-files`` tells the
tracked ones apart; build and tool caches are skipped) when the session starts and compares it when the
session ends; any file created, modified or deleted fails the run. After each test a quick look at the
repository's ``.aios/`` and top-level entries names the test that wrote there (an error at its teardown).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

# tool folders the suite's own tools write (pytest, ruff, mypy) or only read (.venv, .venv-flyte2, .data), and git
IGNORED = frozenset(
    {".git", ".venv", ".venv-flyte2", ".data", "__pycache__", ".pytest_cache", ".ruff_cache", ".mypy_cache"}
)
STATE_DIR = ".aios"

Inventory = dict[str, tuple[int, int]]


def tracked_files(root: Path) -> frozenset[str]:
    """Paths git tracks under ``root`` (relative, ``/``-separated); empty outside a git checkout."""
    try:
        res = subprocess.run(["git", "ls-files", "-z"], cwd=root, capture_output=True, timeout=60, check=True)
    except (OSError, subprocess.SubprocessError):
        return frozenset()
    return frozenset(p for p in res.stdout.decode("utf-8", "surrogateescape").split("\0") if p)


def inventory(root: Path, tracked: frozenset[str] = frozenset(), *, top_level_only: bool = False) -> Inventory:
    """``relative path -> (mtime_ns, size)`` of the untracked files under ``root``; folders as ``(0, 0)``.

    Args:
        root: The checkout.
        tracked: Paths to leave out (git tracks them).
        top_level_only: Only the entries directly in ``root``, plus everything under its ``.aios/``.
    """
    out: Inventory = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel = Path(dirpath).relative_to(root)
        dirnames[:] = sorted(d for d in dirnames if d not in IGNORED)
        if top_level_only and rel == Path("."):
            dirnames[:] = [d for d in dirnames if d == STATE_DIR]
        for d in dirnames:
            out[(rel / d).as_posix()] = (0, 0)
        for name in filenames:
            path = (rel / name).as_posix()
            if path in tracked:
                continue
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except FileNotFoundError:  # removed while we looked
                continue
            out[path] = (st.st_mtime_ns, st.st_size)
    if top_level_only:  # the other top-level folders are there; whether they changed is the session's check
        out.update({e.name: (0, 0) for e in os.scandir(root) if e.is_dir() and e.name not in IGNORED})
    return out


def changes(before: Inventory, after: Inventory) -> list[str]:
    """What differs between two inventories, one line per path (``created``, ``modified``, ``deleted``)."""
    lines = [f"created  {p}" for p in sorted(after.keys() - before.keys())]
    lines += [f"deleted  {p}" for p in sorted(before.keys() - after.keys())]
    lines += [f"modified {p}" for p in sorted(before.keys() & after.keys()) if before[p] != after[p]]
    return sorted(lines, key=lambda line: line[9:])


class RepoGuard:
    """Pytest plugin failing the run when tests leave files in the checkout at ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.tracked: frozenset[str] = frozenset()
        self.start: Inventory = {}
        self.quick: Inventory = {}
        self.found: list[str] = []

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self.tracked = tracked_files(self.root)
        self.start = inventory(self.root, self.tracked)
        self.quick = inventory(self.root, self.tracked, top_level_only=True)

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_teardown(self, item: pytest.Item) -> None:
        now = inventory(self.root, self.tracked, top_level_only=True)
        diff, self.quick = changes(self.quick, now), now
        if diff:
            msg = f"{item.nodeid} wrote into the repository {self.root} (write under tmp_path instead):\n  "
            raise AssertionError(msg + "\n  ".join(diff))

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        self.found = changes(self.start, inventory(self.root, self.tracked))
        if self.found:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if self.found:
            terminalreporter.section("hermeticity guard", sep="=", red=True, bold=True)
            terminalreporter.write_line(f"files in the repository {self.root} changed during the run (tests must")
            terminalreporter.write_line("write only under their tmp_path; or was the checkout edited meanwhile?):")
            for line in self.found:
                terminalreporter.write_line(f"  {line}")
