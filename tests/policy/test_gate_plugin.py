"""The gate as flytekit sees it: decorator, PolicyGate task config, post-conditions, approval hand-over."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import pytest
from flytekit import task, workflow

from flytekitplugins.aios_approvals.evaluate import Env
from flytekitplugins.aios_core.errors import GovernanceDenied
from flytekitplugins.aios_core.settings import get_settings
from flytekitplugins.aios_core.types import PolicyDecision
from flytekitplugins.aios_policy import Check, PolicyGate, policy_check, policy_gate

from . import gated_tasks as g
from .conftest import policy_records

DOC = {"currency": "EUR", "data_class": "internal", "doc_type": "invoice", "confidence": 0.9}


@pytest.fixture(autouse=True)
def _pipeline_principal(monkeypatch: pytest.MonkeyPatch) -> None:
    from flytekitplugins.aios_core.settings import reset_settings

    monkeypatch.setenv("AIOS_PRINCIPAL", "service:document-pipeline")
    reset_settings()


def test_allowed_task_runs_and_decision_is_audited_first(aios_env: Path) -> None:
    assert g.pay(doc_id="d1", amount=100.0, **DOC) == "paid 100.0 EUR"
    assert (aios_env / "pay-d1.acted").exists()
    (rec,) = policy_records()
    assert rec.event.status == "allow" and rec.event.subject == "d1"
    assert rec.event.attributes["stage"] == "pre" and rec.event.attributes["task"].endswith("pay")


def test_denied_task_never_runs(aios_env: Path) -> None:
    with pytest.raises(Exception, match="doc-known-type") as exc:
        g.pay(doc_id="d2", amount=100.0, **{**DOC, "doc_type": "memo"})
    assert "GovernanceDenied" in repr(exc.value) or isinstance(exc.value, GovernanceDenied)
    assert not (aios_env / "pay-d2.acted").exists()
    assert [r.event.status for r in policy_records()] == ["deny"]


def test_policy_gate_task_config_serializes_and_gates(aios_env: Path) -> None:
    from flytekit.configuration import Image, ImageConfig, SerializationSettings

    settings = SerializationSettings(image_config=ImageConfig(default_image=Image(name="d", fqn="img", tag="t")))
    assert g.classify.task_type == "aios-policy-gate"
    custom = g.classify.get_custom(settings)["aios_policy"]
    assert custom["pre"]["action"] == "use_model" and custom["pre"]["context"] == {"data_class": "data_class"}
    assert custom["pre"]["resource"].startswith("callable:tests.policy.gated_tasks")
    assert g.classify(model_id="m", data_class="internal") == "label"
    with pytest.raises(Exception, match="model-data-class-approved"):
        g.classify(model_id="m", data_class="personal")
    assert not (aios_env / "classify-m-personal.acted").exists()


def test_postcondition_blocks_result_of_a_worse_challenger(aios_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from flytekitplugins.aios_core.settings import reset_settings

    monkeypatch.setenv("AIOS_PRINCIPAL", "service:retraining")
    reset_settings()
    with pytest.raises(Exception, match="model-promote-beats-champion"):
        g.evaluate_challenger(model_id="c1", accuracy_delta=-0.02, drift_passed=True)
    with pytest.raises(Exception, match="model-promote-drift-passed"):
        g.evaluate_challenger(model_id="c2", accuracy_delta=0.02, drift_passed=False)
    statuses = [(r.event.status, r.event.attributes["stage"]) for r in policy_records()]
    assert statuses == [("deny", "post"), ("deny", "post")]


def test_require_approval_hands_over_and_stays_closed(aios_env: Path) -> None:
    with pytest.raises(Exception) as exc:
        g.pay(doc_id="big", amount=20000.0, **DOC)
    assert "approval" in str(exc.value) and "pending" in str(exc.value)
    assert not (aios_env / "pay-big.acted").exists()
    (rec,) = policy_records()
    assert rec.event.status == "require_approval"
    assert rec.event.policy_decisions[0]["approval"] == {
        "gate": "payment-signoff",
        "risk": "medium",
        "reason": "a payment instruction over 10,000 needs a human sign-off",
    }


def test_require_approval_runs_once_approved(aios_env: Path) -> None:
    from flytekitplugins.aios_approvals import decide

    with pytest.raises(Exception, match=r"apr-[0-9a-f]+") as exc:
        g.pay(doc_id="big2", amount=20000.0, **DOC)

    request_id = re.search(r"apr-[0-9a-f]+", str(exc.value)).group(0)  # type: ignore[union-attr]
    decide(request_id, "user:bob", "approve", reason="checked the invoice", env=Env.load(get_settings()))
    assert g.pay(doc_id="big2", amount=20000.0, **DOC) == "paid 20000.0 EUR"
    assert (aios_env / "pay-big2.acted").exists()


@pytest.mark.parametrize("failure", ["missing", "broken"])
def test_approvals_plugin_missing_or_failing_denies(
    failure: str, aios_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import flytekitplugins.aios_approvals as approvals

    if failure == "missing":
        monkeypatch.setitem(sys.modules, "flytekitplugins.aios_approvals", None)
    else:

        def boom(*a: Any, **k: Any) -> None:
            raise RuntimeError("approval store offline")

        monkeypatch.setattr(approvals, "require_approval", boom)
    with pytest.raises(Exception, match="denied") as exc:
        g.pay(doc_id="big3", amount=20000.0, **DOC)
    assert "approval" in str(exc.value)
    assert not (aios_env / "pay-big3.acted").exists()


def test_mapping_error_is_denied_and_audited(aios_env: Path) -> None:
    @policy_gate(action="act_on_document", resource=("Document", "doc.id"))
    def body(doc: dict[str, str]) -> str:
        raise AssertionError("must not run")

    with pytest.raises(GovernanceDenied, match="could not build the policy request"):
        body(doc={"name": "no id here"})
    (rec,) = policy_records()
    assert rec.event.status == "deny"


def test_audit_failure_stops_the_body(aios_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from flytekitplugins.aios_core.settings import reset_settings

    monkeypatch.setenv("AIOS_AUDIT_STORE", "bogus://x")
    reset_settings()
    with pytest.raises(Exception, match="audit trail"):
        g.pay(doc_id="d9", amount=1.0, **DOC)
    assert not (aios_env / "pay-d9.acted").exists()


def test_incomplete_gates_are_rejected_at_definition() -> None:
    with pytest.raises(ValueError, match="needs resource="):
        policy_gate(action="run_task")
    with pytest.raises(ValueError, match="needs action="):
        policy_gate()
    with pytest.raises(ValueError, match="Check\\(action"):
        Check(action="", resource=("Task", "t"))
    with pytest.raises(ValueError, match="needs resource="):
        PolicyGate(action="run_task")


@task
def _amount_for(doc: str) -> float:
    return 99000.0 if doc == "big" else 10.0


@workflow
def _check_wf(doc: str) -> str:
    amount = _amount_for(doc=doc)
    d = policy_check(
        action="act_on_document", resource_type="Document", resource_id=doc,
        numbers={"amount": amount, "confidence": 0.99},
        labels={"currency": "EUR", "data_class": "public", "doc_type": "receipt"},
    )  # fmt: skip
    return _effect(d=d)


@task
def _effect(d: PolicyDecision) -> str:
    return f"{d.effect}:{d.approval.risk if d.approval else ''}"


def test_policy_check_is_a_workflow_node(aios_env: Path) -> None:
    assert _check_wf(doc="small") == "allow:"
    assert _check_wf(doc="big") == "require_approval:high"
    assert [r.event.status for r in policy_records()] == ["allow", "require_approval"]


def test_gate_inside_audited_lands_in_the_task_record(aios_env: Path) -> None:
    from flytekitplugins.aios_audit import audit_log, audited

    @audited(subject_input="doc_id")
    @policy_gate(action="run_task", resource=lambda **i: {"type": "Task", "id": "t1"})
    def step(doc_id: str) -> str:
        return doc_id

    assert step(doc_id="abc") == "abc"
    task_rec = [r for r in audit_log(get_settings()).scan() if r.event.kind == "task"][-1]
    (decision,) = policy_records()
    assert task_rec.event.policy_decisions[0]["record_id"] == decision.record_id
    assert decision.record_id in task_rec.event.parents
