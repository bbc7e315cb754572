"""Approvals cannot be forged, reused or blocked (issue 13, items 2-4).

* Using an approval is atomic: of several executions verifying one approved request at the same moment, exactly
  one gets ``approved`` (SQLite and PostgreSQL, separate processes released by one barrier).
* A local run's identity cannot be borrowed through the environment.
* A junk ``approval_decision`` record (bad signature) counts for nothing and blocks nothing.
* Of two concurrent decisions by one approver exactly one is accepted.
"""

from __future__ import annotations

import dataclasses
import json
import multiprocessing as mp
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from flytekitplugins.aios_approvals import decide, open_request, outcome, verify_requests
from flytekitplugins.aios_approvals.evaluate import Env
from flytekitplugins.aios_audit import AuditEvent, audit_log, close_all
from flytekitplugins.aios_core.cli import cli as aios
from flytekitplugins.aios_core.context import local_run
from flytekitplugins.aios_core.settings import get_settings, reset_settings

REQUESTER = "service:document-pipeline"


def _approved_request(tag: str) -> str:
    rid = open_request(
        "payment-signoff",
        "medium",
        f"sha256:{tag}",
        {"amount": 20_000},
        requester=REQUESTER,
        env=Env.load(get_settings()),
    )
    assert decide(rid, "user:bob", "approve", "checked", env=Env.load(get_settings())).accepted
    return rid


def _race_verify(barrier: Any, rid: str, i: int, out: Any) -> None:
    close_all()
    reset_settings()
    with local_run(f"racer-{i}"):
        barrier.wait()
        out.put(verify_requests("payment-signoff", [rid], after_signal=False, env=Env.load(get_settings()))[0].status)


def _race(target: Any, args_of: Any, n: int) -> list[Any]:
    ctx = mp.get_context("fork")
    barrier, out = ctx.Barrier(n), ctx.Queue()
    procs = [ctx.Process(target=target, args=(barrier, *args_of(i), out)) for i in range(n)]
    for p in procs:
        p.start()
    results = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    return results


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_one_approval_is_used_by_exactly_one_of_racing_executions(
    backend: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    if backend == "postgres":
        monkeypatch.setenv("AIOS_AUDIT_STORE", request.getfixturevalue("pg_url"))
        reset_settings()
        close_all()
    for round_ in range(6):
        rid = _approved_request(f"race-{backend}-{round_}")
        close_all()
        results = _race(_race_verify, lambda i, rid=rid: (rid, i), 4)
        assert sorted(results) == ["approved", "refused", "refused", "refused"], (round_, results)
    assert audit_log(get_settings()).size() > 0


def test_a_local_run_id_cannot_be_borrowed_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    rid = _approved_request("borrow")
    with local_run("victim"):
        assert (
            verify_requests("payment-signoff", [rid], after_signal=False, env=Env.load(get_settings()))[0].status
            == "approved"
        )
    for var in ("AIOS_LOCAL_EXECUTION_ID", "AIOS_EXECUTION_ID"):
        monkeypatch.setenv(var, "victim")
    # the attacker's run: whatever it puts in its environment, it is another execution
    assert (
        verify_requests("payment-signoff", [rid], after_signal=False, env=Env.load(get_settings()))[0].status
        == "refused"
    )


@pytest.mark.parametrize("names", ["FLYTE_INTERNAL", "_F"])
def test_a_local_run_cannot_take_a_cluster_execution_s_name_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, names: str
) -> None:
    """Regression: ``current_execution`` read ``FLYTE_INTERNAL_EXECUTION_PROJECT/DOMAIN/ID`` (and the short ``_F_PRJ``
    / ``_F_DM`` / ``_F_NM``) before the process's own run id, in any process. A second local run that set them to the
    execution that had used an approval was taken for that execution, and used the approval again (one sign-off, a
    payment made three times). Those variables are flytepropeller's, read only inside a task flytekit runs as on a
    cluster; a local run stays its own execution whatever its shell sets."""
    from flytekitplugins.aios_core.context import current_execution

    rid = _approved_request(f"borrow-{names}")
    with local_run("victim") as victim:
        assert (
            verify_requests("payment-signoff", [rid], after_signal=False, env=Env.load(get_settings()))[0].status
            == "approved"
        )
        project, domain, _ = current_execution().execution_key.split("/", 2)
    keys = (
        ("EXECUTION_PROJECT", "EXECUTION_DOMAIN", "EXECUTION_ID") if names == "FLYTE_INTERNAL" else ("PRJ", "DM", "NM")
    )
    for key, value in zip(keys, (project, domain, victim), strict=True):
        monkeypatch.setenv(f"{names}_{key}", value)
    assert current_execution().name != victim
    assert (
        verify_requests("payment-signoff", [rid], after_signal=False, env=Env.load(get_settings()))[0].status
        == "refused"
    )


