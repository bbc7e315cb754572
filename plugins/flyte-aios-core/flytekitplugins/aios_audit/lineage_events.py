"""Governed task attempts as OpenLineage RunEvents, the way Marquez and DataHub draw them.

* one run per task attempt: a ``START`` when the body begins and a ``COMPLETE`` or ``FAIL`` when its audit
  record is durable, both with the attempt's own runId (UUIDv7, as openlineage-python makes them);
* ``job``: namespace ``flyte://<project>/<domain>`` (``OPENLINEAGE_NAMESPACE`` overrides it, as in the Airflow
  and Dagster integrations), name = the Flyte task name; jobType, documentation facets;
* ``parent`` (with ``root``): the Flyte workflow execution, runId = UUIDv5 of ``project/domain/name`` so every
  pod of one execution names the same parent, job = the Flyte workflow;
* datasets: values with a location, named by the OpenLineage naming spec (``lineage_datasets.py``);
* custom facets ``aios_audit``, ``aios_policy_decisions``, ``aios_approvals``, ``aios_models`` whose
  ``_schemaURL`` names a JSON Schema shipped in ``aios_audit/schemas/``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import hashlib
import os
import uuid
from pathlib import Path
from typing import Any, ClassVar

import attr
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import (
    RunFacet,
    documentation_job,
    error_message_run,
    job_type_job,
    parent_run,
    processing_engine_run,
)
from openlineage.client.uuid import generate_new_uuid

from flytekitplugins.aios_audit.lineage_datasets import (
    PRODUCER,
    DatasetRef,
    JsonLinesTransport,
    dataset_facets,
    datasets,
)
from flytekitplugins.aios_audit.records import AuditRecord
from flytekitplugins.aios_core.context import ExecutionRef

SCHEMA_BASE = "https://raw.githubusercontent.com/flyte-aios/flyte-aios/main/plugins/flyte-aios-core/flytekitplugins/aios_audit/schemas/"
SCHEMA_DIR = Path(__file__).with_name("schemas")
_NS = uuid.UUID("6f1c2b7e-8d0a-4f53-9d1e-5a8c3e2f9b10")


def _schema_url(facet: str) -> str:
    return f"{SCHEMA_BASE}{facet}.json#/$defs/{facet}"


@attr.define
class AiosAuditRunFacet(RunFacet):
    """Where the attempt's record lives in the tamper-evident audit log."""

    recordId: str
    seq: int
    chainHash: str
    kind: str
    status: str
    actor: str
    codeVersion: str
    retryAttempt: int = 0

    @staticmethod
    def _get_schema() -> str:
        return _schema_url("AiosAuditRunFacet")


@attr.define
class AiosPolicyDecisionsRunFacet(RunFacet):
    """Policy decisions attached to this step."""

    decisions: list[dict[str, Any]] = attr.field(factory=list)

    @staticmethod
    def _get_schema() -> str:
        return _schema_url("AiosPolicyDecisionsRunFacet")


@attr.define
class AiosApprovalsRunFacet(RunFacet):
    """Approvals attached to this step."""

    approvals: list[dict[str, Any]] = attr.field(factory=list)

    @staticmethod
    def _get_schema() -> str:
        return _schema_url("AiosApprovalsRunFacet")


@attr.define
class AiosModelsRunFacet(RunFacet):
    """Models (name, version, artifact digest) used by this step."""

    models: list[dict[str, str]] = attr.field(factory=list)
    _additional_skip_redact: ClassVar[list[str]] = ["models"]

    @staticmethod
    def _get_schema() -> str:
        return _schema_url("AiosModelsRunFacet")


@dataclasses.dataclass
class TaskAttempt:
    """One attempt of a governed task: what its START and COMPLETE/FAIL events say (plain values only).

    Built on the task thread from what the task knows, sent to the emitter process as :meth:`to_message`
    (a JSON array) and rebuilt there with :meth:`from_message`; the events are made and serialized there.
    """

    execution_key: str
    namespace: str
    task_name: str
    workflow: str
    started_at: str  # ISO 8601
    doc: str = ""
    run_id: str = dataclasses.field(default_factory=lambda: str(generate_new_uuid()))
    inputs: list[DatasetRef] = dataclasses.field(default_factory=list)
    outputs: list[DatasetRef] = dataclasses.field(default_factory=list)

    @classmethod
    def of(cls, ex: ExecutionRef, workflow: str, started_at: dt.datetime, doc: str = "", **kw: Any) -> TaskAttempt:
        """The attempt of the task named by ``ex`` (job namespace from the Flyte project and domain)."""
        return cls(ex.execution_key, job_namespace(ex), ex.task_name, workflow, started_at.isoformat(), doc, **kw)

    def to_message(self) -> list[Any]:
        """The attempt as a JSON array (datasets as arrays)."""
        return [
            self.execution_key,
            self.namespace,
            self.task_name,
            self.workflow,
            self.started_at,
            self.doc,
            self.run_id,
            [[d.namespace, d.name, d.fields, d.digest] for d in self.inputs],
            [[d.namespace, d.name, d.fields, d.digest] for d in self.outputs],
        ]

    @classmethod
    def from_message(cls, m: list[Any]) -> TaskAttempt:
        """Inverse of :meth:`to_message`."""
        ins, outs = ([_dataset(d) for d in ds] for ds in (m[7], m[8]))
        return cls(m[0], m[1], m[2], m[3], m[4], m[5], m[6], ins, outs)


