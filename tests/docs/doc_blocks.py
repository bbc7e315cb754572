"""Extract the shell blocks of README.md and docs/*.md with their ``docs-test`` markers.

A fenced block whose info string is ``bash``, ``sh`` or ``console`` is a command block. The HTML comment on
the line(s) just above its fence says how the docs harness treats it (no marker: it runs)::

    <!-- docs-test: second-terminal -->     runs while the block before it is still running (a second terminal)
    <!-- docs-test: cluster-only -->        needs a Flyte cluster, Kubernetes or Helm: not run here
    <!-- docs-test: skip (why) -->          not run here, for the reason given (printed by the harness)

Marked blocks are still checked against the code (``doc_drift``): their commands must name real ``aios``
commands and options, real workflow files, workflows and inputs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHELL_LANGS = {"bash", "sh", "console", "shell"}
MODES = ("run", "second-terminal", "cluster-only", "skip")
_MARKER = re.compile(r"^<!--\s*docs-test:\s*(?P<mode>[a-z-]+)\s*(?:\((?P<reason>.*)\))?\s*-->$")
_FENCE = re.compile(r"^(?P<fence>```+|~~~+)\s*(?P<lang>[\w-]*)")


@dataclass(frozen=True)
class Block:
    """One command block: where it is, what it says and how the harness treats it."""

    doc: str
    line: int
    text: str
    mode: str = "run"
    reason: str = ""
    marker_error: str = ""

    @property
    def where(self) -> str:
        """``doc:line`` of the opening fence."""
        return f"{self.doc}:{self.line}"


def doc_files() -> list[Path]:
    """README.md and every docs/*.md, in a stable order."""
    return [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def _marker(lines: list[str], fence_index: int) -> tuple[str, str, str]:
    """(mode, reason, error) from the comment above the fence at ``fence_index`` (blank lines allowed)."""
    i = fence_index - 1
    while i >= 0 and not lines[i].strip():
        i -= 1
    m = _MARKER.match(lines[i].strip()) if i >= 0 else None
    if m is None:
        return "run", "", ""
    mode, reason = m["mode"], (m["reason"] or "").strip()
    if mode not in MODES:
        return "run", "", f"unknown docs-test mode {mode!r} (use one of {', '.join(MODES)})"
    if mode == "skip" and not reason:
        return "skip", "", "a docs-test skip needs a reason: <!-- docs-test: skip (why) -->"
    return mode, reason, ""


def extract(path: Path) -> list[Block]:
    """Every shell block of the markdown file ``path``, in order."""
    lines = path.read_text(encoding="utf-8").splitlines()
    doc = str(path.relative_to(REPO))
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if m is None:
            i += 1
            continue
        end = next((j for j in range(i + 1, len(lines)) if lines[j].startswith(m["fence"])), len(lines))
        if m["lang"] in SHELL_LANGS:
            mode, reason, error = _marker(lines, i)
            blocks.append(Block(doc, i + 1, "\n".join(lines[i + 1 : end]), mode, reason, error))
        i = end + 1
    return blocks


def commands(text: str) -> list[str]:
    """The command lines of a block: continuations joined, comments and blank lines dropped."""
    out: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.rstrip()
        if not pending and line.lstrip().startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        if full:
            out.append(full)
    return out
