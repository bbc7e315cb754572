"""Policy decisions over gRPC: ExecuteTaskSync (header, then inputs) against the running connector server."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from flyteidl.admin import agent_pb2
from flyteidl.core.execution_pb2 import TaskExecution
from flyteidl.service import agent_pb2_grpc

from flytekitplugins.aios_connectors import PolicyDecisionConfig, PolicyDecisionTask
from flytekitplugins.aios_connectors.policy_task import POLICY_INPUTS, POLICY_OUTPUTS
from flytekitplugins.aios_core.settings import get_settings
from tests.connectors.protos import execution_metadata, literal_map, python_values, template_of

pytestmark = pytest.mark.slow

DOC = {"type": "Document", "id": "sha256:0f3c9a"}
CTX = {"amount": 420.0, "currency": "EUR", "data_class": "internal", "doc_type": "invoice", "confidence": 0.93}
STRICT = PolicyDecisionTask(name="grpc_policy_gate")
SOFT = PolicyDecisionTask(name="grpc_policy_gate_soft", config=PolicyDecisionConfig(fail_on_deny=False))


def _execute(
    channel: grpc.Channel, task: PolicyDecisionTask, principal: str, ctx: dict[str, Any], resource: dict = DOC
) -> Any:
    inputs = literal_map(
        {"principal": principal, "action": "act_on_document", "resource": resource, "context": ctx}, POLICY_INPUTS
    )

    def stream():
        header = agent_pb2.CreateRequestHeader(
            template=template_of(task), output_prefix="/tmp/aios-test-out", task_execution_metadata=execution_metadata()
        )
        yield agent_pb2.ExecuteTaskSyncRequest(header=header)
        yield agent_pb2.ExecuteTaskSyncRequest(inputs=inputs)

    responses = list(agent_pb2_grpc.SyncAgentServiceStub(channel).ExecuteTaskSync(stream(), timeout=20))
    assert len(responses) == 1
    return responses[0].header.resource


def test_allow_returns_the_decision_as_typed_outputs(channel: grpc.Channel, shared_state) -> None:
    res = _execute(channel, STRICT, "service:document-pipeline", CTX)
    assert res.phase == TaskExecution.SUCCEEDED, res.message
    out = python_values(res.outputs, POLICY_OUTPUTS)
    assert out["effect"] == "allow"
    assert out["policy_ids"] == ["doc-act-roles"] or "doc-act-roles" in out["policy_ids"]
    assert out["policy_set_digest"].startswith("sha256:")
    assert out["approval_gate"] == ""
    # the decision was written to the audit trail before it was returned
    from flytekitplugins.aios_audit import audit_log

    kinds = {r.record_id: r.event.kind for r in audit_log(get_settings()).scan(1)}
    assert kinds.get(out["audit_record_id"]) == "policy_decision"


def test_require_approval_names_the_gate(channel: grpc.Channel) -> None:
    res = _execute(channel, STRICT, "service:document-pipeline", {**CTX, "amount": 12500.0, "data_class": "personal"})
    assert res.phase == TaskExecution.SUCCEEDED, res.message
    out = python_values(res.outputs, POLICY_OUTPUTS)
    assert (out["effect"], out["approval_gate"]) == ("require_approval", "payment-signoff")


def test_deny_fails_the_task_naming_the_reason(channel: grpc.Channel) -> None:
    res = _execute(channel, STRICT, "service:document-pipeline", {**CTX, "currency": "XYZ"})
    assert res.phase == TaskExecution.FAILED
    assert "policy denied service:document-pipeline act_on_document" in res.message
    assert "doc-known-currency" in res.message


def test_deny_is_an_output_when_the_workflow_branches_itself(channel: grpc.Channel) -> None:
    res = _execute(channel, SOFT, "service:document-pipeline", {**CTX, "currency": "XYZ"})
    assert res.phase == TaskExecution.SUCCEEDED
    out = python_values(res.outputs, POLICY_OUTPUTS)
    assert out["effect"] == "deny" and out["reasons"]


def test_malformed_request_is_a_deny_not_an_error(channel: grpc.Channel) -> None:
    res = _execute(channel, SOFT, "service:document-pipeline", CTX, resource={"type": "Document"})
    assert res.phase == TaskExecution.SUCCEEDED
    out = python_values(res.outputs, POLICY_OUTPUTS)
    assert out["effect"] == "deny"
    assert any("malformed policy request" in r for r in out["reasons"])
