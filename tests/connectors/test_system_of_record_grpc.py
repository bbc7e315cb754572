"""The documents team's system-of-record connector, served by the same server, over ExecuteTaskSync."""

from __future__ import annotations

import secrets
import sqlite3
from pathlib import Path

import grpc
import pandas as pd
import pytest
from flyteidl.admin import agent_pb2
from flyteidl.core.execution_pb2 import TaskExecution
from flyteidl.service import agent_pb2_grpc

from tests.connectors.harness import HAS_SOR
from tests.connectors.protos import execution_metadata, literal_map, python_values, template_of

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not HAS_SOR, reason="system_of_record.py not written yet")]


def _call(channel: grpc.Channel, task, frame: pd.DataFrame):
    inputs = literal_map({"actions": frame}, {"actions": pd.DataFrame})

    def stream():
        header = agent_pb2.CreateRequestHeader(
            template=template_of(task), output_prefix="/tmp/aios-sor-out", task_execution_metadata=execution_metadata()
        )
        yield agent_pb2.ExecuteTaskSyncRequest(header=header)
        yield agent_pb2.ExecuteTaskSyncRequest(inputs=inputs)

    (response,) = list(agent_pb2_grpc.SyncAgentServiceStub(channel).ExecuteTaskSync(stream(), timeout=30))
    return response.header.resource


def _post(channel: grpc.Channel, task, frame: pd.DataFrame):
    from flytekitplugins.aios_connectors.system_of_record import OUTPUTS

    res = _call(channel, task, frame)
    assert res.phase == TaskExecution.SUCCEEDED, res.message
    return python_values(res.outputs, OUTPUTS)


def test_rows_are_posted_once_even_when_the_call_is_repeated(channel, shared_state) -> None:
    from flytekitplugins.aios_connectors.system_of_record import SystemOfRecordConfig, SystemOfRecordTask
    from tests.governed_rows import governed_rows

    db = shared_state / "grpc_sor.db"  # the service's AIOS_SYSTEM_OF_RECORD_URL_GRPC (tests/connectors/conftest.py)
    table = "grpc_actions_" + secrets.token_hex(4)
    config = SystemOfRecordConfig(table=table, url="env:AIOS_SYSTEM_OF_RECORD_URL_GRPC")
    task = SystemOfRecordTask(name="grpc_sor", config=config)
    frame = pd.DataFrame(governed_rows(3, "grpc"))  # policy decisions in the server's audit store
    assert _post(channel, task, frame) == {"posted": 3, "already_posted": 0, "refused": 0}
    assert _post(channel, task, frame) == {
        "posted": 0,
        "already_posted": 3,
        "refused": 0,
    }  # a retry posts nothing twice
    forged = frame.assign(amount=250_000.0)  # the same rows, another amount: nothing stands behind them
    assert _post(channel, task, forged) == {"posted": 0, "already_posted": 0, "refused": 3}
    with sqlite3.connect(db) as conn:
        assert conn.execute(f"SELECT count(*) FROM {table}").fetchone() == (3,)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("env:AIOS_TEST_NOT_A_URL", "'env:AIOS_TEST_NOT_A_URL' is refused"),  # any variable of the service
        ("sqlite:///{tmp}/elsewhere.db", "/elsewhere.db' is refused"),  # any file the service may write
        ("postgresql://app:s3cret@127.0.0.1:1/x", "'postgresql://app:***@127.0.0.1:1/x' is refused"),  # any server
    ],
    ids=["another variable", "a file of the caller's", "a server of the caller's"],
)
def test_a_served_call_cannot_choose_where_the_connector_writes(
    channel, connector, shared_state, tmp_path: Path, url: str, shown: str
) -> None:
    """The template is what the gRPC caller sent. Its url named any variable of the service (whose value the error
    quoted back), any SQLite file the service may write (created) or any PostgreSQL server (offered the service's
    credentials). Refused before anything is read, connected or created; the service's own URLs still work."""
    import os

    from flytekitplugins.aios_connectors.system_of_record import SystemOfRecordConfig, SystemOfRecordTask

    where = tmp_path / "callers-folder"
    where.mkdir()
    config = SystemOfRecordConfig(table="grpc_refused", url=url.format(tmp=where))
    res = _call(channel, SystemOfRecordTask(name="grpc_sor_elsewhere", config=config), pd.DataFrame())
    assert res.phase == TaskExecution.FAILED and shown in res.message, res.message
    assert "AKIA-service-key" not in res.message and "s3cret" not in res.message
    assert "AKIA-service-key" not in connector.log_text() and "s3cret" not in connector.log_text()
    assert os.listdir(where) == []  # no file was created
