"""The documents team's system-of-record connector, served by the same server, over ExecuteTaskSync."""

from __future__ import annotations

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


def _post(channel: grpc.Channel, task, frame: pd.DataFrame):
    from flytekitplugins.aios_connectors.system_of_record import OUTPUTS

    inputs = literal_map({"actions": frame}, {"actions": pd.DataFrame})

    def stream():
        header = agent_pb2.CreateRequestHeader(
            template=template_of(task), output_prefix="/tmp/aios-sor-out", task_execution_metadata=execution_metadata()
        )
        yield agent_pb2.ExecuteTaskSyncRequest(header=header)
        yield agent_pb2.ExecuteTaskSyncRequest(inputs=inputs)

    (response,) = list(agent_pb2_grpc.SyncAgentServiceStub(channel).ExecuteTaskSync(stream(), timeout=30))
    res = response.header.resource
    assert res.phase == TaskExecution.SUCCEEDED, res.message
    return python_values(res.outputs, OUTPUTS)


def test_rows_are_posted_once_even_when_the_call_is_repeated(channel, tmp_path: Path, shared_state) -> None:
    from flytekitplugins.aios_connectors.system_of_record import SystemOfRecordConfig, SystemOfRecordTask
    from tests.governed_rows import governed_rows

    db = tmp_path / "sor.db"
    task = SystemOfRecordTask(name="grpc_sor", config=SystemOfRecordConfig(table="grpc_actions", url=f"sqlite:///{db}"))
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
        assert conn.execute("SELECT count(*) FROM grpc_actions").fetchone() == (3,)
