"""Approval state shared across processes ("pods") through the PostgreSQL audit store, with racing deciders."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from flytekitplugins.aios_approvals import open_request, outcome
from flytekitplugins.aios_approvals.evaluate import Env
from flytekitplugins.aios_audit import audit_log, close_all
from flytekitplugins.aios_core.settings import get_settings, reset_settings

BIN = Path(sys.executable).parent


@pytest.mark.postgres
@pytest.mark.slow
def test_decisions_from_other_processes_race_and_count_once(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIOS_AUDIT_STORE", pg_url)
    monkeypatch.setenv("AIOS_PRINCIPAL", "service:launcher")
    close_all()
    reset_settings()
    rid = open_request(
        "payment-signoff", "high", "sha256:pg", {"amount": 90000}, requester="service:x", env=Env.load(get_settings())
    )
    env = dict(os.environ, AIOS_AUDIT_STORE=pg_url, AIOS_PRINCIPAL="")
    procs = [
        subprocess.Popen(
            [str(BIN / "aios"), "approvals", "approve", rid, "--as", who],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for who in ["user:carol", "user:carol", "user:bob", "user:bob"]
    ]
    results = [(p.wait(60), p.stdout.read() if p.stdout else "") for p in procs]
    assert all(rc in (0, 3) for rc, _ in results), results
    out = outcome(rid, env=Env.load(get_settings()))
    assert out.status == "approved" and sorted(out.approvers) == ["user:bob", "user:carol"]
    events = [r.event for r in audit_log(get_settings()).scan() if r.event.subject == rid]
    decisions = [e for e in events if e.kind == "approval_decision"]
    refused = [e for e in events if e.kind == "approval_refused"]
    assert len(decisions) + len(refused) == 4  # every attempt is on the record, whichever way the race went
    assert {e.actor for e in decisions} == {"user:bob", "user:carol"}