def _dataset(d: list[Any]) -> DatasetRef:
    return DatasetRef(d[0], d[1], tuple((str(n), str(t)) for n, t in d[2]), d[3])


def job_namespace(ex: ExecutionRef) -> str:
    """``OPENLINEAGE_NAMESPACE`` when set, else ``flyte://<project>/<domain>``."""
    return os.environ.get("OPENLINEAGE_NAMESPACE") or f"flyte://{ex.project}/{ex.domain}"


@functools.lru_cache(maxsize=1024)
def parent_run_id(execution_key: str) -> str:
    """runId of the Flyte workflow execution (UUIDv5: the same in every pod of the execution)."""
    return str(uuid.uuid5(_NS, execution_key))


def _parent(attempt: TaskAttempt) -> parent_run.ParentRunFacet:
    return _parent_facet(attempt.execution_key, attempt.namespace, attempt.workflow)


@functools.lru_cache(maxsize=256)
def _parent_facet(execution_key: str, ns: str, workflow: str) -> parent_run.ParentRunFacet:
    """The parent (and root) facet: the same for every task of an execution, built once (never mutated)."""
    rid = parent_run_id(execution_key)
    return parent_run.ParentRunFacet(
        run=parent_run.Run(runId=rid),
        job=parent_run.Job(namespace=ns, name=workflow),
        root=parent_run.Root(run=parent_run.RootRun(runId=rid), job=parent_run.RootJob(namespace=ns, name=workflow)),
        producer=PRODUCER,
    )


@functools.cache
def _engine() -> processing_engine_run.ProcessingEngineRunFacet:
    from flytekitplugins.aios_core.context import code_version

    try:
        from importlib.metadata import version

        flytekit_version = version("flytekit")
    except Exception:
        flytekit_version = "unknown"
    return processing_engine_run.ProcessingEngineRunFacet(
        version=flytekit_version, name="flytekit", openlineageAdapterVersion=code_version(), producer=PRODUCER
    )


def _job(attempt: TaskAttempt) -> Job:
    return Job(namespace=attempt.namespace, name=attempt.task_name, facets=dict(_job_facets(attempt.doc)))


@functools.lru_cache(maxsize=1024)
def _job_facets(doc: str) -> tuple[tuple[str, Any], ...]:
    """jobType and documentation facets of a task (built once per docstring, never mutated)."""
    facets: list[tuple[str, Any]] = [
        (
            "jobType",
            job_type_job.JobTypeJobFacet(
                processingType="BATCH", integration="FLYTE", jobType="TASK", producer=PRODUCER
            ),
        )
    ]
    if doc:
        facets.append(("documentation", documentation_job.DocumentationJobFacet(description=doc, producer=PRODUCER)))
    return tuple(facets)


def start_event(attempt: TaskAttempt) -> RunEvent:
    """The ``START`` event of a task attempt."""
    facets: dict[str, RunFacet] = {"parent": _parent(attempt), "processing_engine": _engine()}
    return RunEvent(
        eventType=RunState.START,
        eventTime=attempt.started_at,
        run=Run(runId=attempt.run_id, facets=facets),
        job=_job(attempt),
        inputs=[InputDataset(namespace=d.namespace, name=d.name, facets=dataset_facets(d)) for d in attempt.inputs],
        producer=PRODUCER,
    )


def record_facts(record: AuditRecord) -> list[Any]:
    """What the COMPLETE / FAIL event says of the attempt's audit record, as a JSON array (cheap: task thread)."""
    ev, ex = record.event, record.event.execution
    return [
        record.record_id,
        record.seq,
        record.chain_hash,
        ev.kind,
        ev.status,
        ev.actor,
        ev.code_version,
        ex.retry_attempt if ex else 0,
        ev.policy_decisions,
        ev.approvals,
        [[m.name, m.version, m.digest] for m in ev.models],
        ev.ended_at.isoformat() if ev.ended_at else None,
    ]


def _audit_facets(facts: list[Any]) -> dict[str, RunFacet]:
    record_id, seq, chain_hash, kind, status, actor, code_version, retry, decisions, approvals, models = facts[:11]
    facets: dict[str, RunFacet] = {
        "aios_audit": AiosAuditRunFacet(
            recordId=record_id,
            seq=seq,
            chainHash=chain_hash,
            kind=kind,
            status=status,
            actor=actor,
            codeVersion=code_version,
            retryAttempt=retry,
            producer=PRODUCER,
        )
    }
    if decisions:
        facets["aios_policy_decisions"] = AiosPolicyDecisionsRunFacet(decisions=_clean(decisions), producer=PRODUCER)
    if approvals:
        facets["aios_approvals"] = AiosApprovalsRunFacet(approvals=_clean(approvals), producer=PRODUCER)
    if models:
        facets["aios_models"] = AiosModelsRunFacet(
            models=[{"digest": d, "name": n, "version": v} for n, v, d in models], producer=PRODUCER
        )
    return facets


