"""End to end with real processes: ``pyflyte run`` waits at the gate; ``aios approvals`` in another process
lists the request, refuses a self-approval and an unauthorized one, accepts an authorized one; the workflow
finishes and pays once. A second run whose request times out pays nothing. Stdin is never read."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from flytekitplugins.aios_approvals.evaluate import Env
from flytekitplugins.aios_core.settings import get_settings

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
WF = "tests/approvals/approval_wf.py"


def _env(principal: str = "") -> dict[str, str]:
    env = dict(os.environ, FLYTE_SDK_LOGGING_LEVEL="30", PYTHONPATH=str(REPO))
    env["AIOS_PRINCIPAL"] = principal
    return env


def _aios(*args: str, principal: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "aios"), "approvals", *args],
        env=_env(principal),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )


class Run:
    """``pyflyte run`` in the background, launched by user:bob, output to a file."""

    def __init__(self, tmp: Path, *args: str, stdin: str | None) -> None:
        self.log = tmp / f"run-{time.time_ns()}.log"
        with open(self.log, "w") as out:
            self.proc = subprocess.Popen(
                [str(BIN / "pyflyte"), "run", WF, *args],
                env=_env("user:bob"),
                cwd=REPO,
                text=True,
                stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        if stdin is not None:
            assert self.proc.stdin is not None
            self.proc.stdin.write(stdin)
            self.proc.stdin.close()

    def finish(self, timeout: float = 90) -> tuple[int, str]:
        try:
            rc = self.proc.wait(timeout)
        finally:
            self.proc.kill()
        return rc, self.log.read_text()


def _wait_pending(deadline_s: float = 60) -> str:
    """Id of the first pending request, read from the shared audit store (the CLI is asserted separately)."""
    from flytekitplugins.aios_approvals import outcome
    from flytekitplugins.aios_approvals.state import projection
    from flytekitplugins.aios_audit import audit_log

    end = time.time() + deadline_s
    while time.time() < end:
        ids = [
            rid
            for rid in projection(audit_log(get_settings())).requests
            if outcome(rid, env=Env.load(get_settings())).status == "pending"
        ]
        if ids:
            return ids[0]
        time.sleep(0.1)
    raise AssertionError("no pending approval request appeared")


@pytest.mark.slow
def test_local_run_waits_for_an_authorized_approval(aios_env: Path) -> None:
    run = Run(aios_env, "payment_wf", "--amounts", "[500, 12500]", stdin="\n\n\n")  # empty lines must not approve
    try:
        rid = _wait_pending()
        (row,) = json.loads(_aios("list", "--json").stdout)
        assert row["request_id"] == rid and row["status"] == "pending" and row["summary"]["amount"] == 12500
        table = _aios("list")
        assert rid in table.stdout and "payment-signoff" in table.stdout and "user:carol" in table.stdout
        assert row["launcher"] == "user:bob" and row["may_decide"] == ["user:carol"]
        time.sleep(1.0)
        assert run.proc.poll() is None  # still waiting: empty lines on stdin approved nothing
        self_appr = _aios("approve", rid, "--as", "user:bob")
        assert self_appr.returncode == 3 and "separation_of_duties" in self_appr.stdout
        unauth = _aios("approve", rid, "--as", "user:alice")
        assert unauth.returncode == 3 and "refused (role)" in unauth.stdout
        assert run.proc.poll() is None
        ok = _aios("approve", rid, "--as", "user:carol", "--reason", "invoice matches PO")
        assert ok.returncode == 0 and "request is approved" in ok.stdout
    finally:
        rc, out = run.finish()
    assert rc == 0, out
    assert "o0=1, o1=1" in out
    pays = (aios_env / "payments.log").read_text().splitlines()
    assert pays[0] == "auto 500" and pays[1].startswith(f"approved {rid} ") and len(pays) == 2
    shown = json.loads(_aios("show", rid).stdout)
    assert shown["outcome"]["status"] == "approved" and shown["decisions"][0]["approver"] == "user:carol"
    assert [r["code"] for r in shown["refusals"]] == ["separation_of_duties", "role"]


@pytest.mark.slow
def test_local_run_times_out_and_pays_nothing(aios_env: Path) -> None:
    rc, out = Run(aios_env, "payment_wf", "--amounts", "[12500]", "--timeout_s", "2", stdin=None).finish()
    assert rc == 0, out  # stdin was /dev/null
    assert "o0=0, o1=0" in out
    assert not (aios_env / "payments.log").exists()
    rows = json.loads(_aios("list", "--all", "--json").stdout)
    assert [r["status"] for r in rows] == ["timed_out"]
    late = _aios("approve", str(rows[0]["request_id"]), "--as", "user:carol")
    assert late.returncode == 3 and "already timed_out" in late.stdout


@pytest.mark.slow
def test_gate_timeout_fails_the_run(aios_env: Path) -> None:
    rc, out = Run(aios_env, "short_gate_wf", stdin="y\n").finish()  # even a "y" on stdin approves nothing
    assert rc != 0
    assert "timed out after 0:00:02" in out
    assert not (aios_env / "payments.log").exists()
