"""Who calls a connector: established from what flytepropeller propagates, never from the task's inputs.

On a cluster, flytepropeller sends every connector call with the task execution's metadata: the task
execution id (project, domain, execution name, node id, retry), the Kubernetes namespace and service
account. :func:`establish` maps ``(namespace, service account)`` to a principal through
``config/connector_identities.yaml``; a call without that metadata, from an unmapped service account, or
whose input ``principal`` disagrees with the mapped one is refused (:class:`IdentityRefused`) and the
refusal is audited under the caller's propagated identity, never under the principal it claimed.

NOTE: the metadata is whatever the gRPC caller wrote into the request. The mapping is therefore only as
strong as the guarantee that flytepropeller is the only caller (network policy, mTLS or an authenticating
proxy; docs/connectors.md, "Reaching the connector on a cluster").

Locally, flytekit's local executor calls the connector in-process with no metadata. The identity is then
the process's configured principal (``AIOS_PRINCIPAL``, ``principal:`` in the profile): trust on
configuration, the person who runs the process configures it. With no principal configured, the task's
input principal is taken as given and the audit record says so (``identity: local-claimed``).
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from flytekitplugins.aios_connectors.constants import CONNECTOR_IDENTITIES_FILE
from flytekitplugins.aios_core.errors import AiosError, ConfigError
from flytekitplugins.aios_core.visible import bounded

if TYPE_CHECKING:
    from flytekit.models.task import TaskExecutionMetadata

    from flytekitplugins.aios_core.context import ExecutionRef
    from flytekitplugins.aios_core.settings import Settings

log = logging.getLogger(__name__)

UNAUTHENTICATED = "unauthenticated"


class IdentityRefused(AiosError):
    """The caller's identity is missing, unknown or disagrees with the principal it claims."""

    def __init__(self, message: str, *, code: str, actor: str) -> None:
        super().__init__(message)
        self.code = code
        self.actor = actor


@dataclass(frozen=True)
class Caller:
    """The established identity of one connector call.

    Attributes:
        principal: who the call acts as (``service:<name>``/``user:<name>``).
        source: ``propagated`` (mapped from flytepropeller's metadata), ``local`` (configured principal)
            or ``local-claimed`` (local run, no principal configured: the input was taken as given).
        execution: the Flyte task execution served (propagated calls only).
        service_account: ``<namespace>/<service account>`` the principal was mapped from.
    """

    principal: str
    source: str
    execution: ExecutionRef | None = None
    service_account: str = ""

    def audit_attributes(self) -> dict[str, str]:
        """What audit records keep about how the identity was established."""
        out = {"identity": self.source}
        if self.service_account:
            out["service_account"] = self.service_account
        return out


@functools.cache
def _read(path: Path, mtime_ns: int) -> dict[tuple[str, str], str]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as e:
        msg = f"cannot read connector identities from {path}: {e}. Fix the file (docs/connectors.md)"
        raise ConfigError(msg) from e
    entries = data.get("identities", []) if isinstance(data, dict) else None
    out: dict[tuple[str, str], str] = {}
    for i, entry in enumerate(entries if isinstance(entries, list) else [None]):
        if not isinstance(entry, dict) or not all(
            isinstance(entry.get(k), str) and entry.get(k) for k in ("namespace", "service_account", "principal")
        ):
            msg = f"{path}: identities[{i}] needs string namespace, service_account and principal, got {entry!r}"
            raise ConfigError(msg)
        out[(entry["namespace"], entry["service_account"])] = entry["principal"]
    return out


def identities(settings: Settings) -> dict[tuple[str, str], str]:
    """``(namespace, service account) -> principal`` from ``<config_dir>/connector_identities.yaml`` (re-read on edit).

    A missing file maps nothing: every served call is refused (fail closed).
    """
    path = Path(settings.config_dir) / CONNECTOR_IDENTITIES_FILE
    if not path.is_file():
        return {}
    return _read(path, path.stat().st_mtime_ns)


def execution_of(meta: TaskExecutionMetadata) -> ExecutionRef | None:
    """The Flyte task execution named by propagated metadata (None when it names none)."""
    from flytekitplugins.aios_core.context import ExecutionRef

    tid = meta.task_execution_id
    node = tid.node_execution_id if tid else None
    wf = node.execution_id if node else None
    if node is None or wf is None or not wf.name:
        return None
    task = tid.task_id
    return ExecutionRef(
        project=wf.project,
        domain=wf.domain,
        name=wf.name,
        node_id=node.node_id,
        retry_attempt=int(tid.retry_attempt or 0),
        task_name=task.name if task else "",
        task_version=task.version if task else "",
    )


def _local(claimed: str, settings: Settings) -> Caller:
    configured = settings.principal
    if configured and claimed and claimed != configured:
        msg = f"input principal {claimed} is not this process's configured principal {configured} (AIOS_PRINCIPAL)"
        raise IdentityRefused(msg, code="identity_mismatch", actor=configured)
    if configured or not claimed:
        return Caller(principal=configured or settings.actor, source="local")
    return Caller(principal=claimed, source="local-claimed")