def test_a_cluster_task_still_takes_its_execution_from_flytepropeller_s_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Inside a task flytekit runs as on a cluster (its entrypoint sets the task-execution state), the execution is
    the one flytepropeller names in the pod's variables, as before."""
    from flytekit.core.context_manager import ExecutionState, FlyteContextManager

    from flytekitplugins.aios_core.context import current_execution

    for var, value in (
        ("FLYTE_INTERNAL_EXECUTION_PROJECT", "flyte-aios"),
        ("FLYTE_INTERNAL_EXECUTION_DOMAIN", "production"),
        ("FLYTE_INTERNAL_EXECUTION_ID", "f3a9c2d1e0"),
    ):
        monkeypatch.setenv(var, value)
    assert current_execution().execution_key != "flyte-aios/production/f3a9c2d1e0"  # no task: a local process
    ctx = FlyteContextManager.current_context()
    state = ctx.execution_state.with_params(mode=ExecutionState.Mode.TASK_EXECUTION)
    with FlyteContextManager.with_context(ctx.with_execution_state(state)):
        assert current_execution().execution_key == "flyte-aios/production/f3a9c2d1e0"


def _junk_decision(rid: str, approver: str, action: str, digest: str = "") -> str:
    """What anyone with write access to the store can append: a decision with a bad signature (and, with ``digest``,
    over another request version). Returns its record id."""
    real = audit_log(get_settings()).scan_kinds({"approval_request"})
    req = next(r for r in real if r.event.subject == rid)
    decision = {
        "request_id": rid,
        "request_digest": digest or req.event.attributes["request_digest"],
        "approver": approver,
        "roles": ["finance-approver"],
        "action": action,
        "reason": "junk",
        "decided_at": "2026-01-01T00:00:00+00:00",
        "decision_key": "sha256:junk",
        "key_id": "",
        "signature": "AAAA",
    }
    return (
        audit_log(get_settings())
        .append(
            AuditEvent(
                kind="approval_decision", actor=approver, status=action, subject=rid, attributes={"decision": decision}
            )
        )
        .record_id
    )


def test_a_junk_decision_neither_counts_nor_blocks_the_real_one() -> None:
    rid = open_request(
        "payment-signoff",
        "medium",
        "sha256:junk",
        {"amount": 20_000},
        requester=REQUESTER,
        env=Env.load(get_settings()),
    )
    _junk_decision(rid, "user:carol", "approve")
    assert outcome(rid, env=Env.load(get_settings())).status == "pending"
    res = decide(rid, "user:carol", "reject", "vendor unknown", env=Env.load(get_settings()))
    assert res.accepted, res.message  # not a "replay" of the junk record
    assert outcome(rid, env=Env.load(get_settings())).status == "rejected"
    assert not decide(
        rid, "user:bob", "approve", "looks fine", env=Env.load(get_settings())
    ).accepted  # the rejection is final
    out = outcome(rid, env=Env.load(get_settings()))
    assert out.status == "rejected" and any("bad_signature" in i for i in out.ignored)


