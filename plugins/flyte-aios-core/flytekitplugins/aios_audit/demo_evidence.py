"""What ``aios demo`` shows a compliance reviewer at the end: the lineage of the approved payment (by its approval
request id and by its posted action), of one rejected payment, and the run's evidence bundle verified offline."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import click

_DECIDED = re.compile(r"^(approved|rejected) (apr-[0-9a-f]+) \(payment-signoff")


def _aios(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    aios = str(Path(sys.executable).parent / "aios")
    return subprocess.run([aios, *args], env=env, cwd=cwd, capture_output=True, text=True, check=False)


def _show(title: str, proc: subprocess.CompletedProcess[str]) -> None:
    click.echo(f"\n{title}")
    click.echo((proc.stdout or proc.stderr).rstrip())


def show_evidence(decided: list[str], out: Path, env: dict[str, str], cwd: Path) -> None:
    """Print the traces and export + verify the evidence bundle of the run (``decided``: the demo's decision log)."""
    found = {m.group(1): m.group(2) for line in reversed(decided) if (m := _DECIDED.match(line))}
    approved, rejected = found.get("approved"), found.get("rejected")
    if approved:
        traced = _aios(["lineage", "trace", approved, "--json"], env, cwd)
        _show(
            f"$ aios lineage trace {approved}   # the approved payment", _aios(["lineage", "trace", approved], env, cwd)
        )
        try:
            doc = json.loads(traced.stdout)
        except ValueError:
            doc = {}
        cases = doc.get("cases") or [{}]
        action = next((a for a in cases[0].get("actions", []) if a.get("kind") == "action"), None)
        if action:
            ref = f"#{action['seq']}"
            _show(f"$ aios lineage trace '{ref}'   # its posted action", _aios(["lineage", "trace", ref], env, cwd))
        run = next((r.get("execution") for r in cases[0].get("approval_requests", [])), "")
        if run:
            bundle = out / "evidence-run.zip"
            _show(
                f"$ aios evidence export --execution {run} -o {bundle}",
                _aios(["evidence", "export", "--execution", run, "-o", str(bundle)], env, cwd),
            )
            _show(f"$ aios evidence verify {bundle}", _aios(["evidence", "verify", str(bundle)], env, cwd))
    if rejected:
        _show(
            f"$ aios lineage trace {rejected}   # a rejected payment", _aios(["lineage", "trace", rejected], env, cwd)
        )
