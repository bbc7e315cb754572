"""Approvals on Flyte 2 conditions: roles, quorum and verification after the condition (local mode)."""

from __future__ import annotations

import io
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from flytekitplugins.aios_audit import audit_log
from flytekitplugins.aios_core.settings import get_settings
from tests.flyte2.inner.governed_tasks import pay_async, pay_on_condition, pay_sync, run_local

AIOS = str(Path(sys.executable).parent / "aios")


def aios(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([AIOS, *args], capture_output=True, text=True, timeout=120)


def events(kind: str) -> list[Any]:
    return [r.event for r in audit_log(get_settings()).scan() if r.event.kind == kind]


def wait_for_request(timeout: float = 60.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = events("approval_request")
        if found:
            return str(found[0].subject)
        time.sleep(0.1)
    raise AssertionError("the run opened no approval request")


@pytest.mark.parametrize("task", [pay_sync, pay_async], ids=["sync", "async"])
def test_condition_refuses_an_approver_without_the_role_and_accepts_a_quorum(task: Any, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            result["out"] = run_local(task, doc_id="doc-big", amount=60000.0, currency="EUR", marker=str(marker))
        except Exception as e:
            result["error"] = e

    worker = threading.Thread(target=run)
    worker.start()
    rid = wait_for_request()
    refused = aios("approvals", "approve", rid, "--as", "user:alice")  # ops-analyst: not a finance-approver
    assert refused.returncode != 0
    time.sleep(0.5)
    assert not marker.exists() and worker.is_alive()
    assert aios("approvals", "approve", rid, "--as", "user:bob").returncode == 0  # 1 of 2 (high risk)
    time.sleep(0.5)
    assert not marker.exists() and worker.is_alive()
    assert aios("approvals", "approve", rid, "--as", "user:carol").returncode == 0
    worker.join(60)
    assert "error" not in result, result.get("error")
    assert marker.exists()
    assert [e.actor for e in events("approval_refused")] == ["user:alice"]
    verified = events("approval_verified")
    assert [v.status for v in verified] == ["approved"] and verified[-1].attributes["consumed_by"]
    task = events("task")[-1]
    assert task.status == "succeeded" and task.approvals and task.approvals[0]["status"] == "approved"
    assert aios("audit", "verify").returncode == 0


def test_a_condition_value_without_an_authorized_decision_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Someone answers the condition "yes" (flyte's local console prompt; on a cluster the UI) with no role."""
    monkeypatch.setattr(sys, "stdin", io.StringIO("y\n"))
    marker = tmp_path / "ran"
    with pytest.raises(Exception, match="refused"):
        run_local(pay_on_condition, doc_id="doc-sig", amount=20000.0, currency="EUR", marker=str(marker))
    assert not marker.exists()
    assert [e.status for e in events("approval_refused")] == ["signal_without_decision"]
    assert [e.status for e in events("task")] == ["failed"]
    assert aios("audit", "verify").returncode == 0


def test_a_condition_answered_no_denies_and_consumes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("n\n"))
    marker = tmp_path / "ran"
    with pytest.raises(Exception, match="rejected"):
        run_local(pay_on_condition, doc_id="doc-no", amount=20000.0, currency="EUR", marker=str(marker))
    assert not marker.exists()
    assert [e.status for e in events("approval_refused")] == ["condition_declined"]
    assert not events("approval_verified")


@pytest.mark.parametrize(
    ("timeout_s", "shown"),
    [(-5.0, "not -5.0"), (0.0, "not 0.0"), (float("nan"), "not nan"), (1e12, "not 1000000000000.0")],
    ids=["negative", "zero", "nan", "past a year"],
)
def test_an_approval_timeout_input_out_of_range_fails_before_a_request_opens(
    tmp_path: Path, timeout_s: float, shown: str
) -> None:
    """The launcher chooses ``timeout_s``: -5 opened a request already timed out, NaN ended in "cannot convert float
    NaN to integer" and 1e12 in an overflow, deep in opening it; now the attempt fails naming the input."""
    marker = tmp_path / "ran"
    with pytest.raises(Exception, match="approval timeout input 'timeout_s' must be a number of seconds") as err:
        run_local(pay_async, doc_id="doc-big", amount=60000.0, currency="EUR", marker=str(marker), timeout_s=timeout_s)
    assert shown in str(err.value)
    assert not marker.exists() and events("approval_request") == []
    assert [e.status for e in events("task")] == ["failed"]
