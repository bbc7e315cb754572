"""Approval notifications over gRPC: create (signed webhook) -> get (follows `aios approvals`) -> delete."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import grpc
import pytest
from flyteidl.admin import agent_pb2
from flyteidl.core.execution_pb2 import TaskExecution
from flyteidl.service import agent_pb2_grpc

from flytekitplugins.aios_approvals.evaluate import Env
from flytekitplugins.aios_connectors import ApprovalNotificationConfig, ApprovalNotificationTask
from flytekitplugins.aios_connectors.approval_task import APPROVAL_INPUTS, APPROVAL_OUTPUTS
from flytekitplugins.aios_connectors.constants import APPROVAL_NOTIFICATION_TASK_TYPE
from flytekitplugins.aios_core.settings import get_settings
from tests.connectors.conftest import WEBHOOK_SECRET
from tests.connectors.harness import Hook
from tests.connectors.protos import execution_metadata, literal_map, python_values, template_of

pytestmark = pytest.mark.slow

FAST = ApprovalNotificationConfig(channel="#finance", attempts=3, base_delay_s=0.05, max_delay_s=0.2, http_timeout_s=2)
NOTIFY = ApprovalNotificationTask(name="grpc_notify", config=FAST)


def _open(subject: str, risk: str = "low", execution: str = "a1b2c3d4e5") -> str:
    """Open a request as a task of ``execution`` does on a cluster (the execution the notification task waits in).

    The connector's audit store is shared by the whole session (``shared_state``), so each test opens its own
    ``subject``: the same content opened again in the same execution is the same request, approved or used by an
    earlier test."""
    from flytekitplugins.aios_approvals import open_request
    from flytekitplugins.aios_core.context import ExecutionRef, serving

    with serving(ExecutionRef(project="flyte-aios", domain="development", name=execution)):
        return open_request(
            gate="payment-signoff",
            risk=risk,
            subject=subject,
            summary={"amount": 12500.0, "vendor": "ACME"},
            requester="service:document-pipeline",
            reason="invoice over 10,000",
            env=Env.load(get_settings()),
        )


def _create(
    channel: grpc.Channel,
    rid: str,
    task: ApprovalNotificationTask = NOTIFY,
    timeout: float = 20,
    execution: str = "a1b2c3d4e5",
) -> bytes:
    req = agent_pb2.CreateTaskRequest(
        template=template_of(task),
        inputs=literal_map({"request_id": rid}, APPROVAL_INPUTS),
        output_prefix="/tmp/o",
        task_execution_metadata=execution_metadata(execution=execution),
    )
    return agent_pb2_grpc.AsyncAgentServiceStub(channel).CreateTask(req, timeout=timeout).resource_meta


def _get(channel: grpc.Channel, meta: bytes):
    category = agent_pb2.TaskCategory(name=APPROVAL_NOTIFICATION_TASK_TYPE, version=0)
    req = agent_pb2.GetTaskRequest(task_category=category, resource_meta=meta)
    return agent_pb2_grpc.AsyncAgentServiceStub(channel).GetTask(req, timeout=20).resource


def test_notify_then_follow_the_approval_to_success(channel, hook: Hook, shared_state) -> None:
    from flytekitplugins.aios_approvals import decide

    hook.reset("ok")
    rid = _open("sha256:" + "a" * 64)
    meta = _create(channel, rid)
    assert json.loads(meta)["request_id"] == rid and json.loads(meta)["ticket_url"].endswith("/tickets/1")
    # exactly one signed delivery, verifiable with the shared secret; the body names how to decide
    (delivery,) = hook.received
    h, body = delivery["headers"], delivery["body"]
    expected = hmac.new(WEBHOOK_SECRET.encode(), h["X-AIOS-Timestamp"].encode() + b"." + body, hashlib.sha256)
    assert h["X-AIOS-Signature"] == "sha256=" + expected.hexdigest()
    assert h["Idempotency-Key"] == rid
    payload = json.loads(body)
    assert (payload["event"], payload["gate"], payload["channel"]) == (
        "approval.requested",
        "payment-signoff",
        "#finance",
    )
    assert f"aios approvals approve {rid} --as <principal>" in payload["decide_with"]

    pending = _get(channel, meta)
    assert pending.phase == TaskExecution.RUNNING and "0/1" in pending.message
    assert pending.log_links[0].uri.endswith("/tickets/1")

    assert decide(rid, "user:bob", "approve", reason="checked", env=Env.load(get_settings())).accepted
    done = _get(channel, meta)
    assert done.phase == TaskExecution.SUCCEEDED, done.message
    out = python_values(done.outputs, APPROVAL_OUTPUTS)
    assert (out["request_id"], out["status"], out["approvers"]) == (rid, "approved", ["user:bob"])


def test_a_task_launched_on_its_own_with_another_runs_request_neither_uses_nor_uses_up_its_approval(
    channel, hook: Hook, shared_state
) -> None:
    """Anyone who may launch the notification task could launch it on its own, with another run's approved request
    id as input: ``get`` then used that approval for the new execution, and the run that opened the request was
    refused (or an approver used the approval in a run of his own). The connector knows the waiting execution, not
    its launcher: only the execution that opened the request uses it.

    Review of 2026-12-06: the same launch re-announced the request naming the new execution, and its abort (a
    ``DeleteTask`` with metadata the connector had sealed) cancelled the waiting run's ticket. ``create`` now refuses
    an execution that did not open the request (audited ``connector_refused``): nothing is announced or cancelled."""
    from flytekitplugins.aios_approvals import decide
    from flytekitplugins.aios_audit import audit_log

    hook.reset("ok")
    rid = _open("sha256:" + "9" * 64)
    assert decide(rid, "user:bob", "approve", reason="checked", env=Env.load(get_settings())).accepted
    stolen_meta = _create(channel, rid, execution="f0e1d2c3b4")
    stolen = _get(channel, stolen_meta)
    assert stolen.phase == TaskExecution.FAILED and "was opened by execution" in stolen.message, stolen.message
    category = agent_pb2.TaskCategory(name=APPROVAL_NOTIFICATION_TASK_TYPE, version=0)
    abort = agent_pb2.DeleteTaskRequest(task_category=category, resource_meta=stolen_meta)
    agent_pb2_grpc.AsyncAgentServiceStub(channel).DeleteTask(abort, timeout=20)
    assert hook.received == []  # neither announced for the other execution nor cancelled by its abort
    refused = [r.event for r in audit_log(get_settings()).scan() if r.event.kind == "connector_refused"]
    assert any(rid in str(e.attributes) and "f0e1d2c3b4" in str(e.attributes) for e in refused), refused[-1:]
    records = [r.event for r in audit_log(get_settings()).scan() if r.event.subject == rid]
    assert not [e for e in records if e.kind == "approval_verified" and e.attributes["consumed_by"]]
    done = _get(channel, _create(channel, rid))  # the run that opened it still has its approval
    assert done.phase == TaskExecution.SUCCEEDED, done.message
    assert python_values(done.outputs, APPROVAL_OUTPUTS)["approvers"] == ["user:bob"]


@pytest.mark.parametrize("url", ["javascript:alert(document.cookie)", "data:text/html,<script>alert(1)</script>"])
def test_a_ticket_url_that_is_no_web_address_is_no_console_link(channel, hook: Hook, shared_state, url: str) -> None:
    """The receiver's ``url`` becomes the task's "Approval ticket" link in the Flyte console: a ``javascript:`` or
    ``data:`` one there would run in the browser of whoever clicks it. It is dropped; the notification stands."""
    hook.reset("ok", ticket_url=url)
    rid = _open("sha256:" + "5" * 64)
    meta = _create(channel, rid)
    assert len(hook.received) == 1 and json.loads(meta)["ticket_url"] == ""
    pending = _get(channel, meta)
    assert pending.phase == TaskExecution.RUNNING and list(pending.log_links) == []


def test_a_rejection_fails_the_task_with_who_and_why(channel, hook: Hook, shared_state) -> None:
    from flytekitplugins.aios_approvals import decide

    hook.reset("ok")
    rid = _open("sha256:" + "b" * 64)
    meta = _create(channel, rid)
    assert decide(rid, "user:carol", "reject", reason="vendor not on file", env=Env.load(get_settings())).accepted
    res = _get(channel, meta)
    assert res.phase == TaskExecution.FAILED
    assert "rejected" in res.message and "user:carol" in res.message


def test_an_unauthorized_approval_does_not_count(channel, hook: Hook, shared_state) -> None:
    from flytekitplugins.aios_approvals import decide

    hook.reset("ok")
    rid = _open("sha256:" + "8" * 64)
    meta = _create(channel, rid)
    assert not decide(
        rid, "user:alice", "approve", env=Env.load(get_settings())
    ).accepted  # ops-analyst may not sign off payments
    assert _get(channel, meta).phase == TaskExecution.RUNNING


def test_no_decision_before_the_wait_deadline_is_a_failure(channel, hook: Hook, shared_state) -> None:
    hook.reset("ok")
    short = ApprovalNotificationTask(name="grpc_notify_short", config=ApprovalNotificationConfig(wait_timeout_s=0.5))
    rid = _open("sha256:" + "d" * 64)
    meta = _create(channel, rid, task=short)
    time.sleep(0.7)
    res = _get(channel, meta)
    assert res.phase == TaskExecution.FAILED and "timed out" in res.message


def test_delete_posts_a_cancellation(channel, hook: Hook, shared_state) -> None:
    hook.reset("ok")
    rid = _open("sha256:" + "e" * 64)
    meta = _create(channel, rid)
    category = agent_pb2.TaskCategory(name=APPROVAL_NOTIFICATION_TASK_TYPE, version=0)
    req = agent_pb2.DeleteTaskRequest(task_category=category, resource_meta=meta)
    agent_pb2_grpc.AsyncAgentServiceStub(channel).DeleteTask(req, timeout=20)
    events = [json.loads(r["body"])["event"] for r in hook.received]
    assert events == ["approval.requested", "approval.cancelled"]
    assert hook.received[1]["headers"]["Idempotency-Key"] == f"{rid}:cancel"


def test_unknown_request_id_fails_create_clearly(channel, hook: Hook, shared_state) -> None:
    hook.reset("ok")
    with pytest.raises(grpc.RpcError) as e:
        _create(channel, "apr-00000000000000000000")
    assert e.value.code() == grpc.StatusCode.INTERNAL
    assert "no approval request 'apr-00000000000000000000'" in e.value.details()
    assert hook.received == []  # nothing was announced for a request that does not exist


def test_the_status_call_uses_an_approval_once(channel, hook: Hook, shared_state) -> None:
    """Issue 13, item 2: the connector's status call honours consumption (a second execution is refused)."""
    from flytekitplugins.aios_approvals import decide

    hook.reset("ok")
    rid = _open("sha256:" + "c" * 64)
    first = _create(channel, rid)
    assert decide(rid, "user:bob", "approve", reason="checked", env=Env.load(get_settings())).accepted
    assert _get(channel, first).phase == TaskExecution.SUCCEEDED
    assert _get(channel, first).phase == TaskExecution.SUCCEEDED  # the same execution polling again
    req = agent_pb2.CreateTaskRequest(
        template=template_of(NOTIFY),
        inputs=literal_map({"request_id": rid}, APPROVAL_INPUTS),
        output_prefix="/tmp/o",
        task_execution_metadata=execution_metadata(execution="another-run"),
    )
    second = agent_pb2_grpc.AsyncAgentServiceStub(channel).CreateTask(req, timeout=20).resource_meta
    refused = _get(channel, second)
    # refused at create, before the use claim is looked at: another execution did not open the request
    assert refused.phase == TaskExecution.FAILED and "was opened by execution" in refused.message, refused.message


