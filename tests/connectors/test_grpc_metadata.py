"""The connector server answers flyteidl's metadata API and rejects what it does not serve."""

from __future__ import annotations

import grpc
import httpx
import pytest
from flyteidl.admin import agent_pb2
from flyteidl.core import tasks_pb2
from flyteidl.service import agent_pb2_grpc

from flytekitplugins.aios_connectors.constants import APPROVAL_NOTIFICATION_TASK_TYPE, POLICY_DECISION_TASK_TYPE
from tests.connectors.harness import HAS_SOR

pytestmark = pytest.mark.slow


def test_list_agents_names_every_pack_connector_with_its_mode(channel: grpc.Channel) -> None:
    agents = agent_pb2_grpc.AgentMetadataServiceStub(channel).ListAgents(agent_pb2.ListAgentsRequest(), timeout=5)
    by_type = {t: a for a in agents.agents for t in a.supported_task_types}
    assert by_type[POLICY_DECISION_TASK_TYPE].is_sync is True
    assert by_type[APPROVAL_NOTIFICATION_TASK_TYPE].is_sync is False
    if HAS_SOR:
        from flytekitplugins.aios_connectors.system_of_record import SYSTEM_OF_RECORD_TASK_TYPE

        assert SYSTEM_OF_RECORD_TASK_TYPE in by_type


def test_get_agent_by_name_and_unknown_name(channel: grpc.Channel) -> None:
    stub = agent_pb2_grpc.AgentMetadataServiceStub(channel)
    got = stub.GetAgent(agent_pb2.GetAgentRequest(name="AIOS Policy Decision Connector"), timeout=5)
    assert list(got.agent.supported_task_types) == [POLICY_DECISION_TASK_TYPE]
    with pytest.raises(grpc.RpcError) as e:
        stub.GetAgent(agent_pb2.GetAgentRequest(name="no such connector"), timeout=5)
    assert e.value.code() != grpc.StatusCode.OK


def test_unknown_task_type_is_not_found_on_every_service(channel: grpc.Channel) -> None:
    tmpl = tasks_pb2.TaskTemplate(type="aios_no_such_type")
    async_stub = agent_pb2_grpc.AsyncAgentServiceStub(channel)
    with pytest.raises(grpc.RpcError) as e:
        async_stub.CreateTask(agent_pb2.CreateTaskRequest(template=tmpl, output_prefix="/tmp/x"), timeout=5)
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    assert "aios_no_such_type" in e.value.details()
    with pytest.raises(grpc.RpcError) as e:
        async_stub.GetTask(agent_pb2.GetTaskRequest(task_type="aios_no_such_type", resource_meta=b"{}"), timeout=5)
    assert e.value.code() == grpc.StatusCode.NOT_FOUND

    def stream():
        yield agent_pb2.ExecuteTaskSyncRequest(header=agent_pb2.CreateRequestHeader(template=tmpl, output_prefix="/x"))

    with pytest.raises(grpc.RpcError) as e:
        list(agent_pb2_grpc.SyncAgentServiceStub(channel).ExecuteTaskSync(stream(), timeout=5))
    assert e.value.code() == grpc.StatusCode.NOT_FOUND


def test_health_service_and_prometheus_metrics(connector, channel: grpc.Channel) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    text = httpx.get(f"http://127.0.0.1:{connector.metrics_port}/metrics", timeout=5).text
    assert "flyte_connector_request_latency_seconds" in text
