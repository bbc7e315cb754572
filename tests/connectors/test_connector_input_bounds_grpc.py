"""What a caller with launch rights (or with the metadata of a mapped account) hands a served connector call is bounded
before it costs the service or the audit trail more than the call is worth, and every refusal of a served call is
audited (review R31b, 2026-12-07). Real ``pyflyte serve connector`` (the session's server), real SQLite stores.

* A 3.6 KB Parquet file of 16 rows whose ids were 4 MiB strings made 16 refusal records of 59 MB each (945 MB of trail)
  and took the service from 180 MB to 1.1 GB; a 22 KB file of 600,000 short rows took 73 s, 3.7 GB and 1.75 GB of trail.
* A mapped caller's refused table, refused URL or refused input left no record in the trail (only the identity
  refusals were audited).
* The policy connector decoded an anonymous caller's inputs before it refused the call.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import grpc
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from flyteidl.admin import agent_pb2
from flyteidl.core import literals_pb2
from flyteidl.core.execution_pb2 import TaskExecution
from flyteidl.service import agent_pb2_grpc
from google.protobuf import struct_pb2

from tests.connectors.protos import execution_metadata, literal_map, template_of

pytestmark = pytest.mark.slow


def _sync(channel: grpc.Channel, task: Any, inputs: Any, meta: Any) -> Any:
    def stream() -> Any:
        header = agent_pb2.CreateRequestHeader(template=template_of(task), task_execution_metadata=meta)
        yield agent_pb2.ExecuteTaskSyncRequest(header=header)
        yield agent_pb2.ExecuteTaskSyncRequest(inputs=inputs)

    (response,) = list(agent_pb2_grpc.SyncAgentServiceStub(channel).ExecuteTaskSync(stream(), timeout=60))
    return response.header.resource


def _records(kind: str, subject: str | None = None) -> list[Any]:
    from flytekitplugins.aios_audit import audit_log
    from flytekitplugins.aios_core.settings import get_settings

    store = audit_log(get_settings())
    return [r for r in store.scan() if r.event.kind == kind and (subject is None or r.event.subject == subject)]


def _frame_at(path: Path, table: pa.Table) -> Any:
    """The ``actions`` input of a system-of-record call, naming the Parquet file ``path`` (written from ``table``)."""
    pq.write_table(table, path, compression="zstd")
    inputs = literal_map({"actions": pd.DataFrame({"action_key": ["k"]})}, {"actions": pd.DataFrame})
    inputs.literals["actions"].scalar.structured_dataset.uri = str(path)
    return inputs


def _rows(n: int, text: str) -> pa.Table:
    column = pa.array([text] * n).dictionary_encode()  # a few bytes on disk whatever ``n`` and the text's length
    return pa.table(
        {
            "action_key": column,
            "doc_digest": column,
            "decision_digest": column,
            "action": column,
            "doc_type": ["invoice"] * n,
            "amount": [1.0] * n,
            "currency": ["EUR"] * n,
            "request_id": column,
            "policy_record": column,
            "principal": ["service:document-pipeline"] * n,
        }
    )


def _claims(policy_records: list[str]) -> list[dict[str, Any]]:
    """Rows within every bound of a served call, the i-th naming ``policy_records[i]`` as its decision's record."""
    return [
        {
            "action_key": f"sha256:{i:064x}",
            "doc_digest": f"sha256:{i + 1:064x}",
            "decision_digest": f"sha256:{i + 2:064x}",
            "action": "post_payment",
            "doc_type": "invoice",
            "amount": 1.0,
            "currency": "EUR",
            "request_id": "",
            "policy_record": record,
            "principal": "service:document-pipeline",
        }
        for i, record in enumerate(policy_records)
    ]


def _pickled_policy_inputs() -> Any:
    """A policy call's inputs whose ``resource`` is a literal flytekit would unpickle (a file that is not there)."""
    generic = struct_pb2.Struct()
    generic.update({"pickle_file": "/nonexistent/p.pkl"})
    pickled = literals_pb2.Literal(scalar=literals_pb2.Scalar(generic=generic), metadata={"format": "pickle"})
    inputs = literal_map(
        {"principal": "service:document-pipeline", "action": "run_task"}, {"principal": str, "action": str}
    )
    inputs.literals["resource"].CopyFrom(pickled)
    return inputs


