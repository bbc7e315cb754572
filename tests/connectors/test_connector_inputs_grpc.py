"""What a caller who can reach the connector's gRPC port hands in is checked before it is decoded or acted on
(review of 2026-12-06). Real ``pyflyte serve connector`` (the session's server), real SQLite stores.

* A dictionary input carrying literal metadata ``format: pickle`` made flytekit download and unpickle the file it
  named: code of the caller's choosing ran in the connector service (with its webhook secret and signing key),
  before the caller's identity was established. An offloaded literal or a data frame at an ``http://`` address made
  the service fetch what the caller named.
* An allowed row was posted again by another execution once the payment processor had consumed it.
* A row's amount handed in as text (``"9_000"``, full-width digits) passed as the sealed number and was stored as
  written.
* A task type holding control characters wrote forged lines into the connector's log and its gRPC error.
* The system of record's SQLite file was readable by other local users.
"""

from __future__ import annotations

import os
import pickle
import secrets
import sqlite3
from pathlib import Path
from typing import Any

import grpc
import pandas as pd
import pytest
from flyteidl.admin import agent_pb2
from flyteidl.core import literals_pb2
from flyteidl.core.execution_pb2 import TaskExecution
from flyteidl.service import agent_pb2_grpc
from google.protobuf import struct_pb2

from tests.connectors.protos import execution_metadata, literal_map, python_values, template_of

pytestmark = pytest.mark.slow


