"""The connector server does not believe a caller's claimed principal: identity comes from propagated metadata.

A real `pyflyte serve connector` and real gRPC clients: an anonymous caller, a caller from an unmapped service
account and a caller mapped to another principal all claim ``service:document-pipeline``; each is refused,
the refusal is audited under the caller's own identity, and no record is attributed to the claimed principal.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from flyteidl.admin import agent_pb2
from flyteidl.core.execution_pb2 import TaskExecution
from flyteidl.service import agent_pb2_grpc

from flytekitplugins.aios_approvals.evaluate import Env
from flytekitplugins.aios_connectors import ApprovalNotificationTask, PolicyDecisionTask
from flytekitplugins.aios_connectors.approval_task import APPROVAL_INPUTS
from flytekitplugins.aios_connectors.constants import APPROVAL_NOTIFICATION_TASK_TYPE
from flytekitplugins.aios_connectors.policy_task import POLICY_INPUTS
from flytekitplugins.aios_core.settings import get_settings
from tests.connectors.harness import REPO, ConnectorServer, Hook, connector_server, webhook_server
from tests.connectors.protos import execution_metadata, literal_map, template_of

CLAIMED = "service:document-pipeline"
DOC = {"type": "Document", "id": "sha256:0f3c9a"}
CTX = {"amount": 420.0, "currency": "EUR", "data_class": "internal", "doc_type": "invoice", "confidence": 0.93}
GATE = PolicyDecisionTask(name="identity_gate")
NOTIFY = ApprovalNotificationTask(name="identity_notify")


@pytest.fixture(scope="module")
def hook() -> Iterator[Hook]:
    with webhook_server() as h:
        yield h


@pytest.fixture(scope="module")
def server(hook: Hook, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ConnectorServer, Path]]:
    state = tmp_path_factory.mktemp("identity-server")
    (state / "tmp").mkdir()
    env = {
        "AIOS_STATE_DIR": str(state),
        "AIOS_CONFIG_DIR": str(REPO / "config"),
        "AIOS_AUDIT_STORE": f"sqlite:///{state}/audit.db",
        "AIOS_APPROVAL_WEBHOOK_URL": hook.url,
        "AIOS_APPROVAL_WEBHOOK_SECRET": "whsec-identity-test",
        "TMPDIR": str(state / "tmp"),
    }
    with connector_server(env, state) as srv:
        yield srv, state


@pytest.fixture
def trail(server: tuple[ConnectorServer, Path], monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point this process at the server's audit store (to open requests and read the records)."""
    from flytekitplugins.aios_audit import close_all
    from flytekitplugins.aios_core.settings import reset_settings

    state = server[1]
    monkeypatch.setenv("AIOS_STATE_DIR", str(state))
    monkeypatch.setenv("AIOS_AUDIT_STORE", f"sqlite:///{state}/audit.db")
    reset_settings()
    close_all()
    return state


def _records(kind: str | None = None) -> list[Any]:
    from flytekitplugins.aios_audit import audit_log

    return [r for r in audit_log(get_settings()).scan(1) if kind is None or r.event.kind == kind]


def _decide(srv: ConnectorServer, principal: str, meta: agent_pb2.TaskExecutionMetadata | None) -> Any:
    values = {"principal": principal, "action": "act_on_document", "resource": DOC, "context": CTX}

    def stream() -> Iterator[agent_pb2.ExecuteTaskSyncRequest]:
        header = agent_pb2.CreateRequestHeader(template=template_of(GATE), output_prefix="/tmp/o")
        if meta is not None:
            header.task_execution_metadata.CopyFrom(meta)
        yield agent_pb2.ExecuteTaskSyncRequest(header=header)
        yield agent_pb2.ExecuteTaskSyncRequest(inputs=literal_map(values, POLICY_INPUTS))

    with grpc.insecure_channel(srv.target) as ch:
        (res,) = list(agent_pb2_grpc.SyncAgentServiceStub(ch).ExecuteTaskSync(stream(), timeout=30))
    return res.header.resource


@pytest.mark.parametrize(
    ("meta", "code", "actor"),
    [
        (None, "no_identity", "unauthenticated"),
        (execution_metadata(service_account="default"), "unknown_identity", "k8s:flyte-aios-development/default"),
        (execution_metadata(namespace="other-team-production"), "unknown_identity", "k8s:other-team-production/"),
        (execution_metadata(service_account="aios-retraining"), "identity_mismatch", "service:retraining"),
    ],
    ids=["anonymous", "unmapped-service-account", "other-namespace", "other-principal"],
)
def test_a_claimed_principal_is_refused_without_a_matching_propagated_identity(
    server: tuple[ConnectorServer, Path], trail: Path, meta: Any, code: str, actor: str
) -> None:
    before = len(_records())
    res = _decide(server[0], CLAIMED, meta)
    assert res.phase == TaskExecution.FAILED
    assert "connector call refused" in res.message and "audit record" in res.message
    new = _records()[before:]
    assert [r.event.kind for r in new] == ["connector_refused"]
    refusal = new[0].event
    assert refusal.status == code and refusal.actor.startswith(actor)
    assert refusal.attributes["claimed_principal"] == CLAIMED
    assert all(r.event.actor != CLAIMED for r in new)  # the call wrote nothing attributed to the claim


