"""The README's first command: `aios demo` runs the governed document workflow end to end, with an approval
granted through `aios approvals` from a second process, and names its outputs."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.foundation.packaging import REPO


@pytest.mark.slow
def test_aios_demo_end_to_end(tmp_path: Path) -> None:
    state = tmp_path / "state"
    env = {**os.environ, "AIOS_STATE_DIR": str(state), "AIOS_AUDIT_STORE": f"sqlite:///{state}/audit.db"}
    env.pop("AIOS_PRINCIPAL", None)
    aios = str(Path(sys.executable).parent / "aios")
    proc = subprocess.run([aios, "demo"], cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    # a human decision came through the CLI, from another process than the workflow
    assert "approved apr-" in out and "(payment-signoff" in out
    assert "audit verify:   OK:" in out
    # off a terminal the workflow's stages come through as a few plain lines on stderr (bars on a terminal)
    ended = [ln for ln in proc.stderr.splitlines() if ln.startswith("progress: ") and " done in " in ln]
    stages = [ln.split(":")[1].strip() for ln in ended]  # a first run also trains the models ("train models")
    assert {"ingest", "parse + protect", "classify", "decide + policy"} <= set(stages) and len(ended) <= 6
    demo = state / "demo"
    for name in ("results/results.csv", "results/quarantine.csv", "checkpoint.json", "lineage-report.html"):
        assert (demo / name).is_file(), name
    results = list(csv.DictReader((demo / "results" / "results.csv").open()))
    quarantine = list(csv.DictReader((demo / "results" / "quarantine.csv").open()))
    documents = [p for p in (demo / "corpus").iterdir() if not p.name.startswith(".")]
    assert len(results) + len(quarantine) == len(documents)  # nothing lost
    assert all(q["reason"] for q in quarantine)
    outcomes = {r["outcome"] for r in results}
    assert "acted_after_approval" in outcomes and "approval_rejected" in outcomes
    # the requests record who launched the run, so separation of duties could be enforced against it
    listing = [aios, "approvals", "list", "--all", "--json"]
    shown = subprocess.run(listing, cwd=REPO, env=env, capture_output=True, text=True)
    assert shown.returncode == 0 and '"launcher": "service:document-pipeline"' in shown.stdout