def _clean(obj: Any) -> Any:
    """JSON values without nulls and empty objects (what ``Serde`` would drop, done once up front)."""
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items() if v is not None}
    if isinstance(obj, list):
        return [c for c in (_clean(v) for v in obj if v is not None) if c != {}]
    return obj


def error_digest(message: str) -> str:
    """Digest of an error message (the message itself may quote input data: it never leaves the task)."""
    return "sha256:" + hashlib.sha256(message.encode("utf-8", "replace")).hexdigest()


def error_facet(error_type: str, digest: str) -> error_message_run.ErrorMessageRunFacet:
    """The errorMessage facet: the error type and the digest of its message (:func:`error_digest`)."""
    text = f"{error_type} (message withheld: it may quote input data; {digest})"
    return error_message_run.ErrorMessageRunFacet(message=text, programmingLanguage="python", producer=PRODUCER)


def end_event(attempt: TaskAttempt, facts: list[Any] | None, error: list[str] | None, ended_at: str) -> RunEvent:
    """The ``COMPLETE`` or ``FAIL`` event of a task attempt.

    Args:
        attempt: The attempt (its START named the same run).
        facts: :func:`record_facts` of its audit record, ``None`` when it has none.
        error: ``[type, digest of the message]`` when the attempt failed.
        ended_at: When it ended (ISO 8601); the record's own end time wins.
    """
    facets: dict[str, RunFacet] = {"parent": _parent(attempt), "processing_engine": _engine()}
    if facts is not None:
        facets.update(_audit_facets(facts))
        ended_at = facts[11] or ended_at
    if error is not None:
        facets["errorMessage"] = error_facet(error[0], error[1])
    return RunEvent(
        eventType=RunState.FAIL if error is not None else RunState.COMPLETE,
        eventTime=ended_at,
        run=Run(runId=attempt.run_id, facets=facets),
        job=_job(attempt),
        inputs=[InputDataset(namespace=d.namespace, name=d.name, facets=dataset_facets(d)) for d in attempt.inputs],
        outputs=[OutputDataset(namespace=d.namespace, name=d.name, facets=dataset_facets(d)) for d in attempt.outputs],
        producer=PRODUCER,
    )


def workflow_event(execution_key: str, namespace: str, workflow: str, state: str, when: str) -> RunEvent:
    """A START / COMPLETE / FAIL event of the workflow execution itself (local runs see the whole execution)."""
    job_facets: dict[str, Any] = {
        "jobType": job_type_job.JobTypeJobFacet(
            processingType="BATCH", integration="FLYTE", jobType="WORKFLOW", producer=PRODUCER
        )
    }
    return RunEvent(
        eventType=RunState(state),
        eventTime=when,
        run=Run(runId=parent_run_id(execution_key), facets={"processing_engine": _engine()}),
        job=Job(namespace=namespace, name=workflow, facets=job_facets),
        producer=PRODUCER,
    )


# Messages from the task thread to the emitter (emit_process.py), JSON arrays of plain values:
#   ["s", attempt]                                 START of a task attempt
#   ["e", attempt, facts | null, error | null, t]  its COMPLETE / FAIL
#   ["w", execution_key, namespace, workflow, state, t]  the local execution's own run
def start_message(attempt: TaskAttempt) -> list[Any]:
    """The message of an attempt's START."""
    return ["s", attempt.to_message()]


def end_message(attempt: TaskAttempt, facts: list[Any] | None, error: list[str] | None, ended_at: str) -> list[Any]:
    """The message of an attempt's COMPLETE / FAIL (arguments as :func:`end_event`)."""
    return ["e", attempt.to_message(), facts, error, ended_at]


def workflow_message(ex: ExecutionRef, workflow: str, state: str, when: dt.datetime) -> list[Any]:
    """The message of a START / COMPLETE / FAIL of the execution itself."""
    return ["w", ex.execution_key, job_namespace(ex), workflow, state, when.isoformat()]


def event_from_message(m: list[Any]) -> RunEvent:
    """The RunEvent a message describes (built where it is sent: the emitter process, or the emitter thread)."""
    kind = m[0]
    if kind == "s":
        return start_event(TaskAttempt.from_message(m[1]))
    if kind == "e":
        return end_event(TaskAttempt.from_message(m[1]), m[2], m[3], m[4])
    if kind == "w":
        return workflow_event(m[1], m[2], m[3], m[4], m[5])
    msg = f"unknown lineage message kind {kind!r}"
    raise ValueError(msg)


__all__ = [
    "PRODUCER",
    "DatasetRef",
    "JsonLinesTransport",
    "RunState",
    "TaskAttempt",
    "datasets",
    "end_event",
    "end_message",
    "event_from_message",
    "record_facts",
    "start_event",
    "start_message",
    "workflow_event",
    "workflow_message",
]