class _Marker:
    """Unpickling this writes a file: proof that the service ran the caller's pickle."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path(self.path).write_text, ("code of the caller's choosing ran",))


def _sync(channel: grpc.Channel, task: Any, inputs: literals_pb2.LiteralMap, execution: str = "a1b2c3d4e5") -> Any:
    def stream() -> Any:
        header = agent_pb2.CreateRequestHeader(
            template=template_of(task),
            output_prefix="/tmp/aios-inputs-out",
            task_execution_metadata=execution_metadata(execution=execution),
        )
        yield agent_pb2.ExecuteTaskSyncRequest(header=header)
        yield agent_pb2.ExecuteTaskSyncRequest(inputs=inputs)

    (response,) = list(agent_pb2_grpc.SyncAgentServiceStub(channel).ExecuteTaskSync(stream(), timeout=30))
    return response.header.resource


def test_a_pickled_or_fetched_input_is_refused_before_it_is_decoded(channel, shared_state, tmp_path: Path) -> None:
    from flytekitplugins.aios_connectors import PolicyDecisionTask
    from flytekitplugins.aios_connectors.system_of_record import SystemOfRecordConfig, SystemOfRecordTask

    marker = tmp_path / "ran.txt"
    payload = tmp_path / "p.pkl"
    payload.write_bytes(pickle.dumps(_Marker(str(marker))))
    generic = struct_pb2.Struct()
    generic.update({"pickle_file": str(payload)})
    pickled = literals_pb2.Literal(
        scalar=literals_pb2.Scalar(generic=generic), metadata={"format": "pickle"}
    )  # what flytekit's DictTransformer unpickles
    inputs = literal_map(
        {"principal": "service:document-pipeline", "action": "run_task"}, {"principal": str, "action": str}
    )
    inputs.literals["resource"].CopyFrom(pickled)
    res = _sync(channel, PolicyDecisionTask(name="grpc_pickle"), inputs)
    assert res.phase == TaskExecution.FAILED and "UnsafeInput" in res.message, res.message
    assert "literal metadata" in res.message and not marker.exists()

    sor = SystemOfRecordTask(name="grpc_sor_fetch", config=SystemOfRecordConfig(table="fetch_" + secrets.token_hex(4)))
    frame = literal_map({"actions": pd.DataFrame({"action_key": ["k"]})}, {"actions": pd.DataFrame})
    frame.literals["actions"].scalar.structured_dataset.uri = "http://169.254.169.254/latest/meta-data.parquet"
    res = _sync(channel, sor, frame)
    assert res.phase == TaskExecution.FAILED and "outside the object stores" in res.message, res.message

    offloaded = literal_map({"actions": pd.DataFrame({"action_key": ["k"]})}, {"actions": pd.DataFrame})
    offloaded.literals["actions"].offloaded_metadata.uri = "http://127.0.0.1:9/offloaded/actions.pb"
    res = _sync(channel, sor, offloaded)
    assert res.phase == TaskExecution.FAILED and "offloaded literal" in res.message, res.message


def _post(channel: grpc.Channel, task: Any, frame: pd.DataFrame, execution: str) -> dict[str, Any]:
    from flytekitplugins.aios_connectors.system_of_record import OUTPUTS

    res = _sync(channel, task, literal_map({"actions": frame}, {"actions": pd.DataFrame}), execution)
    assert res.phase == TaskExecution.SUCCEEDED, res.message
    return python_values(res.outputs, OUTPUTS)


def test_an_action_consumed_downstream_is_not_posted_again_by_another_execution(channel, shared_state) -> None:
    from flytekitplugins.aios_connectors.system_of_record import SystemOfRecordConfig, SystemOfRecordTask
    from tests.governed_rows import governed_rows

    db = shared_state / "grpc_sor.db"  # the service's AIOS_SYSTEM_OF_RECORD_URL_GRPC (tests/connectors/conftest.py)
    table = "replay_" + secrets.token_hex(4)
    task = SystemOfRecordTask(
        name="grpc_sor_replay", config=SystemOfRecordConfig(table=table, url="env:AIOS_SYSTEM_OF_RECORD_URL_GRPC")
    )
    frame = pd.DataFrame(governed_rows(2, "replay"))
    assert _post(channel, task, frame, "pipeline-e1") == {"posted": 2, "already_posted": 0, "refused": 0}
    with sqlite3.connect(db) as conn:  # the payment processor consumes the rows
        conn.execute(f"DELETE FROM {table}")
    again = _post(channel, task, frame, "someone-elses-e2")
    assert again == {"posted": 0, "already_posted": 2, "refused": 0}
    with sqlite3.connect(db) as conn:
        assert conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone() == (0,)


def test_a_system_of_record_file_is_the_services_own(tmp_path: Path) -> None:
    """Its SQLite file was created 0644 in a folder others may enter (an image layer's, ``/tmp/aios``): another local
    user read every posted payment. It is created 0600 now, as the audit store's files are."""
    from flytekitplugins.aios_connectors.system_of_record import post_rows

    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    post_rows(f"sqlite:///{shared}/sor.db", "actions", [])
    assert ((shared / "sor.db").stat().st_mode & 0o777) == 0o600


def test_an_amount_handed_in_as_text_is_refused_and_nothing_is_stored(channel, shared_state) -> None:
    from flytekitplugins.aios_connectors.system_of_record import SystemOfRecordConfig, SystemOfRecordTask
    from tests.governed_rows import governed_rows

    db = shared_state / "grpc_sor.db"
    table = "amount_" + secrets.token_hex(4)
    task = SystemOfRecordTask(
        name="grpc_sor_amount", config=SystemOfRecordConfig(table=table, url="env:AIOS_SYSTEM_OF_RECORD_URL_GRPC")
    )
    rows = governed_rows(2, "amount-text")
    for row, text in zip(rows, ("{:_.0f}", "full"), strict=True):
        amount = float(row["amount"])
        row["amount"] = (
            text.format(amount)
            if text != "full"
            else str(int(amount)).translate({ord(d): 0xFF10 + int(d) for d in "0123456789"})
        )
        assert float(row["amount"]) == amount  # Python reads it as the sealed number
    res = _sync(channel, task, literal_map({"actions": pd.DataFrame(rows)}, {"actions": pd.DataFrame}))
    assert res.phase == TaskExecution.FAILED and "not a number" in res.message, res.message
    with sqlite3.connect(db) as conn:
        assert not conn.execute("SELECT name FROM sqlite_master WHERE name = ?", (table,)).fetchall()


def test_a_task_type_cannot_write_lines_into_the_connectors_log(channel, connector) -> None:
    from flytekitplugins.aios_connectors import PolicyDecisionTask

    template = template_of(PolicyDecisionTask(name="grpc_forged"))
    template.type = "nosuch\n2026-12-06 INFO approved by user:cfo\x1b[2K"
    req = agent_pb2.CreateTaskRequest(template=template, inputs=literals_pb2.LiteralMap(), output_prefix="/tmp/o")
    with pytest.raises(grpc.RpcError) as caught:
        agent_pb2_grpc.AsyncAgentServiceStub(channel).CreateTask(req, timeout=20)
    details = caught.value.details()
    assert "\n" not in details and "\x1b" not in details and "\\x0a" in details, details


def test_only_the_packs_connectors_are_served(channel, tmp_path: Path) -> None:
    """Second review of 2026-12-06 (D1): ``import flytekit`` registers its sensor engine and ``pyflyte serve
    connector`` its webhook connector, and the service answered for both, with no identity and no input checks: a
    sensor task's input with ``format: pickle`` ran the caller's code in the service again, and the webhook connector
    fetched any URL and answered with the response. The service now answers only for the pack's task types."""
    from flyteidl.core import identifier_pb2, interface_pb2, tasks_pb2, types_pb2

    from flytekitplugins.aios_connectors._flytekit_compat import SERVED_TASK_TYPES

    marker = tmp_path / "ran.txt"
    payload = tmp_path / "p.pkl"
    payload.write_bytes(pickle.dumps(_Marker(str(marker))))
    sensor = tasks_pb2.TaskTemplate(type="sensor", id=identifier_pb2.Identifier(resource_type=identifier_pb2.TASK))
    sensor.custom.update({"sensor_module": "flytekit.sensor.file_sensor", "sensor_name": "FileSensor"})
    struct = interface_pb2.Variable(type=types_pb2.LiteralType(simple=types_pb2.STRUCT))
    sensor.interface.inputs.variables["resource"].CopyFrom(struct)
    generic = struct_pb2.Struct()
    generic.update({"pickle_file": str(payload)})
    inputs = literals_pb2.LiteralMap()
    inputs.literals["resource"].scalar.generic.CopyFrom(generic)
    inputs.literals["resource"].metadata["format"] = "pickle"
    request = agent_pb2.CreateTaskRequest(template=sensor, inputs=inputs, output_prefix=str(tmp_path / "out"))
    with pytest.raises(grpc.RpcError) as caught:
        agent_pb2_grpc.AsyncAgentServiceStub(channel).CreateTask(request, timeout=30)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND and not marker.exists()

    webhook = tasks_pb2.TaskTemplate(type="webhook", id=identifier_pb2.Identifier(resource_type=identifier_pb2.TASK))
    webhook.custom.update({"url": "http://127.0.0.1:9/latest/meta-data/", "method": "GET", "headers": {}, "body": {}})

    def stream() -> Any:
        yield agent_pb2.ExecuteTaskSyncRequest(header=agent_pb2.CreateRequestHeader(template=webhook))
        yield agent_pb2.ExecuteTaskSyncRequest(inputs=literals_pb2.LiteralMap())

    with pytest.raises(grpc.RpcError) as caught:
        list(agent_pb2_grpc.SyncAgentServiceStub(channel).ExecuteTaskSync(stream(), timeout=30))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    listed = agent_pb2_grpc.AgentMetadataServiceStub(channel).ListAgents(agent_pb2.ListAgentsRequest(), timeout=30)
    served = {c.name for a in listed.agents for c in a.supported_task_categories}
    assert served == set(SERVED_TASK_TYPES)


def test_a_data_frame_is_read_only_from_where_the_service_reads(channel, tmp_path: Path) -> None:
    """Second review of 2026-12-06 (D2, D3): a data frame input sent as msgpack or as a generic struct carries a URI
    of its own, which the type engine fetched unchecked (the cloud's metadata service, for an anonymous caller); a
    plain one at ``file:///proc/self/environ#`` (the fragment dropped the suffix the decoder appended) was parsed and
    its ``principal`` column quoted in the error, and ``file:///dev/zero#`` grew the service by gigabytes. Now a data
    frame must be a structured-dataset literal, its file an object store's or under the operator's input folders,
    with no query, fragment or chained protocol; and the caller's identity is established before a byte is read."""
    from flytekitplugins.aios_connectors.system_of_record import SystemOfRecordConfig, SystemOfRecordTask

    sor = SystemOfRecordTask(name="grpc_sor_frames", config=SystemOfRecordConfig(table="fetch_" + secrets.token_hex(4)))
    frame = literal_map({"actions": pd.DataFrame({"action_key": ["k"]})}, {"actions": pd.DataFrame})
    wrapped = literals_pb2.Literal(
        scalar=literals_pb2.Scalar(binary=literals_pb2.Binary(value=b"\x81\xa3uri\xa0", tag="msgpack"))
    )
    as_msgpack = literals_pb2.LiteralMap()
    as_msgpack.literals["actions"].CopyFrom(wrapped)
    res = _sync(channel, sor, as_msgpack)
    assert res.phase == TaskExecution.FAILED and "send it as a structured dataset literal" in res.message, res.message
    for uri in ("file:///proc/self/environ#", "file:///dev/zero", "/etc/passwd", f"file://{tmp_path}/a.csv?x=1"):
        frame.literals["actions"].scalar.structured_dataset.uri = uri
        res = _sync(channel, sor, frame)
        assert res.phase == TaskExecution.FAILED and "UnsafeInput" in res.message, (uri, res.message)
    anonymous = agent_pb2.TaskExecutionMetadata()  # no namespace, no service account: refused before decoding
    frame.literals["actions"].scalar.structured_dataset.uri = "s3://any-bucket/any.parquet"

    def stream() -> Any:
        header = agent_pb2.CreateRequestHeader(template=template_of(sor), task_execution_metadata=anonymous)
        yield agent_pb2.ExecuteTaskSyncRequest(header=header)
        yield agent_pb2.ExecuteTaskSyncRequest(inputs=frame)

    (response,) = list(agent_pb2_grpc.SyncAgentServiceStub(channel).ExecuteTaskSync(stream(), timeout=30))
    assert response.header.resource.phase == TaskExecution.FAILED
    assert "no propagated identity" in response.header.resource.message


def test_a_served_call_posts_only_to_the_tables_the_service_allows(channel, shared_state) -> None:
    """Second review of 2026-12-06 (D5): the table is the caller's template's, so a run under the pipeline's service
    account posted the pipeline's approved rows into a table of its choosing, and the pipeline's own post was then
    refused (an action is claimed at its first destination). A served call now writes only to the tables the
    service allows (``AIOS_SYSTEM_OF_RECORD_TABLES``); nothing is claimed or posted for another."""
    from flytekitplugins.aios_connectors.system_of_record import SystemOfRecordConfig, SystemOfRecordTask
    from tests.governed_rows import governed_rows

    url = "env:AIOS_SYSTEM_OF_RECORD_URL_GRPC"
    decoy = SystemOfRecordTask(name="grpc_decoy", config=SystemOfRecordConfig(table="decoy_x", url=url))
    rows = pd.DataFrame(governed_rows(2, "divert"))
    res = _sync(channel, decoy, literal_map({"actions": rows}, {"actions": pd.DataFrame}), "attacker-run-1")
    assert res.phase == TaskExecution.FAILED and "AIOS_SYSTEM_OF_RECORD_TABLES" in res.message, res.message
    real = SystemOfRecordTask(
        name="grpc_real", config=SystemOfRecordConfig(table="grpc_actions_" + secrets.token_hex(4), url=url)
    )
    assert _post(channel, real, rows, "pipeline-run-7") == {"posted": 2, "already_posted": 0, "refused": 0}
    with sqlite3.connect(shared_state / "grpc_sor.db") as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "decoy_x" not in tables


def test_what_an_anonymous_caller_claims_is_kept_bounded(channel, shared_state) -> None:
    """Second review of 2026-12-06 (D4): each anonymous call appended a ``connector_refused`` record keeping the
    claimed principal whole: a 3 MB principal made 4 MB records in the append-only trail. What a refused caller
    claims is now kept up to 256 characters, with the digest of the whole. Review R31b: the policy connector decoded
    an anonymous caller's inputs (1.3 s of the service's event loop for 3.9 MB) before it refused the call; an
    anonymous call is now refused before its inputs are decoded, the principal it claims read off its literal."""
    from flytekitplugins.aios_audit import audit_log
    from flytekitplugins.aios_connectors import PolicyDecisionTask

    claimed = "user:" + "x" * 1_000_000
    inputs = literal_map(
        {"principal": claimed, "action": "run_task", "resource": {"type": "Task", "id": "t"}, "context": {}},
        {"principal": str, "action": str, "resource": dict, "context": dict},
    )
    task = PolicyDecisionTask(name="grpc_flood")

    def stream(meta: Any) -> Any:
        header = agent_pb2.CreateRequestHeader(template=template_of(task), task_execution_metadata=meta)
        yield agent_pb2.ExecuteTaskSyncRequest(header=header)
        yield agent_pb2.ExecuteTaskSyncRequest(inputs=inputs)

    stub = agent_pb2_grpc.SyncAgentServiceStub(channel)
    for meta in (agent_pb2.TaskExecutionMetadata(), execution_metadata(execution="flood-run-1")):
        (response,) = list(stub.ExecuteTaskSync(stream(meta), timeout=30))
        assert response.header.resource.phase == TaskExecution.FAILED
    from flytekitplugins.aios_audit.records import entry_bytes
    from flytekitplugins.aios_core.settings import get_settings

    store = audit_log(get_settings())
    refusals = [r for r in store.scan() if r.event.kind == "connector_refused" and r.event.subject == "grpc_flood"]
    assert len(refusals) == 2 and all(len(entry_bytes(r.seq, r.recorded_at, r.event)) < 4096 for r in refusals)
    assert [r.event.status for r in refusals] == ["no_identity", "identity_mismatch"]
    for refusal in refusals:  # anonymous, then the pipeline's account claiming another principal
        kept = refusal.event.attributes["claimed_principal"]
        assert kept.startswith("user:xxx") and "1000005 characters, sha256:" in kept


def _sync_template(channel: grpc.Channel, template: Any, inputs: Any, meta: Any) -> Any:
    def stream() -> Any:
        yield agent_pb2.ExecuteTaskSyncRequest(
            header=agent_pb2.CreateRequestHeader(template=template, task_execution_metadata=meta)
        )
        yield agent_pb2.ExecuteTaskSyncRequest(inputs=inputs)

    (response,) = list(agent_pb2_grpc.SyncAgentServiceStub(channel).ExecuteTaskSync(stream(), timeout=30))
    return response.header.resource


def test_a_folder_input_holds_only_regular_files_of_the_services_folders(channel, tmp_path: Path) -> None:
    """Re-review of 2026-12-06 (E1, E2): the input folder itself was checked, not what it holds. The decoders read
    ``<folder>/.csv`` or every Parquet part: a link there to ``/etc/passwd`` was parsed, and a named pipe there held
    the service's event loop (every caller's) until someone wrote to it. A folder input now holds only folders and
    regular files, with no link, and a URI with white space is refused (``urlsplit`` drops a tab the reader keeps)."""
    from flytekitplugins.aios_connectors.system_of_record import SystemOfRecordConfig, SystemOfRecordTask

    sor = SystemOfRecordTask(name="grpc_sor_folder", config=SystemOfRecordConfig(table="fetch_" + secrets.token_hex(4)))
    frame = literal_map({"actions": pd.DataFrame({"action_key": ["k"]})}, {"actions": pd.DataFrame})
    linked, piped = tmp_path / "linked", tmp_path / "piped"
    linked.mkdir()
    piped.mkdir()
    (linked / ".csv").symlink_to("/etc/passwd")
    os.mkfifo(piped / ".csv")
    dataset = frame.literals["actions"].scalar.structured_dataset
    dataset.metadata.structured_dataset_type.format = "csv"
    for uri in (str(linked), f"file://{piped}", "s3:\t//bucket/../../etc"):
        dataset.uri = uri
        res = _sync(channel, sor, frame)
        assert res.phase == TaskExecution.FAILED and "UnsafeInput" in res.message, (uri, res.message)
    listed = agent_pb2_grpc.AgentMetadataServiceStub(channel).ListAgents(agent_pb2.ListAgentsRequest(), timeout=10)
    assert listed.agents  # the service still answers


def test_a_refused_callers_metadata_and_task_name_are_kept_bounded(channel, connector, shared_state) -> None:
    """Re-review of 2026-12-06 (E3, E5): the execution a refused call named and its namespace and service account were
    kept whole (a 3.6 MB refusal record), and a 1 MB task name made a 1 MB log line. Both are bounded now."""
    from flytekitplugins.aios_audit import audit_log
    from flytekitplugins.aios_audit.records import entry_bytes
    from flytekitplugins.aios_connectors import PolicyDecisionTask
    from flytekitplugins.aios_core.settings import get_settings

    inputs = literal_map(
        {"principal": "user:x", "action": "run_task", "resource": {"type": "Task", "id": "t"}, "context": {}},
        {"principal": str, "action": str, "resource": dict, "context": dict},
    )
    template = template_of(PolicyDecisionTask(name="grpc_bounded"))
    template.id.name = "grpc_bounded" + "n" * 1_000_000
    huge = "x" * 600_000
    before = len(connector.log_text())
    for meta in (
        execution_metadata(namespace="", service_account="", execution=huge, task=huge),
        execution_metadata(namespace="ns-" + huge, service_account="sa" + huge),
    ):
        assert _sync_template(channel, template, inputs, meta).phase == TaskExecution.FAILED
    refusals = [r for r in audit_log(get_settings()).scan() if r.event.kind == "connector_refused"]
    assert all(len(entry_bytes(r.seq, r.recorded_at, r.event)) < 16_384 for r in refusals[-2:])
    assert len(connector.log_text()) - before < 64_000


def test_a_table_may_not_take_a_ledgers_name(channel, shared_state) -> None:
    """Re-review of 2026-12-06 (E4): with a wildcard table pattern, a served call could name ``<table>_keys``, the
    ledger of ``<table>``'s posted actions, and one empty call made a 9-column table there: every later post to the
    table failed. A table name ending in ``_keys`` is refused."""
    from flytekitplugins.aios_connectors.system_of_record import SystemOfRecordConfig, SystemOfRecordTask

    with pytest.raises(ValueError, match="not ending in _keys"):
        SystemOfRecordConfig(table="grpc_actions_keys")
    table = "grpc_actions_" + secrets.token_hex(4)
    task = SystemOfRecordTask(
        name="grpc_squat", config=SystemOfRecordConfig(table=table, url="env:AIOS_SYSTEM_OF_RECORD_URL_GRPC")
    )
    template = template_of(task)
    template.custom["table"] = f"{table}_keys"
    empty = literal_map({"actions": pd.DataFrame({"action_key": []})}, {"actions": pd.DataFrame})
    res = _sync_template(channel, template, empty, execution_metadata())
    assert res.phase == TaskExecution.FAILED and "not ending in _keys" in res.message, res.message
    with sqlite3.connect(shared_state / "grpc_sor.db") as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert f"{table}_keys" not in tables


def test_a_local_input_is_read_from_a_private_copy_of_plain_files(channel, tmp_path: Path) -> None:
    """Third review of 2026-12-06: a hard link in the input folder to a file outside it is a regular file, and was
    read; and the check of the path lost a race with a writer swapping a checked file for a link before the decoder
    opened it. Each part is now opened without following links and checked on its handle (regular files of one name,
    folders), and the decoder reads a private copy, never the caller's path."""
    from flytekitplugins.aios_connectors._literals import UnsafeInput, private_copy
    from flytekitplugins.aios_connectors.system_of_record import SystemOfRecordConfig, SystemOfRecordTask

    outside = tmp_path.parent / f"outside-{secrets.token_hex(4)}.csv"  # another test's folder: not this input's
    outside.write_text("principal\nuser:SECRET-OUTSIDE\n")
    try:
        linked = tmp_path / "hard"
        linked.mkdir()
        os.link(outside, linked / ".csv")
        sor = SystemOfRecordTask(
            name="grpc_sor_hard", config=SystemOfRecordConfig(table="fetch_" + secrets.token_hex(4))
        )
        frame = literal_map({"actions": pd.DataFrame({"action_key": ["k"]})}, {"actions": pd.DataFrame})
        dataset = frame.literals["actions"].scalar.structured_dataset
        dataset.metadata.structured_dataset_type.format = "csv"
        dataset.uri = str(linked)
        res = _sync(channel, sor, frame)
        assert res.phase == TaskExecution.FAILED and "UnsafeInput" in res.message and "SECRET" not in res.message
    finally:
        outside.unlink()
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "part-0").write_text("a,b\n1,2\n")
    (plain / "link").symlink_to(plain / "part-0")
    (tmp_path / "copy-1").mkdir()
    with pytest.raises(UnsafeInput, match="could not be opened as a plain file or folder"):
        private_copy(plain, [tmp_path], tmp_path / "copy-1")  # a link in it, even to a file inside
    (plain / "link").unlink()
    (tmp_path / "copy-2").mkdir()
    copy = private_copy(plain, [tmp_path], tmp_path / "copy-2")
    assert (copy / "part-0").read_text() == "a,b\n1,2\n" and copy.parent == tmp_path / "copy-2"


def test_a_local_input_copy_counts_folders_and_stops_at_depth(tmp_path: Path) -> None:
    """Fourth review of 2026-12-06: only files counted toward the copy's cap (60,000 empty folders held the service
    for seconds), and 1,200 nested folders escaped as a RecursionError, not a refusal. Folders count now, 32 deep."""
    from flytekitplugins.aios_connectors._literals import MAX_LOCAL_FILES, UnsafeInput, private_copy

    wide = tmp_path / "wide"
    wide.mkdir()
    for i in range(MAX_LOCAL_FILES + 1):
        (wide / f"d{i}").mkdir()
    (tmp_path / "copy-wide").mkdir()
    with pytest.raises(UnsafeInput, match="entries or"):
        private_copy(wide, [tmp_path], tmp_path / "copy-wide")
    deep = tmp_path / "deep"
    (deep / "/".join("d" * 40)).mkdir(parents=True)
    (tmp_path / "copy-deep").mkdir()
    with pytest.raises(UnsafeInput, match="nested more than 32"):
        private_copy(deep, [tmp_path], tmp_path / "copy-deep")
