"""Audit records as OpenLineage RunEvents (job = Flyte task, run = its execution, datasets = digests).

* ``job``: namespace ``flyte://<project>/<domain>``, name = the Flyte task name (or the record kind).
* ``run``: a UUIDv5 derived from (execution, node, task, attempt), with a ``parent`` facet naming the Flyte
  workflow execution, so every task of one execution groups under one parent run.
* ``inputs``/``outputs``: one dataset per content digest (namespace ``aios-digest``, name ``sha256:...``).
* custom run facets: ``aios_audit`` (record id, seq, chain hash), ``aios_policy_decisions``, ``aios_approvals``,
  ``aios_models``.

Task records map to COMPLETE/FAIL; other kinds (policy decisions, approvals, ...) to OTHER on the same run.
"""

from __future__ import annotations

import uuid
from typing import Any, ClassVar

import attr
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import RunFacet, parent_run

from flytekitplugins.aios_audit.records import AuditRecord

PRODUCER = "https://github.com/flyte-aios/flyte-aios/tree/main/plugins/flytekitplugins/aios_audit"
FACET_SCHEMA = "https://github.com/flyte-aios/flyte-aios/blob/main/docs/audit.md#openlineage-facets"
DATASET_NAMESPACE = "aios-digest"
_NS = uuid.UUID("6f1c2b7e-8d0a-4f53-9d1e-5a8c3e2f9b10")


@attr.define
class AiosAuditRunFacet(RunFacet):
    """Where the record lives in the tamper-evident log."""

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
        return FACET_SCHEMA + "-aios_audit"


@attr.define
class AiosPolicyDecisionsRunFacet(RunFacet):
    """Policy decisions attached to this step."""

    decisions: list[dict[str, Any]] = attr.field(factory=list)

    @staticmethod
    def _get_schema() -> str:
        return FACET_SCHEMA + "-aios_policy_decisions"


@attr.define
class AiosApprovalsRunFacet(RunFacet):
    """Approvals attached to this step."""

    approvals: list[dict[str, Any]] = attr.field(factory=list)

    @staticmethod
    def _get_schema() -> str:
        return FACET_SCHEMA + "-aios_approvals"


@attr.define
class AiosModelsRunFacet(RunFacet):
    """Models (name, version, artifact digest) used by this step."""

    models: list[dict[str, str]] = attr.field(factory=list)
    _additional_skip_redact: ClassVar[list[str]] = ["models"]

    @staticmethod
    def _get_schema() -> str:
        return FACET_SCHEMA + "-aios_models"


def run_id(record: AuditRecord) -> str:
    """Deterministic OpenLineage run id of the task execution a record belongs to."""
    ex = record.event.execution
    if ex is None:
        return str(uuid.uuid5(_NS, f"record/{record.record_id}"))
    return str(uuid.uuid5(_NS, f"{ex.execution_key}/{ex.node_id}/{ex.task_name}/{ex.retry_attempt}"))


def _state(record: AuditRecord) -> RunState:
    if record.event.kind != "task":
        return RunState.OTHER
    return RunState.FAIL if record.event.status == "failed" else RunState.COMPLETE


def _facets(record: AuditRecord, namespace: str) -> dict[str, RunFacet]:
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
    if ex is not None:
        facets["parent"] = parent_run.ParentRunFacet(
            run=parent_run.Run(runId=str(uuid.uuid5(_NS, ex.execution_key))),
            job=parent_run.Job(namespace=namespace, name=ex.workflow or ex.launch_plan or "workflow"),
            producer=PRODUCER,
        )
    if ev.policy_decisions:
        facets["aios_policy_decisions"] = AiosPolicyDecisionsRunFacet(decisions=ev.policy_decisions, producer=PRODUCER)
    if ev.approvals:
        facets["aios_approvals"] = AiosApprovalsRunFacet(approvals=ev.approvals, producer=PRODUCER)
    if ev.models:
        facets["aios_models"] = AiosModelsRunFacet(models=[m.model_dump() for m in ev.models], producer=PRODUCER)
    return facets


def to_run_event(record: AuditRecord) -> RunEvent:
    """The OpenLineage RunEvent of one audit record."""
    ev, ex = record.event, record.event.execution
    namespace = f"flyte://{ex.project}/{ex.domain}" if ex else "aios"
    job_name = (ex.task_name if ex and ex.task_name else "") or f"aios.{ev.kind}"
    consumed = dict(ev.inputs)
    if ev.subject.startswith("sha256:") and ev.subject not in consumed.values():
        consumed["subject"] = ev.subject
    return RunEvent(
        eventType=_state(record),
        eventTime=(ev.ended_at or record.recorded_at).isoformat(),
        run=Run(runId=run_id(record), facets=_facets(record, namespace)),
        job=Job(namespace=namespace, name=job_name),
        inputs=[InputDataset(namespace=DATASET_NAMESPACE, name=d) for d in dict.fromkeys(consumed.values())],
        outputs=[OutputDataset(namespace=DATASET_NAMESPACE, name=d) for d in dict.fromkeys(ev.outputs.values())],
        producer=PRODUCER,
    )


def make_transport(url: str) -> Any:
    """An openlineage-python transport for ``file:PATH`` (JSON lines), ``http(s)://`` (Marquez) or ``none``."""
    if url in ("", "none"):
        return None
    if url.startswith("file:"):
        from pathlib import Path

        from openlineage.client.transport.file import FileConfig, FileTransport

        path = Path(url.removeprefix("file:"))
        path.parent.mkdir(parents=True, exist_ok=True)
        return FileTransport(FileConfig(log_file_path=str(path), append=True))
    if url.startswith(("http://", "https://")):
        from openlineage.client.transport.http import HttpConfig, HttpTransport

        return HttpTransport(HttpConfig(url=url, timeout=2.0))
    from flytekitplugins.aios_core.errors import ConfigError

    msg = f"lineage_url {url!r} is invalid: use file:PATH, http(s)://HOST (Marquez) or none (AIOS_LINEAGE_URL)"
    raise ConfigError(msg)