def test_a_frame_of_more_rows_than_a_call_posts_is_refused_from_its_footer_in_one_record(
    channel, shared_state, tmp_path: Path
) -> None:
    from flytekitplugins.aios_connectors.system_of_record import (
        MAX_SERVED_ROWS,
        SystemOfRecordConfig,
        SystemOfRecordTask,
    )

    name = "grpc_rows_" + secrets.token_hex(4)
    task = SystemOfRecordTask(name=name, config=SystemOfRecordConfig(table="document_actions"))
    inputs = _frame_at(tmp_path / "many.parquet", _rows(MAX_SERVED_ROWS + 1, "x"))
    assert (tmp_path / "many.parquet").stat().st_size < 64_000
    res = _sync(channel, task, inputs, execution_metadata(execution="rows-run-1"))
    assert res.phase == TaskExecution.FAILED, res.message
    assert f"more than {MAX_SERVED_ROWS} rows" in res.message and "audit record" in res.message, res.message
    (refusal,) = _records("connector_refused", name)
    assert refusal.event.status == "input_refused" and refusal.event.actor == "service:document-pipeline"
    assert not [r for r in _records("action_refused") if r.event.execution and "rows-run-1" in str(r.event.execution)]


def test_a_frame_of_long_values_is_refused_whole_in_one_small_record(channel, shared_state, tmp_path: Path) -> None:
    from flytekitplugins.aios_audit.records import entry_bytes
    from flytekitplugins.aios_connectors.system_of_record import (
        MAX_SERVED_CELL,
        SystemOfRecordConfig,
        SystemOfRecordTask,
    )

    name = "grpc_cells_" + secrets.token_hex(4)
    task = SystemOfRecordTask(name=name, config=SystemOfRecordConfig(table="document_actions"))
    refused_before = len(_records("action_refused"))
    inputs = _frame_at(tmp_path / "long.parquet", _rows(16, "A" * (MAX_SERVED_CELL + 1)))
    res = _sync(channel, task, inputs, execution_metadata(execution="cells-run-1"))
    assert res.phase == TaskExecution.FAILED and f"at most {MAX_SERVED_CELL}" in res.message, res.message
    (refusal,) = _records("connector_refused", name)
    assert refusal.event.status == "input_refused"
    assert len(entry_bytes(refusal.seq, refusal.recorded_at, refusal.event)) < 4096
    assert len(_records("action_refused")) == refused_before  # no row was read, none refused one by one


def test_a_mapped_callers_refused_table_and_input_are_audited(channel, shared_state) -> None:
    from flytekitplugins.aios_connectors import PolicyDecisionTask
    from flytekitplugins.aios_connectors.system_of_record import SystemOfRecordConfig, SystemOfRecordTask

    name = "grpc_decoy_" + secrets.token_hex(4)
    decoy = SystemOfRecordTask(name=name, config=SystemOfRecordConfig(table="decoy_x"))
    rows = literal_map({"actions": pd.DataFrame({"action_key": ["k"]})}, {"actions": pd.DataFrame})
    res = _sync(channel, decoy, rows, execution_metadata(execution="decoy-run-1"))
    assert res.phase == TaskExecution.FAILED and "AIOS_SYSTEM_OF_RECORD_TABLES" in res.message, res.message
    (refusal,) = _records("connector_refused", name)
    assert (refusal.event.status, refusal.event.actor) == ("input_refused", "service:document-pipeline")
    assert "decoy_x" in refusal.event.attributes["reason"]

    # a literal the service will not decode (pickle), from a mapped caller: refused and audited under its identity
    policy = PolicyDecisionTask(name="grpc_pickle_" + secrets.token_hex(4))
    inputs = _pickled_policy_inputs()
    res = _sync(channel, policy, inputs, execution_metadata(execution="pickle-run-1"))
    assert res.phase == TaskExecution.FAILED and "input refused" in res.message, res.message
    (refusal,) = _records("connector_refused", policy.name)
    assert (refusal.event.status, refusal.event.actor) == ("input_refused", "service:document-pipeline")


