"""``pyflyte run`` (a real subprocess from the repo root): a denied gated task does not act."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from flytekitplugins.aios_core.settings import get_settings

from .conftest import REPO


def _pyflyte(state: Path, *args: str, principal: str = "service:document-pipeline") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AIOS_PRINCIPAL": principal, "FLYTE_SDK_LOGGING_LEVEL": "40", "PYTHONPATH": str(REPO)}
    cmd = [str(Path(sys.executable).parent / "pyflyte"), "run", "tests/policy/gated_wf.py", "pay_wf", *args]
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def _audit_statuses(state: Path) -> list[tuple[str, str, list[str]]]:
    from flytekitplugins.aios_audit import audit_log

    recs = [r for r in audit_log(get_settings()).scan() if r.event.kind == "policy_decision"]
    return [(r.event.status, r.event.subject, r.event.policy_decisions[0]["policy_ids"]) for r in recs]


@pytest.mark.slow
def test_pyflyte_run_denied_task_does_not_act(aios_env: Path) -> None:
    denied = _pyflyte(aios_env, "--doc_id", "inv-bad", "--currency", "XBT")
    assert denied.returncode != 0
    out = denied.stdout + denied.stderr
    assert "doc-known-currency" in out and "GovernanceDenied" in out
    assert not (aios_env / "paid-inv-bad").exists()

    allowed = _pyflyte(aios_env, "--doc_id", "inv-ok", "--amount", "250.0")
    assert allowed.returncode == 0, allowed.stderr[-2000:]
    assert (aios_env / "paid-inv-ok").read_text() == "250.0 EUR"

    assert _audit_statuses(aios_env) == [
        ("deny", "inv-bad", ["doc-known-currency"]),
        ("allow", "inv-ok", ["doc-act-roles"]),
    ]


@pytest.mark.slow
def test_pyflyte_run_principal_without_role_is_denied(aios_env: Path) -> None:
    run = _pyflyte(aios_env, "--doc_id", "inv-2", principal="user:bob")
    assert run.returncode != 0 and "default deny" in run.stdout + run.stderr
    assert not (aios_env / "paid-inv-2").exists()
    assert _audit_statuses(aios_env) == [("deny", "inv-2", [])]
