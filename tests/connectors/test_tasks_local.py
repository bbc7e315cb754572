"""The connector tasks serialize to their task type with no container, and run locally through their connector."""

from __future__ import annotations

import pytest
from flytekit import workflow

from flytekitplugins.aios_approvals.evaluate import Env
from flytekitplugins.aios_connectors import (
    APPROVAL_NOTIFICATION_TASK_TYPE,
    POLICY_DECISION_TASK_TYPE,
    ApprovalNotificationConfig,
    ApprovalNotificationTask,
    PolicyDecisionConfig,
    PolicyDecisionTask,
)
from flytekitplugins.aios_core.settings import get_settings
from tests.connectors.protos import SETTINGS, template_of

GATE = PolicyDecisionTask(name="local_policy_gate")
DOC = {"type": "Document", "id": "sha256:0f3c9a"}
CTX = {"amount": 420.0, "currency": "EUR", "data_class": "internal", "doc_type": "invoice", "confidence": 0.93}


@workflow
def gated(principal: str = "service:document-pipeline") -> str:
    """Run the policy gate and return its effect.

    Args:
        principal: who acts.
    """
    return GATE(principal=principal, action="act_on_document", resource=DOC, context=CTX).effect


def test_templates_carry_the_task_type_and_config_and_no_container() -> None:
    p = template_of(GATE)
    assert p.type == POLICY_DECISION_TASK_TYPE and not p.HasField("container")
    assert dict(p.custom) == {"fail_on_deny": True}
    a = template_of(ApprovalNotificationTask(name="n", config=ApprovalNotificationConfig(channel="#x", attempts=2)))
    assert a.type == APPROVAL_NOTIFICATION_TASK_TYPE and not a.HasField("container")
    assert a.custom["channel"] == "#x" and a.custom["attempts"] == 2
    assert set(a.interface.outputs.variables) == {"request_id", "status", "approvers", "reason"}
    assert GATE.get_custom(SETTINGS) == {"fail_on_deny": True}


def test_config_is_validated_at_construction() -> None:
    with pytest.raises(ValueError, match="wait_timeout_s"):
        ApprovalNotificationConfig(wait_timeout_s=0)
    with pytest.raises(ValueError, match="wait_timeout_s=nan"):  # min(now + NaN, expiry): a deadline never reached
        ApprovalNotificationConfig(wait_timeout_s=float("nan"))
    assert ApprovalNotificationConfig(wait_timeout_s=float("inf")).wait_timeout_s == float("inf")  # until expiry
    with pytest.raises(ValueError, match="attempts"):
        ApprovalNotificationConfig(attempts=50)
    with pytest.raises(ValueError, match="unknown policy decision config keys"):
        PolicyDecisionConfig.from_custom({"fail_on_deny": True, "allow_all": True})


def test_policy_gate_runs_locally_in_a_workflow() -> None:
    assert gated() == "allow"
    with pytest.raises(Exception, match="policy denied user:bob"):
        gated(principal="user:bob")


def test_approval_notification_runs_locally_end_to_end(monkeypatch, hook) -> None:
    from flytekitplugins.aios_approvals import decide, open_request

    monkeypatch.setenv("AIOS_APPROVAL_WEBHOOK_URL", hook.url)
    monkeypatch.setenv("AIOS_APPROVAL_WEBHOOK_SECRET", "local-secret")
    hook.reset("ok")
    rid = open_request(
        gate="payment-signoff",
        risk="low",
        subject="sha256:" + "f" * 64,
        requester="service:document-pipeline",
        env=Env.load(get_settings()),
    )
    assert decide(
        rid, "user:bob", "approve", env=Env.load(get_settings())
    ).accepted  # decided before the wait starts: the first poll sees it
    notify = ApprovalNotificationTask(name="local_notify", config=ApprovalNotificationConfig())
    out = notify(request_id=rid)
    assert (out.status, out.approvers) == ("approved", ["user:bob"])
    assert len(hook.received) == 1
