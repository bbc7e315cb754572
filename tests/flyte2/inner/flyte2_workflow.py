"""The Flyte 2 document pipeline end to end in local mode (a separate process), decided with the aios CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from flytekitplugins.aios_audit import audit_log
from flytekitplugins.aios_core.settings import get_settings

REPO = Path(__file__).resolve().parents[3]
AIOS = str(Path(sys.executable).parent / "aios")
DOCS = {
    "a-small.txt": "type: invoice\namount: 1200.50\ncurrency: EUR\n",
    "b-yen.txt": "type: invoice\namount: 900\ncurrency: JPY\n",
    "c-large.txt": "type: payment_instruction\namount: 15000\ncurrency: EUR\n",
    "d-letter.txt": "type: letter\npersonal: yes\n",
}


def test_document_pipeline_runs_in_local_mode_with_its_gates(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for name, text in DOCS.items():
        (docs / name).write_text(text, encoding="utf-8")
    cmd = [sys.executable, "-m", "workflows_flyte2.documents", str(docs), "--approval-timeout", "60"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        rid = ""
        while not rid and time.monotonic() < deadline and proc.poll() is None:
            found = [r.event.subject for r in audit_log(get_settings()).scan() if r.event.kind == "approval_request"]
            rid = found[0] if found else ""
            time.sleep(0.2)
        assert rid, "the run opened no payment-signoff request"
        assert subprocess.run([AIOS, "approvals", "approve", rid, "--as", "user:dave"], timeout=60).returncode != 0
        assert subprocess.run([AIOS, "approvals", "approve", rid, "--as", "user:bob"], timeout=60).returncode == 0
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err.decode()[-2000:]
    summary = json.loads(out.decode().strip().splitlines()[-1])
    outcomes = [(d["outcome"], d.get("reason", "")) for d in summary["documents"]]
    assert outcomes == [("acted", ""), ("not_acted", "policy_deny"), ("acted", ""), ("acted", "")]
    evs = [r.event for r in audit_log(get_settings()).scan()]
    assert {e.execution.name for e in evs if e.execution and e.kind == "task"} == {summary["run"]}
    requests = [e for e in evs if e.kind == "approval_request"]
    assert len(requests) == 1 and requests[0].attributes["request"]["gate"] == "payment-signoff"
    assert [e.status for e in evs if e.kind == "approval_verified"] == ["approved"]
    verify = subprocess.run([AIOS, "audit", "verify"], capture_output=True, text=True, timeout=120)
    assert verify.returncode == 0 and "chain intact" in verify.stdout


def test_a_document_that_cannot_be_read_is_set_aside_and_the_batch_goes_on(tmp_path: Path) -> None:
    """An amount that is no number stopped the whole batch (float('abc') in the reading task, outside the batch's
    error handling), and a file that is no UTF-8 text ended the command in a traceback before the run started.

    ``float`` also read ``12.500`` (twelve thousand five hundred in German) as 12.5 and acted on it without the sign-off
    over 10,000, read a payment with no amount line as 0.0 and posted it, and set ``1.200,50`` aside as no number."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a-small.txt").write_text(DOCS["a-small.txt"], encoding="utf-8")
    (docs / "b-bad-amount.txt").write_text("type: invoice\namount: twelve hundred\ncurrency: EUR\n", encoding="utf-8")
    (docs / "c-latin1.txt").write_bytes("type: invoice\namount: 10\nvendor: Société\n".encode("latin-1"))
    (docs / "d-either-way.txt").write_text("type: invoice\namount: 12.500\ncurrency: EUR\n", encoding="utf-8")
    (docs / "e-no-amount.txt").write_text("type: payment_instruction\ncurrency: EUR\n", encoding="utf-8")
    # another amount than a-small's 1200.50: written 1.200,50 it is the same invoice and a duplicate of it
    (docs / "f-european.txt").write_text("type: invoice\namount: 1.300,50\ncurrency: EUR\n", encoding="utf-8")
    cmd = [sys.executable, "-m", "workflows_flyte2.documents", str(docs), "--approval-timeout", "60"]
    res = subprocess.run(cmd, cwd=tmp_path, env=dict(os.environ), capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    outcomes = [(d["outcome"], d.get("reason", "")) for d in summary["documents"]]
    unreadable = ("quarantined", "unreadable_amount")
    assert outcomes == [("acted", ""), unreadable, unreadable, unreadable, ("acted", "")], outcomes
    assert summary["quarantined"] == [{"file": "c-latin1.txt", "outcome": "quarantined", "reason": "not_utf8_text"}]


def test_a_bad_command_line_is_one_error_and_exit_2(tmp_path: Path) -> None:
    for args in (["--approval-timeout", "soon"], ["--approval-timeout"], ["--approval-timeout", "nan"], []):
        cmd = [sys.executable, "-m", "workflows_flyte2.documents", *args]
        if args:
            cmd.insert(3, str(tmp_path))
        res = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert res.returncode == 2 and res.stderr.startswith("error: "), (args, res.stderr[-500:])
        assert "Traceback" not in res.stderr
