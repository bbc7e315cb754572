"""Run a doc's command blocks as written, in order, in a scratch directory that looks like the checkout.

The scratch directory (the test's ``tmp_path``) gets symlinks to the repository's code folders and ``.venv``, a
copy of ``config/`` (AIOS_CONFIG_DIR), its own ``AIOS_STATE_DIR`` and audit store, and ``.venv/bin`` first on
PATH. A block marked ``second-terminal`` runs while the block before it is still running. ``<id>`` in a block is
what a reader copies from ``aios approvals list``: the harness fills in the oldest pending request's id.
A command whose trailing comment says it is refused, denied or fails may exit non-zero; any other must exit 0.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

from tests.docs.doc_blocks import REPO, Block, commands

LINKED = ("workflows", "tasks", "tests", "scripts", "benchmarks", "connectors", "plugins", "deploy", ".venv")
LINKED += ("workflows_flyte2", "pyproject.toml", ".data")
MAY_FAIL = re.compile(r"\b(refused|denied|fails|exit [1-9])\b")
BLOCK_TIMEOUT_S = 240


def scratch(tmp_path: Path) -> dict[str, str]:
    """Prepare ``tmp_path`` as the reader's checkout; return the environment blocks run with."""
    for name in LINKED:
        if (REPO / name).exists() and not (tmp_path / name).exists():
            (tmp_path / name).symlink_to(REPO / name)
    shutil.copytree(REPO / "config", tmp_path / "config", dirs_exist_ok=True)
    env = dict(os.environ)
    env.update(
        AIOS_CONFIG_DIR=str(tmp_path / "config"),
        PATH=f"{REPO / '.venv' / 'bin'}:{env.get('PATH', '')}",
        PYTHONPATH=f"{tmp_path}:{env.get('PYTHONPATH', '')}".rstrip(":"),
        COLUMNS="120",
    )
    return env


def split_comment(line: str) -> tuple[str, str]:
    """(command, trailing comment) of one shell line; a ``#`` inside quotes or a word is not a comment."""
    quote = ""
    for i, ch in enumerate(line):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip(), line[i + 1 :].strip()
    return line, ""


def script(block: Block) -> str:
    """The block as a bash script that reports every command's exit status and stops at an unexpected one."""
    out = ["set -o pipefail"]
    for n, line in enumerate(commands(block.text), 1):
        cmd, comment = split_comment(line)
        if not cmd:
            continue
        allowed = "1" if MAY_FAIL.search(comment) else "0"
        out.append(
            f'{{ {cmd}\n}}; rc=$?; if [ $rc -ne 0 ]; then echo "docs-test: command {n} exited $rc: {_q(cmd)}" >&2;'
            f" [ {allowed} = 1 ] || exit $rc; fi"
        )
    return "\n".join(out) + "\n"


def _q(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$").replace("`", "\\`")


def pending_id(cwd: Path, env: dict[str, str], timeout_s: float = 180) -> str:
    """The oldest pending approval request (what a reader copies from ``aios approvals list``)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        res = subprocess.run(
            ["aios", "approvals", "list", "--json"], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
        )
        if res.returncode == 0 and (rows := json.loads(res.stdout or "[]")):
            return str(rows[0]["request_id"])
        time.sleep(1.0)
    msg = f"no pending approval request appeared within {timeout_s:.0f} s (for <id>)"
    raise AssertionError(msg)


def start(block: Block, cwd: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    """Start ``block`` (filling ``<id>`` first when it has one); its output goes to a log beside it."""
    text = script(block)
    if "<id>" in text:
        text = text.replace("<id>", pending_id(cwd, env))
    log = (cwd / f".docs-test-{block.line}.log").open("w", encoding="utf-8")
    return subprocess.Popen(["bash", "-c", text], cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)


def finish(block: Block, proc: subprocess.Popen[str], cwd: Path) -> str:
    """Wait for ``proc``; fail with the block's location and output when it did not exit 0."""
    try:
        proc.wait(timeout=BLOCK_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    output = (cwd / f".docs-test-{block.line}.log").read_text(encoding="utf-8", errors="replace")
    assert proc.returncode is not None and proc.returncode >= 0, f"{block.where}: killed after {BLOCK_TIMEOUT_S} s"
    assert proc.returncode == 0, f"{block.where}: exit {proc.returncode}\n{output[-6000:]}"
    assert "Traceback (most recent call last)" not in output, f"{block.where}: printed a traceback\n{output[-6000:]}"
    return output


def run_doc(blocks: list[Block], cwd: Path, env: dict[str, str]) -> list[str]:
    """Run the runnable blocks in order (a second-terminal block beside the one before it); their outputs."""
    runnable = [b for b in blocks if b.mode in ("run", "second-terminal")]
    outputs: list[str] = []
    i = 0
    while i < len(runnable):
        block = runnable[i]
        beside = runnable[i + 1] if i + 1 < len(runnable) and runnable[i + 1].mode == "second-terminal" else None
        first = start(block, cwd, env)
        try:
            if beside is not None:
                outputs.append(finish(beside, start(beside, cwd, env), cwd))
            outputs.append(finish(block, first, cwd))
        finally:
            if first.poll() is None:
                first.kill()
                first.wait()
        i += 2 if beside is not None else 1
    return outputs