def test_approvals_show_lists_the_ignored_decision_with_its_reason(aios_env: Path) -> None:
    rid = open_request(
        "payment-signoff",
        "medium",
        "sha256:show",
        {"amount": 20_000},
        requester=REQUESTER,
        env=Env.load(get_settings()),
    )
    _junk_decision(rid, "user:bob", "approve")
    close_all()
    res = CliRunner().invoke(aios, ["approvals", "show", rid])
    assert res.exit_code == 0, res.output
    (junk,) = json.loads(res.output)["decisions"]
    assert junk["counts"] is False and junk["ignored_because"].startswith("bad_signature")


def test_audit_verify_lists_the_decisions_that_count_for_nothing(
    aios_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The full walk reports every recorded decision that does not stand, in log order, from one pass over the
    request and decision records: it does not fold every request's state (420 MB at a million records)."""
    from flytekitplugins.aios_approvals import signing, state

    first = _approved_request("junk-verify-1")  # a decision that stands: not reported
    second = open_request(
        "payment-signoff", "medium", "sha256:junk-verify-2", {"amount": 20_000}, requester=REQUESTER,
        env=Env.load(get_settings()),
    )  # fmt: skip
    forged = _junk_decision(second, "user:carol", "approve")
    stale = _junk_decision(first, "user:dave", "approve", digest="sha256:" + "0" * 64)
    assert outcome(second, env=Env.load(get_settings())).status == "pending"
    close_all()

    def no_fold(*_a: object, **_k: object) -> object:
        raise AssertionError("the verifier folded every request's state")

    monkeypatch.setattr(state.Projection, "refresh", no_fold)
    res = CliRunner().invoke(aios, ["audit", "verify", "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    assert doc["ok"] is True
    kid = signing.key_id(Env.load(get_settings()).public_key)
    assert doc["ignored_approval_decisions"] == [
        f"record {forged}: decision by user:carol on {second} is not signed by approvals key {kid}",
        f"record {stale}: decision by user:dave on {first} covers another request version",
    ]


def _race_decide(barrier: Any, rid: str, out: Any) -> None:
    close_all()
    reset_settings()
    barrier.wait()
    out.put(decide(rid, "user:carol", "approve", "same approver twice", env=Env.load(get_settings())).code)


def test_two_concurrent_decisions_by_one_approver_accept_exactly_one() -> None:
    for round_ in range(6):
        rid = open_request(
            "payment-signoff",
            "high",
            f"sha256:dup-{round_}",
            {"amount": 90_000},
            requester=REQUESTER,
            env=Env.load(get_settings()),
        )
        close_all()
        codes = _race(_race_decide, lambda i, rid=rid: (rid,), 2)
        assert sorted(codes) == ["accepted", "replay"], (round_, codes)
        assert outcome(rid, env=Env.load(get_settings())).approvers == [
            "user:carol"
        ]  # high risk: quorum 2, one approver counted once


def test_audit_verify_reports_the_junk_decision_and_a_tampered_claims_table(aios_env: Path) -> None:
    import sqlite3

    rid = _approved_request("verify")
    _junk_decision(rid, "user:carol", "approve")
    with local_run("user-of-it"):
        assert (
            verify_requests("payment-signoff", [rid], after_signal=False, env=Env.load(get_settings()))[0].status
            == "approved"
        )
    close_all()
    res = CliRunner().invoke(aios, ["audit", "verify"])
    assert res.exit_code == 0, res.output
    assert "ignored approval decision" in res.output and "user:carol" in res.output
    with sqlite3.connect(aios_env / "audit.db") as conn:  # a store writer frees the approval for reuse
        conn.execute("DROP TRIGGER audit_claims_no_delete")
        conn.execute("DELETE FROM audit_claims")
    res = CliRunner().invoke(aios, ["audit", "verify", "--json"])
    assert res.exit_code == 1, res.output
    doc = json.loads(res.output)
    assert doc["ok"] is False and any(p.startswith("claim_missing") for p in doc["claims_problems"])


def _filler(n: int) -> None:
    log = audit_log(get_settings())
    for i in range(n):
        log.append(AuditEvent(kind="task", actor=REQUESTER, status="ok", subject=f"filler-{i}"))


@pytest.mark.parametrize("twice", [False, True])
def test_the_two_walking_processes_judge_the_decisions_as_one_pass_does(aios_env: Path, twice: bool) -> None:
    """The full walk's two processes each judge the decisions of their half; joined, they report exactly what one
    pass over the log reports: a decision in the upper half on a request of the lower half (fine, and a forged one),
    decisions judged by a request of their own half, one on a request that never was. With ``twice``, a request id
    recorded again in the upper half leaves the halves short (the earlier request is the first): the join says so
    and the pass over the whole log decides."""
    from flytekitplugins.aios_approvals import signing
    from flytekitplugins.aios_approvals.audit_check import DecisionCheck, junk_decisions, merge
    from flytekitplugins.aios_audit.verify import verify_store

    env = Env.load(get_settings())
    early = open_request(
        "payment-signoff", "medium", "sha256:halves-early", {"amount": 20_000}, requester=REQUESTER, env=env
    )
    _filler(40)
    assert decide(early, "user:carol", "approve", "decided in the upper half", env=env).accepted
    forged_early = _junk_decision(early, "user:dave", "approve")
    late = _approved_request("halves-late")
    stale_late = _junk_decision(late, "user:carol", "approve", digest="sha256:" + "1" * 64)
    log = audit_log(get_settings())
    nowhere = dict(next(iter(log.scan_kinds({"approval_decision"}))).event.attributes["decision"])
    nowhere["request_id"] = "apr-never-requested"
    log.append(
        AuditEvent(
            kind="approval_decision",
            actor="user:carol",
            status="approve",  # as carol's signed decision says (a record saying otherwise is reported as such)
            subject="apr-never-requested",
            attributes={"decision": nowhere},
        )
    )
    if twice:
        (first_request,) = (r for r in log.scan_kinds({"approval_request"}) if r.event.subject == early)
        again = {"request": first_request.event.attributes["request"], "request_digest": "sha256:again"}
        log.append(AuditEvent(kind="approval_request", actor=REQUESTER, subject=early, attributes=again))
        _junk_decision(early, "user:erin", "approve")
    _filler(4)
    close_all()

    store = audit_log(get_settings())
    parts: list[Any] = []
    make = lambda first: DecisionCheck(env.public_key, first)  # noqa: E731
    result = verify_store(store, workers=2, block=4, also=(make, parts))
    assert result.ok and result.workers == 2, result
    lower, upper = parts
    assert lower.first == 1 and upper.first > 1
    assert early in lower.digests and late not in lower.digests and (early in upper.used) is twice
    assert upper.digests == {}  # the second part judged its decisions by its own requests: nothing reads them
    assert [(p[2], p[3], p[5]) for p in upper.pending] == [
        (early, "user:carol", True),
        (early, "user:dave", False),
        ("apr-never-requested", "user:carol", False),  # signed over another request id: moot, no request
    ]
    one_pass = junk_decisions(dataclasses.replace(env, store=store))
    kid = signing.key_id(env.public_key)
    expected = [
        f"record {forged_early}: decision by user:dave on {early} is not signed by approvals key {kid}",
        f"record {stale_late}: decision by user:carol on {late} covers another request version",
    ]
    if twice:
        assert merge(parts) is None
        assert one_pass[:2] == expected and len(one_pass) == 3 and "user:erin" in one_pass[2]
    else:
        assert merge(parts) == one_pass == expected
    res = CliRunner().invoke(aios, ["audit", "verify", "--json"])  # one process at this size: the same lines
    assert res.exit_code == 0 and json.loads(res.output)["ignored_approval_decisions"] == one_pass, res.output