def establish(meta: TaskExecutionMetadata | None, settings: Settings, claimed: str = "") -> Caller:
    """The caller's identity: from propagated metadata when served, from configuration when local.

    Args:
        meta: ``task_execution_metadata`` as flytekit passes it (None: in-process local execution).
        claimed: the principal the task's inputs name (empty when the task has none).
        settings: the connector call's settings (identities file, configured principal).

    Raises:
        IdentityRefused: ``no_identity`` (served call without namespace/service account),
            ``unknown_identity`` (not in connector_identities.yaml) or ``identity_mismatch``.
    """
    if meta is None:
        return _local(claimed, settings)
    ns, sa = bounded(meta.namespace or "", 128), bounded(meta.k8s_service_account or "", 128)
    if not ns or not sa:
        msg = (
            "connector call refused: no propagated identity (namespace and service account of the task "
            "execution); only flytepropeller may call this service"
        )
        raise IdentityRefused(msg, code="no_identity", actor=UNAUTHENTICATED)
    mapped = identities(settings).get((ns, sa))
    if mapped is None:
        msg = (
            f"connector call refused: service account {ns}/{sa} is not mapped to a principal; "
            f"add it to {Path(settings.config_dir) / CONNECTOR_IDENTITIES_FILE}"
        )
        raise IdentityRefused(msg, code="unknown_identity", actor=f"k8s:{ns}/{sa}")
    if claimed and claimed != mapped:
        msg = f"connector call refused: input principal {claimed} is not the caller's identity {mapped} ({ns}/{sa})"
        raise IdentityRefused(msg, code="identity_mismatch", actor=mapped)
    return Caller(principal=mapped, source="propagated", execution=execution_of(meta), service_account=f"{ns}/{sa}")


def input_refused(err: BaseException, actor: str) -> IdentityRefused:
    """The refusal of an established caller's input (``err``: a table, URL or literal it may not hand in, an unknown
    request id), to audit under that caller (``actor``) as ``input_refused`` (:func:`refuse`)."""
    from flytekitplugins.aios_core.redact import one_line_error

    return IdentityRefused(f"input refused: {one_line_error(err)}", code="input_refused", actor=actor)


def audit_refusal(
    err: IdentityRefused,
    *,
    connector: str,
    task_name: str,
    claimed: str,
    meta: TaskExecutionMetadata | None,
    settings: Settings,
) -> str:
    """Append a ``connector_refused`` record under the caller's own identity; returns its record id.

    The claimed principal and the execution the request named are kept as attributes only: neither was
    established, so neither is the record's actor or execution.
    """
    from flytekitplugins.aios_audit import AuditEvent, audit_log
    from flytekitplugins.aios_core.context import code_version

    task_name = bounded(task_name)
    attrs: dict[str, Any] = {"connector": connector, "task": task_name, "reason": bounded(str(err), 1024)}
    if claimed:
        attrs["claimed_principal"] = bounded(claimed)
    claimed_execution = execution_of(meta) if meta is not None else None
    if claimed_execution is not None:  # every field the caller wrote, bounded (each was kept whole: 3.6 MB records)
        attrs["claimed_execution"] = {
            k: bounded(v) if isinstance(v, str) else v for k, v in claimed_execution.model_dump(mode="json").items()
        }
    event = AuditEvent(
        kind="connector_refused",
        actor=bounded(err.actor, 300),
        status=err.code,
        subject=task_name,
        code_version=code_version(settings.code_version),
        attributes=attrs,
    )
    return audit_log(settings).append(event).record_id


def refuse(
    err: IdentityRefused,
    *,
    connector: str,
    task_name: str,
    claimed: str,
    meta: TaskExecutionMetadata | None,
    settings: Settings,
) -> str:
    """Audit a refusal (:func:`audit_refusal`) and return the one-line message the failed task carries.

    The message and the log line quote what the caller sent (a claimed principal, a namespace): its control
    characters are shown as escapes (:func:`.visible.visible`), so a caller cannot write to the terminal of whoever
    reads the connector's log or the execution's error. The audit record keeps the values as they came.
    """
    from flytekitplugins.aios_core.redact import one_line_error
    from flytekitplugins.aios_core.visible import visible

    why, task = visible(bounded(str(err), 1024)), visible(bounded(task_name))
    log.warning("%s refused task %s: %s", connector, task, why)
    try:
        record = audit_refusal(
            err, connector=connector, task_name=task_name, claimed=claimed, meta=meta, settings=settings
        )
    except Exception as e:  # the call stays refused; say that the trail misses it
        log.error("the refusal of task %s could not be audited: %s", task, one_line_error(e))
        return f"{why} (the refusal could not be written to the audit trail: {one_line_error(e)})"
    return f"{why} (audit record {record})"