def test_the_propagated_identity_is_the_recorded_principal_and_execution(
    server: tuple[ConnectorServer, Path], trail: Path
) -> None:
    res = _decide(server[0], CLAIMED, execution_metadata(execution="exec42", task="identity_gate"))
    assert res.phase == TaskExecution.SUCCEEDED, res.message
    (record,) = _records("policy_decision")[-1:]
    event = record.event
    assert event.actor == CLAIMED
    assert event.attributes["identity"] == "propagated"
    assert event.attributes["service_account"] == "flyte-aios-development/aios-pipeline"
    ex = event.execution
    assert (ex.project, ex.domain, ex.name, ex.node_id, ex.task_name) == (
        "flyte-aios",
        "development",
        "exec42",
        "n0",
        "identity_gate",
    )


def _notify(srv: ConnectorServer, rid: str, meta: agent_pb2.TaskExecutionMetadata | None) -> Any:
    req = agent_pb2.CreateTaskRequest(
        template=template_of(NOTIFY), inputs=literal_map({"request_id": rid}, APPROVAL_INPUTS), output_prefix="/o"
    )
    if meta is not None:
        req.task_execution_metadata.CopyFrom(meta)
    category = agent_pb2.TaskCategory(name=APPROVAL_NOTIFICATION_TASK_TYPE, version=0)
    with grpc.insecure_channel(srv.target) as ch:
        stub = agent_pb2_grpc.AsyncAgentServiceStub(ch)
        resource_meta = stub.CreateTask(req, timeout=30).resource_meta
        got = stub.GetTask(agent_pb2.GetTaskRequest(task_category=category, resource_meta=resource_meta), timeout=30)
    return json.loads(resource_meta), got.resource


@pytest.mark.parametrize(
    "meta",
    [None, execution_metadata(service_account="aios-retraining")],
    ids=["anonymous", "not-the-requester"],
)
def test_approval_notifications_only_for_the_caller_s_own_requests(
    server: tuple[ConnectorServer, Path], hook: Hook, trail: Path, meta: Any
) -> None:
    from flytekitplugins.aios_approvals import open_request
    from flytekitplugins.aios_core.context import ExecutionRef, serving

    hook.reset("ok")
    subject = "sha256:" + ("7" if meta is None else "8") * 64
    # opened by a task of the execution that then waits on it (execution_metadata()'s), as on a cluster: only that
    # execution is notified (another run's standalone launch once re-announced the request and cancelled its ticket)
    with serving(ExecutionRef(project="flyte-aios", domain="development", name="a1b2c3d4e5")):
        rid = open_request(
            gate="payment-signoff", risk="low", subject=subject, requester=CLAIMED, env=Env.load(get_settings())
        )
    _, resource = _notify(server[0], rid, meta)
    assert resource.phase == TaskExecution.FAILED and "connector call refused" in resource.message
    assert hook.received == []  # nothing was sent
    assert _records()[-1].event.kind == "connector_refused"
    # the requester's own execution is served
    _, resource = _notify(server[0], rid, execution_metadata())
    assert resource.phase == TaskExecution.RUNNING and len(hook.received) == 1


def test_locally_the_configured_principal_is_the_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    from flytekitplugins.aios_core.settings import reset_settings

    assert GATE(principal=CLAIMED, action="act_on_document", resource=DOC, context=CTX).effect == "allow"
    assert _records("policy_decision")[-1].event.attributes["identity"] == "local-claimed"
    monkeypatch.setenv("AIOS_PRINCIPAL", "service:monitoring")
    reset_settings()
    with pytest.raises(Exception, match="not this process's configured principal service:monitoring"):
        GATE(principal=CLAIMED, action="act_on_document", resource=DOC, context=CTX)
    assert _records()[-1].event.kind == "connector_refused"
    assert all(r.event.actor != CLAIMED for r in _records() if r.event.kind == "connector_refused")


def test_identities_file_is_validated_and_a_missing_one_maps_nobody(tmp_path: Path) -> None:
    import shutil

    from flytekit.models.task import TaskExecutionMetadata

    from flytekitplugins.aios_connectors.identity import IdentityRefused, establish
    from flytekitplugins.aios_core.errors import ConfigError
    from flytekitplugins.aios_core.settings import load_settings

    config = tmp_path / "config"
    shutil.copytree(REPO / "config" / "profiles", config / "profiles")
    settings = load_settings({"config_dir": config})
    meta = TaskExecutionMetadata.from_flyte_idl(execution_metadata())
    with pytest.raises(IdentityRefused, match="is not mapped to a principal") as e:
        establish(meta, settings, CLAIMED)  # no file: fail closed
    assert e.value.code == "unknown_identity"
    (config / "connector_identities.yaml").write_text("identities:\n  - {namespace: ns, principal: service:x}\n")
    with pytest.raises(ConfigError, match=r"identities\[0\] needs string namespace, service_account and principal"):
        establish(meta, settings, CLAIMED)


def test_flytekit_internals_the_server_relies_on_are_still_there() -> None:
    """Pins what `_flytekit_compat` replaces; a flytekit upgrade that moves them fails here, not in production."""
    from flytekit.extend.backend import connector_service as cs

    from flytekitplugins.aios_connectors import _flytekit_compat

    _flytekit_compat.install()
    assert cs._handle_exception is _flytekit_compat._handle_exception
    assert cs.SyncConnectorService.ExecuteTaskSync is _flytekit_compat._execute_task_sync
    for name in ("request_failure_count", "request_success_count", "request_latency", "do_operation"):
        assert hasattr(cs, name), name