def test_an_anonymous_policy_call_is_refused_before_its_inputs_are_decoded(channel, shared_state) -> None:
    from flytekitplugins.aios_connectors import PolicyDecisionTask

    policy = PolicyDecisionTask(name="grpc_anon_pickle_" + secrets.token_hex(4))
    inputs = _pickled_policy_inputs()  # decoding would refuse it as an unsafe input
    res = _sync(channel, policy, inputs, agent_pb2.TaskExecutionMetadata())
    assert res.phase == TaskExecution.FAILED and "no propagated identity" in res.message, res.message
    (refusal,) = _records("connector_refused", policy.name)
    assert refusal.event.status == "no_identity"


def test_refused_rows_are_recorded_with_their_text_bounded(aios_env: Path) -> None:
    """The acting point's backstop (a local call, no service): each refused row's record keeps the row's text bounded,
    whatever called it."""
    from flytekitplugins.aios_audit.records import entry_bytes
    from flytekitplugins.aios_connectors.system_of_record import SystemOfRecordConfig, act
    from flytekitplugins.aios_core.settings import get_settings

    long = "B" * 100_000
    rows = [
        {
            "action_key": long,
            "doc_digest": long,
            "decision_digest": long,
            "action": long,
            "doc_type": "invoice",
            "amount": 1.0,
            "currency": "EUR",
            "request_id": long,
            "policy_record": long,
            "principal": "service:document-pipeline",
        }
    ] * 3
    posted, _, refused = act(SystemOfRecordConfig(table="test_actions"), rows, get_settings())
    assert (posted, refused) == (0, 3)
    first, repeats = _records("action_refused")  # the first refusal of its kind, then one record of the repeats
    assert all(len(entry_bytes(r.seq, r.recorded_at, r.event)) < 8192 for r in (first, repeats))
    assert "100000 characters, sha256:" in first.event.attributes["action_key"]
    assert repeats.event.attributes["rows"] == 2 and repeats.event.status == first.event.status


