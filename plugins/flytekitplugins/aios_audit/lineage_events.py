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

SCHEMA_BASE = "https://raw.githubusercontent.com/flyte-aios/flyte-aios/main/plugins/flytekitplugins/aios_audit/schemas/"
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
    """One attempt of a governed task: what its START and COMPLETE/FAIL events say."""

    execution: ExecutionRef
    workflow: str
    started_at: dt.datetime
    doc: str = ""
    run_id: str = dataclasses.field(default_factory=lambda: str(generate_new_uuid()))
    inputs: list[DatasetRef] = dataclasses.field(default_factory=list)
    outputs: list[DatasetRef] = dataclasses.field(default_factory=list)


def job_namespace(ex: ExecutionRef) -> str:
    """``OPENLINEAGE_NAMESPACE`` when set, else ``flyte://<project>/<domain>``."""
    return os.environ.get("OPENLINEAGE_NAMESPACE") or f"flyte://{ex.project}/{ex.domain}"


@functools.lru_cache(maxsize=1024)
def parent_run_id(execution_key: str) -> str:
    """runId of the Flyte workflow execution (UUIDv5: the same in every pod of the execution)."""
    return str(uuid.uuid5(_NS, execution_key))


def _parent(attempt: TaskAttempt) -> parent_run.ParentRunFacet:
    ex = attempt.execution
    return _parent_facet(ex.execution_key, job_namespace(ex), attempt.workflow)


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
    return Job(
        namespace=job_namespace(attempt.execution),
        name=attempt.execution.task_name,
        facets=dict(_job_facets(attempt.doc)),
    )


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
        eventTime=attempt.started_at.isoformat(),
        run=Run(runId=attempt.run_id, facets=facets),
        job=_job(attempt),
        inputs=[InputDataset(namespace=d.namespace, name=d.name, facets=dataset_facets(d)) for d in attempt.inputs],
        producer=PRODUCER,
    )


def _audit_facets(record: AuditRecord) -> dict[str, RunFacet]:
    ev, ex = record.event, record.event.execution
    facets: dict[str, RunFacet] = {
        "aios_audit": AiosAuditRunFacet(
            recordId=record.record_id,
            seq=record.seq,
            chainHash=record.chain_hash,
            kind=ev.kind,
            status=ev.status,
            actor=ev.actor,
            codeVersion=ev.code_version,
            retryAttempt=ex.retry_attempt if ex else 0,
            producer=PRODUCER,
        )
    }
    if ev.policy_decisions:
        facets["aios_policy_decisions"] = AiosPolicyDecisionsRunFacet(
            decisions=_clean(ev.policy_decisions), producer=PRODUCER
        )
    if ev.approvals:
        facets["aios_approvals"] = AiosApprovalsRunFacet(approvals=_clean(ev.approvals), producer=PRODUCER)
    if ev.models:
        facets["aios_models"] = AiosModelsRunFacet(models=[m.model_dump() for m in ev.models], producer=PRODUCER)
    return facets


def _clean(obj: Any) -> Any:
    """JSON values without nulls and empty objects (what ``Serde`` would drop, done once up front)."""
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items() if v is not None}
    if isinstance(obj, list):
        return [c for c in (_clean(v) for v in obj if v is not None) if c != {}]
    return obj


def error_facet(error_type: str, message: str) -> error_message_run.ErrorMessageRunFacet:
    """The errorMessage facet: the error type and the digest of its message (it may quote input data)."""
    digest = "sha256:" + hashlib.sha256(message.encode("utf-8", "replace")).hexdigest()
    text = f"{error_type} (message withheld: it may quote input data; {digest})"
    return error_message_run.ErrorMessageRunFacet(message=text, programmingLanguage="python", producer=PRODUCER)


def end_event(attempt: TaskAttempt, record: AuditRecord | None, error: tuple[str, str] | None) -> RunEvent:
    """The ``COMPLETE`` or ``FAIL`` event of a task attempt (``error`` = (type, message) when it failed)."""
    facets: dict[str, RunFacet] = {"parent": _parent(attempt), "processing_engine": _engine()}
    if record is not None:
        facets.update(_audit_facets(record))
    if error is not None:
        facets["errorMessage"] = error_facet(*error)
    ended = record.event.ended_at if record is not None and record.event.ended_at else dt.datetime.now(dt.UTC)
    return RunEvent(
        eventType=RunState.FAIL if error is not None else RunState.COMPLETE,
        eventTime=ended.isoformat(),
        run=Run(runId=attempt.run_id, facets=facets),
        job=_job(attempt),
        inputs=[InputDataset(namespace=d.namespace, name=d.name, facets=dataset_facets(d)) for d in attempt.inputs],
        outputs=[OutputDataset(namespace=d.namespace, name=d.name, facets=dataset_facets(d)) for d in attempt.outputs],
        producer=PRODUCER,
    )


def workflow_event(ex: ExecutionRef, workflow: str, state: RunState, when: dt.datetime) -> RunEvent:
    """A START / COMPLETE / FAIL event of the workflow execution itself (local runs see the whole execution)."""
    job_facets: dict[str, Any] = {
        "jobType": job_type_job.JobTypeJobFacet(
            processingType="BATCH", integration="FLYTE", jobType="WORKFLOW", producer=PRODUCER
        )
    }
    return RunEvent(
        eventType=state,
        eventTime=when.isoformat(),
        run=Run(runId=parent_run_id(ex.execution_key), facets={"processing_engine": _engine()}),
        job=Job(namespace=job_namespace(ex), name=workflow, facets=job_facets),
        producer=PRODUCER,
    )


__all__ = [
    "PRODUCER",
    "DatasetRef",
    "JsonLinesTransport",
    "RunState",
    "TaskAttempt",
    "datasets",
    "end_event",
    "start_event",
    "workflow_event",
]
