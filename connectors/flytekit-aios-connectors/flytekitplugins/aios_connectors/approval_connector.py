"""The approval notification connector: tells people a request waits, then follows the approval plugin.

Asynchronous, so no pod sits waiting for a person:

* ``create`` reads the request from the audit trail (``flytekitplugins.aios_approvals``), posts a signed
  ``approval.requested`` notification to the webhook (retried with backoff and jitter, bounded), and
  returns the request id, the deadline and the ticket link as resource metadata;
* ``get`` reads the verified outcome (signatures, roles and quorum re-checked by the approval plugin):
  ``approved`` succeeds; ``rejected``, ``refused``, ``timed_out`` or no decision by the deadline fails;
* ``delete`` (execution aborted) posts ``approval.cancelled`` so the ticket can be closed.

The webhook never decides anything: approvals are made with ``aios approvals approve|reject``, which
check identity, roles and separation of duties and sign the decision.

A served ``create`` notifies only for the caller's own requests: the caller's identity comes from the
propagated task execution metadata (:mod:`flytekitplugins.aios_connectors.identity`) and must be the
request's requester or launcher; otherwise the call is refused, audited, and ``get`` reports FAILED.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from flyteidl.core.execution_pb2 import TaskExecution, TaskLog
from flytekit.extend.backend.base_connector import AsyncConnectorBase, ConnectorRegistry, Resource, ResourceMeta
from flytekit.models.literals import LiteralMap
from flytekit.models.task import TaskExecutionMetadata, TaskTemplate

from flytekitplugins.aios_connectors import _flytekit_compat
from flytekitplugins.aios_connectors._literals import to_literals, to_python
from flytekitplugins.aios_connectors.approval_task import APPROVAL_INPUTS, APPROVAL_OUTPUTS, ApprovalNotificationConfig
from flytekitplugins.aios_connectors.constants import APPROVAL_NOTIFICATION_TASK_TYPE
from flytekitplugins.aios_connectors.identity import Caller, IdentityRefused, establish, input_refused, refuse
from flytekitplugins.aios_connectors.webhook import RetryPolicy, load_target, post_json
from flytekitplugins.aios_core.settings import Settings, get_settings
from flytekitplugins.aios_core.visible import bounded, visible

log = logging.getLogger(__name__)


@dataclass
class ApprovalNotificationMetadata(ResourceMeta):
    """What ``get``/``delete`` need: no secret, no payload (it is stored by Flyte)."""

    request_id: str
    gate: str
    deadline: float
    ticket_url: str = ""
    external_id: str = ""
    attempts: int = 4
    refused: str = ""
    execution: str = ""
    """``project/domain/name`` of the execution that waits (it uses the approval once it is approved)."""
    mac: str = ""
    """HMAC-SHA256 of the fields above under a key derived from the pack's signing key (:func:`seal_meta`):
    ``GetTask`` and ``DeleteTask`` carry these bytes back from whoever calls, so ``get`` and ``delete`` act only on
    metadata this connector issued."""


_META_CONTEXT = b"aios-approval-notification-resource-meta-v1\n"


def meta_key(settings: Settings) -> bytes:
    """The key that seals resource metadata: derived from the pack's Ed25519 signing key (``settings.signing_key``,
    the key that signs checkpoints), which the connector service holds and the webhook's receiver does not. Whoever
    could forge a seal could sign checkpoints already."""
    from flytekitplugins.aios_audit.checkpoint import load_signing_key

    return seal_key(load_signing_key(settings.signing_key))


def seal_key(private_key: Any) -> bytes:
    """The sealing key derived from an Ed25519 private key (SHA-256 of a context label and its raw bytes)."""
    import hashlib

    from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

    raw: bytes = private_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    return hashlib.sha256(_META_CONTEXT + raw).digest()


def _meta_mac(meta: ApprovalNotificationMetadata, key: bytes) -> str:
    import hashlib
    import hmac
    import json
    from dataclasses import asdict

    fields = {k: v for k, v in asdict(meta).items() if k != "mac"}
    body = json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()
    return hmac.new(key, _META_CONTEXT + body, hashlib.sha256).hexdigest()


def seal_meta(meta: ApprovalNotificationMetadata, settings: Settings) -> ApprovalNotificationMetadata:
    """``meta`` with its :attr:`~ApprovalNotificationMetadata.mac` set."""
    meta.mac = _meta_mac(meta, meta_key(settings))
    return meta


def meta_problem(meta: ApprovalNotificationMetadata, settings: Settings) -> str:
    """Why ``meta`` is not this connector's (empty when it is): ``GetTask``/``DeleteTask`` hand back metadata as the
    caller sent it, and a forged one named any request and any execution, so that ``get`` used an approved request
    for an execution of the caller's choosing and ``delete`` told the ticketing tool to close any request's ticket."""
    import hmac

    try:
        key = meta_key(settings)
    except Exception as e:  # no signing key: nothing can be checked (fail closed)
        return f"the connector cannot check its resource metadata ({type(e).__name__})"
    if not meta.mac or not hmac.compare_digest(meta.mac, _meta_mac(meta, key)):
        return (
            f"the resource metadata for approval {meta.request_id!r} was not issued by this connector (forged, "
            "altered, or from a version before it was sealed): nothing is read or sent for it"
        )
    return ""


def _use(meta: ApprovalNotificationMetadata, env: Any) -> Any:
    """Use the approved request for the waiting execution (``verify_requests``: its unique use claim).

    An approval is used only by a run of the launcher that opened the request. The connector learns the waiting
    execution from flytepropeller (sealed into ``meta`` at ``create``), not who launched it: the execution that
    opened the request is that launcher's run; any other execution (a task launched on its own with this request's
    id as input) has no established launcher and is refused without using the approval up. In-process (a local run:
    no execution in ``meta``, a served call without flytepropeller's metadata is refused at ``create``) the launcher is
    this process's own, as for every local run."""
    import contextlib

    from flytekitplugins.aios_approvals import verify_requests
    from flytekitplugins.aios_core.context import ExecutionRef, serving

    project, domain, name = [*meta.execution.split("/", 2), "", "", ""][:3] if meta.execution else ("", "", "")
    scope = serving(ExecutionRef(project=project, domain=domain, name=name)) if name else contextlib.nullcontext()
    with scope:
        return verify_requests(meta.gate, [meta.request_id], env=env, after_signal=False, served=bool(meta.execution))[
            0
        ]


def _request_details(request_id: str, env: Any) -> dict[str, Any]:
    """Gate, risk, summary and expiry of a request from the audit trail; raises ApprovalNotFound."""
    from flytekitplugins.aios_approvals import ApprovalNotFound
    from flytekitplugins.aios_approvals.state import projection

    st = projection(env.store).get(request_id)
    if st is None:
        msg = f"no approval request {request_id!r} in the audit store; open it with open_request() first"
        raise ApprovalNotFound(msg)
    return st.request.model_dump(mode="json")


def _check_owner(caller: Caller, req: dict[str, Any]) -> None:
    """A served caller may notify only for requests it opened (requester or launcher)."""
    if caller.source != "propagated" or caller.principal in {req.get("requester"), req.get("launcher")}:
        return
    msg = (
        f"connector call refused: {caller.principal} ({caller.service_account}) did not open approval request "
        f"{req['request_id']} (requester {req.get('requester')})"
    )
    raise IdentityRefused(msg, code="identity_mismatch", actor=caller.principal)


def _check_execution(caller: Caller, req: dict[str, Any]) -> None:
    """A served caller notifies only for the execution that opened the request: the notification task launched on its
    own with another run's request id (by its requester's service account) re-announced the request naming itself,
    and its abort cancelled the waiting run's ticket (review of 2026-12-06)."""
    mine = caller.execution.execution_key if caller.execution is not None else ""
    opened = str(req.get("execution") or "")
    if caller.source != "propagated" or not opened or mine == opened:
        return
    msg = (
        f"connector call refused: approval request {req['request_id']} was opened by execution {opened}, not by "
        f"{mine or 'an unnamed execution'}; only the run that opened it is notified and waits on it"
    )
    raise IdentityRefused(msg, code="identity_mismatch", actor=caller.principal)


def _payload(
    req: dict[str, Any], cfg: ApprovalNotificationConfig, meta: TaskExecutionMetadata | None
) -> dict[str, Any]:
    execution = ""
    wf = meta.task_execution_id.node_execution_id.execution_id if meta and meta.task_execution_id else None
    if wf is not None and wf.name:
        execution = f"{wf.project}/{wf.domain}/{wf.name}"
    rid = req["request_id"]
    return {
        "event": "approval.requested",
        "request_id": rid,
        "gate": req["gate"],
        "risk": req["risk"],
        "subject": req["subject"],
        "summary": req.get("summary", {}),
        "reason": req.get("reason", ""),
        "requester": req["requester"],
        "roles": list(req.get("roles", [])),
        "quorum": req.get("quorum", 1),
        "expires_at": req["expires_at"],
        "channel": cfg.channel,
        "execution": execution or req.get("execution", ""),
        "decide_with": [
            f"aios approvals approve {rid} --as <principal>",
            f"aios approvals reject {rid} --as <principal> --reason TEXT",
        ],
    }


def ticket_link(url: object) -> str:
    """The receiver's ticket URL if it is a web address (``http``/``https``, a host, no space or control character),
    else "": the Flyte console shows it as the task's "Approval ticket" link, and a ``javascript:`` or ``data:`` URL
    there would run in the console of whoever clicks it."""
    from urllib.parse import urlsplit

    if not isinstance(url, str) or not url:
        return ""
    try:
        parts = urlsplit(url)
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc or " " in url or visible(url) != url:
        log.warning("approval ticket link ignored: the webhook receiver answered a url that is no http(s) address")
        return ""
    return url


def _expiry_epoch(iso: str) -> float:
    import datetime as dt

    return dt.datetime.fromisoformat(iso).timestamp()


class ApprovalNotificationConnector(AsyncConnectorBase):
    """Serves task type ``aios_approval_notification``."""

    name = "AIOS Approval Notification Connector"

    def __init__(self) -> None:
        super().__init__(task_type_name=APPROVAL_NOTIFICATION_TASK_TYPE, metadata_type=ApprovalNotificationMetadata)

    async def create(
        self,
        task_template: TaskTemplate,
        output_prefix: str,
        inputs: LiteralMap | None = None,
        task_execution_metadata: TaskExecutionMetadata | None = None,
        **kwargs: Any,
    ) -> ApprovalNotificationMetadata:
        """Post the notification (retried, bounded) and return where to follow the request.

        Raises:
            ConfigError: webhook URL or secret missing. ApprovalNotFound: unknown request id.
            WebhookError: delivery failed after the allowed attempts (status and attempts named).
        """
        cfg = ApprovalNotificationConfig.from_custom(task_template.custom)
        served = task_execution_metadata is not None
        task_name = bounded(task_template.id.name) if task_template.id else "?"  # the caller's text
        from flytekitplugins.aios_approvals.evaluate import Env

        settings = get_settings()  # the connector call is an entry point: settings resolved once, passed down
        request_id = ""
        try:  # who calls, before a byte of the inputs is decoded (review R31b: an anonymous call's inputs were first)
            caller = await asyncio.to_thread(establish, task_execution_metadata, settings)
            from flytekitplugins.aios_approvals import ApprovalNotFound

            try:
                request_id = str((await to_python(inputs, APPROVAL_INPUTS, served=served)).get("request_id", ""))
                if not request_id:
                    msg = "input request_id is empty: pass the id returned by open_request()"
                    raise ValueError(msg)
                env = await asyncio.to_thread(Env.load, settings)
                req = await asyncio.to_thread(_request_details, request_id, env)
            except (ValueError, ApprovalNotFound) as e:  # an input refused (UnsafeInput, an empty or unknown request
                # id): audited under the established caller, then failed as before (re-review R32a: a caller probing
                # for ids left no record)
                if served:
                    await asyncio.to_thread(
                        refuse,
                        input_refused(e, caller.principal),
                        connector=self.name,
                        task_name=task_name,
                        claimed="",
                        meta=task_execution_metadata,
                        settings=settings,
                    )
                raise
            _check_owner(caller, req)
            _check_execution(caller, req)
        except IdentityRefused as e:
            message = await asyncio.to_thread(
                refuse,
                e,
                connector=self.name,
                task_name=task_name,
                claimed="",
                meta=task_execution_metadata,
                settings=settings,
            )
            refused = ApprovalNotificationMetadata(request_id=request_id, gate="", deadline=0.0, refused=message)
            return await asyncio.to_thread(seal_meta, refused, settings)
        target = load_target()
        answer = await post_json(
            target, _payload(req, cfg, task_execution_metadata), idempotency_key=request_id, policy=cfg.retry_policy()
        )
        deadline = min(time.time() + cfg.wait_timeout_s, _expiry_epoch(req["expires_at"]))
        log.info("approval %s (%s) notified via %s for %s", request_id, req["gate"], target.origin, caller.principal)
        meta = ApprovalNotificationMetadata(
            request_id=request_id,
            gate=req["gate"],
            deadline=deadline,
            ticket_url=ticket_link(answer.get("url")),
            external_id=str(answer.get("id", "")),
            attempts=cfg.attempts,
            execution=caller.execution.execution_key if caller.execution is not None else "",
        )
        return await asyncio.to_thread(seal_meta, meta, settings)

    async def get(self, resource_meta: ApprovalNotificationMetadata, **kwargs: Any) -> Resource:
        """The verified outcome: SUCCEEDED when approved, FAILED when refused or out of time, else RUNNING."""
        from flytekitplugins.aios_approvals import outcome
        from flytekitplugins.aios_approvals.evaluate import Env

        settings = get_settings()  # entry point: this call's settings
        if problem := await asyncio.to_thread(meta_problem, resource_meta, settings):
            log.warning("approval connector get refused: %s", visible(problem))
            return Resource(phase=TaskExecution.FAILED, message=visible(problem))
        if resource_meta.refused:
            return Resource(phase=TaskExecution.FAILED, message=resource_meta.refused)
        env = await asyncio.to_thread(Env.load, settings)
        out = await asyncio.to_thread(outcome, resource_meta.request_id, env)
        if out.status == "approved":  # using it is atomic and once: another execution that used it wins
            out = await asyncio.to_thread(_use, resource_meta, env)
        links = [TaskLog(name="Approval ticket", uri=resource_meta.ticket_url)] if resource_meta.ticket_url else None
        rid, gate = resource_meta.request_id, resource_meta.gate
        if out.status == "approved":
            values = {"request_id": rid, "status": out.status, "approvers": list(out.approvers), "reason": out.reason}
            outputs = await to_literals(values, APPROVAL_OUTPUTS)
            msg = visible(f"{gate} {rid} approved by {', '.join(out.approvers)}")
            return Resource(phase=TaskExecution.SUCCEEDED, message=msg, outputs=outputs, log_links=links)
        if out.status != "pending":
            who = f" by {', '.join(out.rejected_by)}" if out.rejected_by else ""
            msg = visible(f"approval {rid} ({gate}) is {out.status}{who}: {out.reason or 'no reason given'}")
            return Resource(phase=TaskExecution.FAILED, message=msg, log_links=links)
        if time.time() > resource_meta.deadline:
            msg = f"approval {rid} ({gate}) got no decision before the wait deadline: timed out (timeout = deny)"
            return Resource(phase=TaskExecution.FAILED, message=msg, log_links=links)
        msg = f"waiting for {gate} {rid}: {len(out.approvers)}/{out.quorum} approval(s)"
        return Resource(phase=TaskExecution.RUNNING, message=msg, log_links=links)

    async def delete(self, resource_meta: ApprovalNotificationMetadata, **kwargs: Any) -> None:
        """Tell the receiver the wait was cancelled (idempotent on its side: same Idempotency-Key suffix)."""
        if problem := await asyncio.to_thread(meta_problem, resource_meta, get_settings()):
            log.warning("approval connector delete refused: %s", visible(problem))
            return  # a forged delete closes no ticket
        if resource_meta.refused:
            return  # nothing was sent for a refused call
        rid = resource_meta.request_id
        payload = {"event": "approval.cancelled", "request_id": rid, "id": resource_meta.external_id}
        policy = RetryPolicy(attempts=resource_meta.attempts)
        await post_json(load_target(), payload, idempotency_key=f"{resource_meta.request_id}:cancel", policy=policy)


_flytekit_compat.install()
ConnectorRegistry.register(ApprovalNotificationConnector())