def test_rows_naming_made_up_decisions_are_refused_in_two_records(
    aios_env: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Re-review R32a: 50,000 rows within every bound, each naming a decision the trail does not hold, made 50,000
    refusal records (about 260 MB of trail from a 53 KB file). The first refusal of a kind in a call has its record,
    the rest are counted in one; every row is still refused, none posted. Re-review R35: the service still logged a
    line a row (190 MB of log for such a call): the first of a kind has its line, the rest one line."""
    from flytekitplugins.aios_connectors.system_of_record import SystemOfRecordConfig, act
    from flytekitplugins.aios_core.settings import get_settings

    rows = _claims([f"{i:064x}" for i in range(2_000)])
    with caplog.at_level("WARNING", logger="flytekitplugins.aios_connectors.system_of_record"):
        assert act(SystemOfRecordConfig(table="test_actions"), rows, get_settings()) == (0, 0, 2_000)
    first, repeats = _records("action_refused")
    assert first.event.status == repeats.event.status
    assert repeats.event.attributes["rows"] == 1_999 and len(repeats.event.attributes["first_action_keys"]) == 5
    lines = [r.getMessage() for r in caplog.records if r.name.endswith("system_of_record")]
    assert len(lines) == 2, len(lines)
    assert (
        "refused action sha256:" in lines[0]
        and f"refused 1999 more actions of this call: {first.event.status}" in lines[1]
    )


def test_rows_naming_records_that_are_not_decisions_are_refused_in_two_records(aios_env: Path) -> None:
    """Re-review R35: any record id the trail holds counted as a known decision, so rows each naming an existing
    record that is not a policy decision (a refusal's id, which every refused call hands back) kept one refusal
    record each: 2,000 such rows wrote 2,000 records a call. Only a policy decision record is a decision now."""
    from flytekitplugins.aios_audit import AuditEvent, audit_log
    from flytekitplugins.aios_connectors.system_of_record import SystemOfRecordConfig, act
    from flytekitplugins.aios_core.settings import get_settings

    events = [
        AuditEvent(kind="connector_refused", actor="anonymous", status="no_identity", attributes={"n": i})
        for i in range(2_000)
    ]
    ids = [r.record_id for r in audit_log(get_settings()).append_many(events)]
    rows = _claims(ids)
    for _ in range(2):
        assert act(SystemOfRecordConfig(table="test_actions"), rows, get_settings()) == (0, 0, 2_000)
    refusals = _records("action_refused")
    assert len(refusals) == 4, len(refusals)  # per call: the first refusal, then one record of the other 1,999
    assert [r.event.attributes.get("rows") for r in refusals] == [None, 1_999, None, 1_999]


def test_a_dictionary_of_one_long_value_or_list_cells_are_refused_before_decoding(
    channel, shared_state, tmp_path: Path
) -> None:
    """Re-review R32a: the footers' sizes count a dictionary's value once, so a 1.2 KB file of 2,000 rows naming one
    8 MiB value passed them and expanded to 16.8 GB in the decoder; and one-element lists carried long text past the
    decoded frame's bound of a cell (a 2.3 KB file: 4.8 GB, every row at the acting point)."""
    from flytekitplugins.aios_connectors.system_of_record import SystemOfRecordConfig, SystemOfRecordTask

    name = "grpc_dict_" + secrets.token_hex(4)
    task = SystemOfRecordTask(name=name, config=SystemOfRecordConfig(table="document_actions"))
    inputs = _frame_at(tmp_path / "dictionary.parquet", _rows(2_000, "D" * 65_536))
    assert (tmp_path / "dictionary.parquet").stat().st_size < 16_000
    res = _sync(channel, task, inputs, execution_metadata(execution="dict-run-1"))
    assert res.phase == TaskExecution.FAILED and "a value of 65536 bytes" in res.message, res.message

    listed = _rows(10, "x").append_column("note", pa.array([["L" * 5_000]] * 10))
    inputs = _frame_at(tmp_path / "lists.parquet", listed)
    res = _sync(channel, task, inputs, execution_metadata(execution="list-run-1"))
    assert res.phase == TaskExecution.FAILED and "column 'note' is of type list" in res.message, res.message
    assert [r.event.status for r in _records("connector_refused", name)] == ["input_refused", "input_refused"]


def test_a_mapped_caller_probing_for_approval_ids_is_audited(channel, shared_state) -> None:
    """Re-review R32a: an empty or unknown request id from a mapped caller failed the call and left no record."""
    from flytekitplugins.aios_connectors import ApprovalNotificationTask
    from flytekitplugins.aios_connectors.approval_task import APPROVAL_INPUTS

    task = ApprovalNotificationTask(name="grpc_probe_" + secrets.token_hex(4))
    for rid in ("apr-" + "0" * 20, ""):
        req = agent_pb2.CreateTaskRequest(
            template=template_of(task),
            inputs=literal_map({"request_id": rid}, APPROVAL_INPUTS),
            output_prefix="/tmp/o",
            task_execution_metadata=execution_metadata(execution="probe-run-1"),
        )
        with pytest.raises(grpc.RpcError):
            agent_pb2_grpc.AsyncAgentServiceStub(channel).CreateTask(req, timeout=20)
    refusals = _records("connector_refused", task.name)
    assert [(r.event.status, r.event.actor) for r in refusals] == [("input_refused", "service:document-pipeline")] * 2
    assert "no approval request" in refusals[0].event.attributes["reason"]


def test_a_frame_of_odd_types_or_too_many_columns_is_refused_before_decoding(
    channel, shared_state, tmp_path: Path
) -> None:
    """Re-review R33: a JSON extension column or a string view naming one 8 MiB value 2,000 times (a 1.1-1.3 KB file)
    passed the check of nested types and took the service past 5 GB in the decoder, as did a tensor column and a frame
    of thousands of constant integer columns (the footers counted 1.5 MB). A served frame's columns are at most 64, of
    plain types only, before anything is decoded."""
    from flytekitplugins.aios_connectors.system_of_record import SystemOfRecordConfig, SystemOfRecordTask

    name = "grpc_types_" + secrets.token_hex(4)
    task = SystemOfRecordTask(name=name, config=SystemOfRecordConfig(table="document_actions"))
    odd = {
        "json": pa.array(['"x"'] * 10, type=pa.json_()),
        "view": pa.array(["x"] * 10, type=pa.string_view()),
        "tensor": pa.FixedShapeTensorArray.from_numpy_ndarray(__import__("numpy").zeros((10, 2, 2), dtype="int8")),
    }
    for i, (column, values) in enumerate(odd.items()):
        inputs = _frame_at(tmp_path / f"{column}.parquet", _rows(10, "x").append_column(column, values))
        res = _sync(channel, task, inputs, execution_metadata(execution=f"types-run-{i}"))
        assert res.phase == TaskExecution.FAILED and f"column '{column}' is of type" in res.message, res.message
    wide = pa.table({f"c{i}": [i] * 10 for i in range(65)})
    res = _sync(channel, task, _frame_at(tmp_path / "wide.parquet", wide), execution_metadata(execution="wide-run"))
    assert res.phase == TaskExecution.FAILED and "it has 65 columns" in res.message, res.message
    assert [r.event.status for r in _records("connector_refused", name)] == ["input_refused"] * 4


def test_the_rows_a_frame_holds_are_counted_from_its_row_groups(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Re-review R34: a file whose footer said 1 row held row groups of 67 million rows of nulls (6.4 GB once decoded);
    the file's own count was summed. The row groups' counts, which the decoder reads, are."""
    from flytekitplugins.aios_connectors._literals import FrameBounds, UnsafeInput, check_footers

    path = tmp_path / "rows.parquet"
    pq.write_table(pa.table({"action_key": pa.nulls(10)}), path)
    real = pq.ParquetFile

    class Lying:  # the file's own count patched to 1, as the review's file did through its footer
        def __init__(self, source: Any, **kwargs: Any) -> None:
            self._file = real(source, **kwargs)
            self.schema_arrow = self._file.schema_arrow

        @property
        def metadata(self) -> Any:
            meta = self._file.metadata

            class Meta:
                num_rows = 1
                num_row_groups = meta.num_row_groups
                num_columns = meta.num_columns
                row_group = staticmethod(meta.row_group)

            return Meta()

        def iter_batches(self, **kwargs: Any) -> Any:
            return self._file.iter_batches(**kwargs)

    monkeypatch.setattr(pq, "ParquetFile", Lying)
    with pytest.raises(UnsafeInput, match="more than 5 rows"):
        check_footers(path, FrameBounds(rows=5, columns=64, cell=1024))


def test_a_frame_of_many_row_groups_is_refused_from_its_footer(channel, shared_state, tmp_path: Path) -> None:
    """Re-review R35: row groups were not counted, only rows: 20,000 row groups of no rows at all (64 columns, 70 MB)
    passed every check and took the service from 188 MB to 6.7 GB, and the call succeeded. Row groups times columns
    (each file counting one at least) are bounded now, before the frame is decoded, and the refusal audited."""
    from flytekitplugins.aios_connectors._literals import MAX_COLUMN_CHUNKS

    empty = pa.table({f"c{i}": pa.array([], pa.int8()) for i in range(64)})
    path = tmp_path / "groups.parquet"
    with pq.ParquetWriter(path, empty.schema, compression="none", write_statistics=False) as writer:
        for _ in range(MAX_COLUMN_CHUNKS // 64 + 1):
            writer.write_table(empty)
    assert pq.ParquetFile(path).metadata.num_rows == 0
    assert f"more than {MAX_COLUMN_CHUNKS} column chunks" in _refusal_of(channel, path, "groups-run-1")


def _refusal_of(channel: grpc.Channel, path: Path, execution: str) -> str:
    """The message of a served system-of-record call refused for the Parquet file ``path`` (its one audited refusal
    checked)."""
    from flytekitplugins.aios_connectors.system_of_record import SystemOfRecordConfig, SystemOfRecordTask

    name = "grpc_frame_" + secrets.token_hex(4)
    task = SystemOfRecordTask(name=name, config=SystemOfRecordConfig(table="document_actions"))
    inputs = literal_map({"actions": pd.DataFrame({"action_key": ["k"]})}, {"actions": pd.DataFrame})
    inputs.literals["actions"].scalar.structured_dataset.uri = str(path)
    res = _sync(channel, task, inputs, execution_metadata(execution=execution))
    assert res.phase == TaskExecution.FAILED, res.message
    assert [r.event.status for r in _records("connector_refused", name)] == ["input_refused"]
    return str(res.message)


def _forged_sizes(path: Path, size: int, forged: int) -> None:
    """A Parquet file of one row whose one value is ``size`` zero bytes (a few KB compressed), its footer's row-group
    and column-chunk sizes forged down to ``forged`` (the page's own header keeps the true size)."""

    def varint(n: int) -> bytes:
        n, out = n << 1, bytearray()  # zigzag of a positive number
        while n >= 0x80:
            out.append((n & 0x7F) | 0x80)
            n >>= 7
        return bytes([*out, n])

    table = pa.table({"action_key": pa.array([bytes(size)], pa.binary())})
    pq.write_table(table, path, compression="zstd", write_statistics=False, data_page_size=1 << 30)
    del table
    honest = pq.ParquetFile(path).metadata.row_group(0).total_byte_size
    data = bytearray(path.read_bytes())
    length = int.from_bytes(data[-8:-4], "little")
    footer = bytes(data[-8 - length : -8])
    assert len(varint(honest)) == len(varint(forged)) and varint(honest) in footer
    data[-8 - length : -8] = footer.replace(varint(honest), varint(forged))
    path.write_bytes(bytes(data))
    assert pq.ParquetFile(path).metadata.row_group(0).total_byte_size == forged


def test_a_frame_whose_footer_understates_its_pages_is_refused_before_a_page_is_decompressed(
    channel, shared_state, tmp_path: Path
) -> None:
    """Re-review R35: the footer's sizes were trusted. A 31 KB file whose footer said 134 MB over a page of 1 GB (one
    value of zeros, compressed) took the service to 4.1 GB before its text was measured: the decoder allocates what
    the page's own header says. Each page's header is read now, and their sizes summed, before anything is decoded."""
    from flytekitplugins.aios_connectors._literals import MAX_FRAME_BYTES

    path = tmp_path / "forged.parquet"
    _forged_sizes(path, MAX_FRAME_BYTES + (64 << 20), 1 << 27)  # 128 MiB: within the bound, as the footer says
    assert path.stat().st_size < 64_000
    refusal = _refusal_of(channel, path, "pages-run-1")
    assert f"its pages take more than {MAX_FRAME_BYTES} bytes uncompressed" in refusal


def test_a_frame_whose_footers_are_too_long_is_refused_before_they_are_parsed(tmp_path: Path) -> None:
    """Re-review R35: 50,000 one-row row groups made a 340 MB file whose footer alone took 3 GB and 3.7 s to parse.
    The footers' lengths, read from each file's last bytes, are bounded before a footer is parsed; and a file whose
    footer says it is longer than the file is not Parquet."""
    from flytekitplugins.aios_connectors._literals import MAX_FOOTER_BYTES, FrameBounds, UnsafeInput, check_footers

    path = tmp_path / "footer.parquet"
    pq.write_table(pa.table({"action_key": ["k"]}), path)
    data = bytearray(path.read_bytes())
    data[-8:-4] = (MAX_FOOTER_BYTES + 1).to_bytes(4, "little")
    path.write_bytes(bytes(data) + b"")
    with pytest.raises(UnsafeInput, match="footer is longer than the file"):
        check_footers(path, FrameBounds(rows=5, columns=64, cell=1024))
    padded = tmp_path / "padded.parquet"  # a footer really that long: zeros before it make the file long enough
    padded.write_bytes(b"PAR1" + bytes(MAX_FOOTER_BYTES + 16) + bytes(data[-8:]))
    with pytest.raises(UnsafeInput, match=f"footers take more than {MAX_FOOTER_BYTES} bytes"):
        check_footers(padded, FrameBounds(rows=5, columns=64, cell=1024))


def test_a_csv_frame_of_more_lines_than_a_call_posts_is_refused_before_it_is_decoded(
    channel, shared_state, tmp_path: Path
) -> None:
    """Re-review R35: a CSV frame had no bound before it was decoded (its docstring said its bytes bounded it): a 64 MB
    file of 1,000,000 rows of empty cells took the service to 1.3 GB before its rows were counted. Its lines, bytes
    and header are bounded now, before it is decoded, and the refusal audited."""
    from flytekitplugins.aios_connectors.system_of_record import (
        MAX_SERVED_ROWS,
        SystemOfRecordConfig,
        SystemOfRecordTask,
    )

    name = "grpc_csv_" + secrets.token_hex(4)
    task = SystemOfRecordTask(name=name, config=SystemOfRecordConfig(table="document_actions"))
    frame = tmp_path / "frame"
    frame.mkdir()
    (frame / ".csv").write_text("action_key,amount\n" + ",\n" * (MAX_SERVED_ROWS + 10))
    inputs = literal_map({"actions": pd.DataFrame({"action_key": ["k"]})}, {"actions": pd.DataFrame})
    dataset = inputs.literals["actions"].scalar.structured_dataset
    dataset.metadata.structured_dataset_type.format = "csv"
    dataset.uri = str(frame)
    res = _sync(channel, task, inputs, execution_metadata(execution="csv-run-1"))
    assert res.phase == TaskExecution.FAILED, res.message
    assert f"its CSV files hold more than {MAX_SERVED_ROWS} rows (lines)" in res.message, res.message
    assert [r.event.status for r in _records("connector_refused", name)] == ["input_refused"]

    (frame / ".csv").write_text(",".join(f"c{i}" for i in range(65)) + "\n" + "," * 64 + "\n")
    res = _sync(channel, task, inputs, execution_metadata(execution="csv-run-2"))
    assert res.phase == TaskExecution.FAILED and "it has 65 columns" in res.message, res.message


def _varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    return bytes([*out, n])


def test_a_page_header_is_read_as_thrift_reads_it() -> None:
    """Re-review R36: the page reader read a 32-bit size as a 64-bit number and kept a size of the wrong type, where
    Thrift's reader (Arrow's) truncates the one and skips the other: a page's compressed size written with bit 33 set
    jumped the walk past the next page, which the decoder read (a 31 KB file took the service to 3.14 GB). Nesting of
    lists counted nothing, and 5,000 nested lists escaped as a RecursionError, unaudited."""
    from flytekitplugins.aios_connectors._literals import UnsafeInput, _Compact

    def i32_field(delta: int, value: int) -> bytes:
        return bytes([delta << 4 | 5]) + _varint(value)

    real = 40
    zigzag = real << 1
    header = i32_field(1, 0) + i32_field(1, 1_000 << 1) + i32_field(1, zigzag | 1 << 33) + b"\x00"
    assert _Compact(header).struct(top=True) == {1: 0, 2: 1_000, 3: real}  # truncated to 32 bits, as Thrift does

    as_i64 = i32_field(1, 0) + i32_field(1, 2_000) + bytes([1 << 4 | 6]) + _varint(zigzag) + b"\x00"
    assert 3 not in _Compact(as_i64).struct(top=True)  # a size of another type is skipped: no size, refused

    nested = bytes([1 << 4 | 9]) + bytes([1 << 4 | 9]) * 5_000 + bytes([0]) + b"\x00"
    with pytest.raises(UnsafeInput, match="nested too deep"):
        _Compact(nested).struct(top=True)

    # re-review R37: a long-form field id (0x10004 is field 2 cut to 16 bits before it is unzigzagged, field -32766
    # to Thrift) and ids that wrap past 32767 were read as another field than Thrift reads: the header's own fields
    # must have the plain layout (short-form ids 1 to 8, increasing)
    long_form = i32_field(1, 0) + bytes([5]) + _varint(0x10004 << 1) + _varint(22) + i32_field(1, 80) + b"\x00"
    with pytest.raises(UnsafeInput, match="not laid out as a writer lays them out"):
        _Compact(long_form).struct(top=True)
    # and booleans inside a map are a byte each, as Thrift reads them (the reader read none, then those bytes as
    # fields): field 5, a struct holding a map of three booleans to booleans, read to its end and no further
    header = i32_field(1, 0) + i32_field(1, 2_000) + i32_field(1, 80) + bytes([2 << 4 | 12, 1 << 4 | 11])
    header += _varint(3) + bytes([0x11]) + bytes([1, 2]) * 3 + b"\x00" + b"\x00"
    reader = _Compact(header + b"page data")
    assert reader.struct(top=True) == {1: 0, 2: 1_000, 3: 40} and reader.at == len(header)


def test_column_chunks_that_overlap_are_refused_before_their_pages_are_read(tmp_path: Path) -> None:
    """Re-review R36: 4,096 column chunks pointing at the same 64 KiB page header made the walk read it 4,096 times in
    Python (141 s of the service's CPU for a 419 KB file). Chunks must lie apart, inside the file, and their pages end
    where they do; the header bytes read are bounded."""
    import dataclasses

    from flytekitplugins.aios_connectors._literals import UnsafeInput, _Pages

    path = tmp_path / "two.parquet"
    pq.write_table(pa.table({"a": ["x"] * 10, "b": ["y"] * 10}), path)
    meta = pq.ParquetFile(path).metadata
    group = meta.row_group(0)
    _Pages().walk(path, [group])  # as written: passes

    @dataclasses.dataclass
    class Chunk:
        data_page_offset: int
        total_compressed_size: int
        has_dictionary_page: bool = False
        dictionary_page_offset: int | None = None

    first = group.column(0)
    start = first.dictionary_page_offset if first.has_dictionary_page else first.data_page_offset

    class Same:  # both chunks at the first one's bytes, as the review's file had them
        num_columns = 2

        def column(self, i: int) -> Chunk:
            return Chunk(start, first.total_compressed_size)

    with pytest.raises(UnsafeInput, match="two of its column chunks overlap"):
        _Pages().walk(path, [Same()])

    class Short:  # a chunk whose pages run past its end
        num_columns = 1

        def column(self, i: int) -> Chunk:
            return Chunk(start, 3)

    with pytest.raises(UnsafeInput, match="do not end where the chunk does"):
        _Pages().walk(path, [Short()])


def test_a_csv_frame_of_lines_ending_at_carriage_returns_is_counted(tmp_path: Path) -> None:
    """Re-review R36: only ``\\n`` was counted, and the decoder ends a line at ``\\r`` too: 8 MB of ``,\\r`` rows
    took the service to 4.2 GB. ``\\r``, ``\\n`` and ``\\r\\n`` each end one line now (a ``\\r\\n`` split
    between two reads too), and a header ending at ``\\r`` is read as one line (it raised ``csv.Error``)."""
    from flytekitplugins.aios_connectors._literals import FrameBounds, UnsafeInput, check_lines

    bounds = FrameBounds(rows=1_000, columns=64, cell=1024)
    path = tmp_path / "cr.csv"
    path.write_bytes(b"a,b\r" + b",\r" * 1_001)
    with pytest.raises(UnsafeInput, match="more than 1000 rows"):
        check_lines(path, bounds)
    path.write_bytes(b"a,b\r\n" + b"1,2\r\n" * 1_000)  # 1,000 rows of CRLF lines: within the bound
    check_lines(path, bounds)
    split = b"a,b\n" + b"x" * ((1 << 20) - 5) + b"\r\n" + b"1,2\r\n" * 998  # a CRLF across the 1 MiB read
    path.write_bytes(split)
    check_lines(path, bounds)
    path.write_bytes(b"a,b\r1,2\r")
    check_lines(path, bounds)
    # re-review R37: a quoted line break in the header hid the columns after it (2 counted, 5,001 decoded)
    path.write_bytes(b'x,"\n",' + b",".join(b"c%d" % i for i in range(5_000)) + b"\n1\n")
    with pytest.raises(UnsafeInput, match="header line holds a quote"):
        check_lines(path, bounds)