def _delete(channel: grpc.Channel, meta: bytes) -> None:
    category = agent_pb2.TaskCategory(name=APPROVAL_NOTIFICATION_TASK_TYPE, version=0)
    req = agent_pb2.DeleteTaskRequest(task_category=category, resource_meta=meta)
    agent_pb2_grpc.AsyncAgentServiceStub(channel).DeleteTask(req, timeout=20)


def _forged(rid: str, **fields: object) -> bytes:
    meta = {"request_id": rid, "gate": "payment-signoff", "deadline": time.time() + 3600, "attempts": 3}
    return json.dumps({**meta, **fields}).encode()


def test_get_and_delete_act_only_on_metadata_the_connector_issued(channel, hook: Hook, shared_state) -> None:
    """GetTask and DeleteTask carry the resource metadata back as the caller sends it. A forged one used an approved
    request for an execution of the caller's choosing (its one use gone to that execution, the waiting run then
    refused) and a forged delete told the ticketing tool to close any request's ticket."""
    from flytekitplugins.aios_approvals import decide
    from flytekitplugins.aios_approvals.state import projection

    hook.reset("ok")
    rid = _open("sha256:" + "f" * 64)
    genuine = _create(channel, rid)
    assert decide(rid, "user:bob", "approve", reason="checked", env=Env.load(get_settings())).accepted
    altered = json.dumps({**json.loads(genuine), "execution": "attacker/development/run-x"}).encode()
    for meta in (_forged(rid, execution="attacker/development/run-x"), altered, _forged(rid, mac="0" * 64)):
        res = _get(channel, meta)
        assert res.phase == TaskExecution.FAILED and "was not issued by this connector" in res.message, res.message
    # the webhook's receiver holds the webhook secret, not the signing key: a seal under that secret is no seal
    from flytekitplugins.aios_connectors.approval_connector import ApprovalNotificationMetadata, _meta_mac

    by_receiver = ApprovalNotificationMetadata(**json.loads(_forged(rid, execution="attacker/development/run-x")))
    by_receiver.mac = _meta_mac(by_receiver, WEBHOOK_SECRET.encode())
    res = _get(channel, by_receiver.encode())
    assert res.phase == TaskExecution.FAILED and "was not issued by this connector" in res.message, res.message
    env = Env.load(get_settings())
    assert projection(env.store).get(rid).consumed_by == []  # nobody used the approval
    _delete(channel, _forged(rid, external_id="TICKET-1"))
    assert [json.loads(r["body"])["event"] for r in hook.received] == ["approval.requested"]  # nothing cancelled
    done = _get(channel, genuine)  # the waiting run's own metadata still works, and it uses the approval
    assert done.phase == TaskExecution.SUCCEEDED, done.message
    assert projection(Env.load(get_settings()).store).get(rid).consumed_by == ["flyte-aios/development/a1b2c3d4e5"]
