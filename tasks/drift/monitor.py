"""The monitoring chain's decision and trigger: drift past the threshold starts the retraining workflow.

* :func:`decide_retraining` turns a drift report into a decision: no drift -> no retraining; drift ->
  ask policy ``run_task`` on the ``Workflow`` resource of the target for the acting principal
  (``service:monitoring``); the decision is written to the audit trail (kind="drift",
  status ``retrain_triggered`` / ``retrain_skipped`` / ``retrain_denied``) with the drift record as parent,
  so the trail says why retraining started (or did not).
* :func:`start_retraining` is a dynamic node that first re-establishes from the trail what stands behind it (the
  place that acts verifies: :func:`triggered_retraining`), then imports the target (``module.attr`` or
  ``module:attr``: a workflow, launch plan or task; default ``workflows.retraining.retrain``), claims the decision
  for its execution in an audited record (:func:`claim_start`: one decision starts one retraining) and calls the
  target with the inputs it declares among ``trigger_reason`` and ``drift_record``. A target that cannot be
  imported fails the node loudly, before the decision is claimed.
* The chain's output is one line a person reads: ``retraining not started: ...`` (no drift, or policy
  refused) from :func:`skip_retraining`, or ``retraining ran: ...`` with the retraining's own decision
  (promoted / kept / rejected, and why) from :func:`retraining_outcome`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, NamedTuple

from flytekit import dynamic, task

from flytekitplugins.aios_audit.records import AuditRecord
from flytekitplugins.aios_core.context import ExecutionRef
from flytekitplugins.aios_core.errors import GovernanceDenied
from flytekitplugins.aios_core.settings import Settings, get_settings
from tasks.acting import act_as
from tasks.drift.check import drift_sealed, record_drift
from tasks.drift.report import DriftReport
from tasks.images import GOVERNED
from tasks.training.promotion import RetrainSummary

if TYPE_CHECKING:
    from flytekitplugins.aios_audit.stores import AuditStore

DEFAULT_TARGET = "workflows.retraining.retrain"
START_KIND = "retraining"  # the audited record start_retraining writes before it launches (status "started")


class RetrainDecision(NamedTuple):
    trigger: bool
    reason: str
    record_id: str


def resolve_target(target: str) -> Any:
    """Import ``module.attr`` / ``module:attr`` and check it is a Flyte entity that can be called."""
    from flytekit.core.base_task import PythonTask
    from flytekit.core.launch_plan import LaunchPlan
    from flytekit.core.workflow import WorkflowBase

    module, sep, attr = target.partition(":") if ":" in target else target.rpartition(".")
    if not sep or not module or not attr:
        msg = f"retrain target {target!r} must look like 'package.module.workflow' or 'package.module:workflow'"
        raise ValueError(msg)
    try:
        entity = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as e:
        msg = f"retrain target {target!r} cannot be imported ({e}); set the monitoring input retrain_target"
        raise ImportError(msg) from e
    if not isinstance(entity, WorkflowBase | LaunchPlan | PythonTask):
        msg = f"retrain target {target!r} is a {type(entity).__name__}, not a Flyte workflow, launch plan or task"
        raise TypeError(msg)
    return entity


def canonical_target(target: str) -> str:
    """The Flyte name of what ``target`` runs: a workflow's or task's ``module.function``, and for a launch plan its
    workflow's: the one name the policy is asked about (``Workflow::<name>``) and a decision records, however the
    launcher spelled it. ``module:attr``, or a module re-exporting the workflow, reached the same workflow under
    another resource id, and an operator's ``forbid`` of ``run_task`` on the workflow's name did not apply (re-review
    R8 of 2026-12-07, F3); a launch plan's own name did the same (re-review R10b: ``retrain_on_demand`` ran the frozen
    retraining, and its registration then looked for a workflow of that name and refused the honest run).

    Raises:
        ValueError, ImportError, TypeError: as :func:`resolve_target`.
    """
    return _flyte_name(resolve_target(target))


def _flyte_name(entity: Any) -> str:
    """The name of the workflow (or task) ``entity`` runs: a launch plan's workflow's, else its own."""
    from flytekit.core.launch_plan import LaunchPlan

    return str(entity.workflow.name if isinstance(entity, LaunchPlan) else entity.name)


def _policy_allows(target: str, settings: Settings) -> tuple[bool, str, str]:
    from flytekitplugins.aios_policy import PolicyRequest, enforce

    try:
        resource = {"type": "Workflow", "id": target}
        request = PolicyRequest(principal=settings.actor, action="run_task", resource=resource)
        decision = enforce(request, subject=f"Workflow::{target}", raise_on_deny=False, settings=settings)
    except (GovernanceDenied, ValueError) as e:
        return False, f"policy check failed: {e}", ""
    return decision.effect == "allow", "; ".join(decision.reasons), decision.audit_record_id


@task(**GOVERNED)
def acting_principal(principal: str) -> str:
    """Act as the launch plan's service identity for the rest of the run; returns it.

    Args:
        principal: e.g. ``service:monitoring`` (may run tasks and start retraining under policy run_task).
    """
    return act_as(principal)


def recorded_drift(record_id: str, settings: Settings) -> AuditRecord:
    """The drift check ``record_id`` as the trail recorded it (intact, ``kind="drift"``, status ``drift`` or
    ``no_drift``) on batches a sealed quality validation passed (``tasks.drift.check.drift_sealed``); a report
    handed in with other figures, no record, or a check without its seal decides nothing.

    A check recorded before ``measure_drift`` required the seal (or appended by hand) may have been measured on
    quality reports typed by hand; it started or skipped a retraining all the same.

    Raises:
        GovernanceDenied: ``no_evidence`` when there is no such intact drift check; ``unsealed_quality`` when no
            sealed quality validation of exactly its two batches stands behind it.
    """
    from flytekitplugins.aios_audit import audit_log

    rec = _drift_record(record_id, ("drift", "no_drift"), settings)
    if rec is None:
        msg = f"{record_id or '(none given)'} is not a recorded drift check; run the drift check first"
        raise GovernanceDenied(msg, reason_code="no_evidence")
    if not drift_sealed(audit_log(settings), rec):
        msg = (
            f"drift check {record_id} names no sealed quality validation of its two batches (it was not measured "
            "by measure_drift after check_quality): run the drift check again (workflows.drift.check_drift)"
        )
        raise GovernanceDenied(msg, reason_code="unsealed_quality")
    return rec


def _drift_record(record_id: str, statuses: tuple[str, ...], settings: Settings) -> AuditRecord | None:
    """The trail's intact ``kind="drift"`` record ``record_id`` with one of ``statuses``, else None."""
    from flytekitplugins.aios_audit import audit_log
    from flytekitplugins.aios_audit.records import intact

    rec = audit_log(settings).get(record_id) if record_id else None
    ok = rec is not None and intact(rec) and rec.event.kind == "drift" and rec.event.status in statuses
    return rec if ok else None


def trigger_claim(record_id: str) -> str:
    """The claim key a retraining's training record takes on the decision ``record_id`` that started it: one decision
    starts one retraining (``register_candidate`` claims it; the claims table makes the rule structural)."""
    return f"retrain-trigger:{record_id}"


def start_claim(record_id: str) -> str:
    """The claim key the execution that starts the retraining on the decision ``record_id`` takes, held by that
    execution (:func:`starter`): ``start_retraining`` claims it in its ``retrain started`` record before it launches
    anything (:func:`claim_start`), and ``register_candidate`` registers on the decision only in the execution that
    holds it (:func:`registration_start_claims`)."""
    return f"retrain-start:{record_id}"


def starter(execution: ExecutionRef) -> str:
    """Who holds a :func:`start_claim`: the execution (``project/domain/name``; a local run's id), not the node or
    the attempt, so a retry of the node and the retraining's own steps (sub-nodes of the same execution) hold it."""
    return execution.execution_key


def _started_by(record_id: str, held: tuple[str, int], note: str = "") -> str:
    return (
        f"drift decision {record_id} already started a retraining in execution {held[0]}{note} (audit record seq "
        f"{held[1]}); one decision starts one retraining: run the monitoring chain again for a new decision"
    )


def _a_retry(store: AuditStore, seq: int, execution: ExecutionRef) -> bool:
    """Whether ``execution`` is a later attempt of the node whose ``retrain started`` record is at ``seq`` (Flyte
    retried the node on a cluster); a second call in the same attempt, or in a local run, is not."""
    from flytekitplugins.aios_audit.records import intact

    rec = next(store.scan(seq, seq), None)
    before = rec.event.execution if rec is not None and intact(rec) and rec.event.kind == START_KIND else None
    return (
        before is not None
        and starter(before) == starter(execution)
        and before.node_id == execution.node_id
        and execution.retry_attempt > before.retry_attempt
    )


def claim_start(decided: AuditRecord, target: str, reason: str, settings: Settings) -> str:
    """Claim the decision ``decided`` for the execution in progress before anything is launched: an audited
    ``kind="retraining"``, status ``started`` record naming the decision, holding its :func:`start_claim` (a row of
    the claims table written in the same transaction; a second holder is refused by the store, atomically). Returns
    the record id ("" for a retry of the node that already holds it: Flyte retried it, and it launches again).

    ``start_retraining`` once checked only that no retraining had registered a model on the decision yet (which
    happens at the end of a training run): until then, one decision started as many retrainings as a launcher
    asked for.

    Raises:
        GovernanceDenied: ``trigger_used`` naming the decision and the execution that holds it (another execution,
            or a second call in this one that is not a retry of the node); ``audit_write_failed`` when the claim
            cannot be made durable. Either way nothing is started.
    """
    from flytekitplugins.aios_audit import AuditEvent, audit_log
    from flytekitplugins.aios_audit.stores import CLAIMS_ATTR, AuditWriteError, ClaimTaken, claim
    from flytekitplugins.aios_core.context import code_version, current_execution

    store = audit_log(settings)
    key, execution = start_claim(decided.record_id), current_execution()
    held = store.claim_holders([key]).get(key)
    if held is None:
        event = AuditEvent(
            kind=START_KIND, actor=settings.actor, status="started", subject=f"Workflow::{target}",
            execution=execution, code_version=code_version(settings.code_version), parents=[decided.record_id],
            attributes={"target": target, "reason": reason, CLAIMS_ATTR: [claim(key, starter(execution))]},
        )  # fmt: skip
        try:
            return store.append(event).record_id
        except ClaimTaken as e:  # another execution claimed the decision since it was read
            held = (e.holder, e.seq)
        except AuditWriteError as e:  # fail closed: no claim, no retraining
            msg = f"the start of a retraining on drift decision {decided.record_id} could not be recorded ({e})"
            raise GovernanceDenied(msg + "; nothing is started", reason_code="audit_write_failed") from e
    if held[0] == starter(execution) and _a_retry(store, held[1], execution):
        return ""
    here = ", this one (a second start, not a retry of the node that started it)" * (held[0] == starter(execution))
    raise GovernanceDenied(_started_by(decided.record_id, held, here), reason_code="trigger_used")


def registration_start_claims(record_id: str, execution: ExecutionRef, settings: Settings) -> list[dict[str, str]]:
    """The start claim a registration in ``execution`` on the decision ``record_id`` takes with its training record:
    none when ``execution`` holds it already (``start_retraining`` started this retraining), the claim itself when
    no execution holds it (the retraining workflow was launched with the decision directly: its registration is
    then the start, and a later ``start_retraining`` on the decision is refused).

    Raises:
        GovernanceDenied: ``trigger_used`` naming the execution that holds it, when that is another execution (a
            retraining started elsewhere on the decision registers there, or nowhere); nothing is registered.
    """
    from flytekitplugins.aios_audit import audit_log
    from flytekitplugins.aios_audit.stores import claim

    key = start_claim(record_id)
    held = audit_log(settings).claim_holders([key]).get(key)
    if held is None:
        return [claim(key, starter(execution))]
    if held[0] != starter(execution):
        msg = f"{_started_by(record_id, held)}; this registration runs in execution {starter(execution)}"
        raise GovernanceDenied(msg + ": nothing is registered", reason_code="trigger_used")
    return []


def triggered_retraining(record_id: str, target: str, settings: Settings, holder: str = "") -> AuditRecord:
    """The trail's decision to start ``target``: the intact ``retrain_triggered`` drift record ``record_id`` made
    for exactly this target, on a drift check measured on sealed quality validations of its batches, with an intact
    policy decision among its parents that allowed ``run_task`` on it, and not yet used by a retraining (its
    :func:`trigger_claim` is free, or held by ``holder``: the same registration again, after a retry).

    ``start_retraining`` is a node anyone with launch rights can start on its own, with any inputs: a made-up record
    id, or a principal the policy would refuse, launched the target all the same (the record id then became the
    training record's parent). One decision also started any number of retrainings, each recorded as caused by it:
    ``start_retraining`` now also claims the decision for its execution (:func:`claim_start`) before it launches.

    Raises:
        GovernanceDenied: ``no_evidence`` naming what is missing, ``unsealed_quality`` (the drift check behind it
            has no quality seal), ``policy_changed`` (its policy decision was made under another policy set than
            the one in force), ``policy_unavailable`` (the set in force cannot be read) or ``trigger_used`` (a
            retraining already registered a model on it); nothing is started (nor, at its end, registered).
    """
    from flytekitplugins.aios_audit import audit_log
    from flytekitplugins.aios_audit.records import intact

    rec = _drift_record(record_id, ("retrain_triggered",), settings)
    if rec is None or rec.event.attributes.get("target") != target:
        msg = (
            f"{record_id or '(none given)'} is not a recorded decision to start retraining {target}; the monitoring "
            "chain's decide_retraining makes one"
        )
        raise GovernanceDenied(msg, reason_code="no_evidence")
    resource = f"Workflow::{target}"
    store = audit_log(settings)
    parents = store.get_many(rec.event.parents).values()
    checks = [p for p in parents if intact(p) and p.event.kind == "drift" and p.event.status == "drift"]
    if not any(drift_sealed(store, check) for check in checks):
        msg = (
            f"{record_id} names no drift check measured on sealed quality validations of its batches (a decision "
            "made before decide_retraining required them); nothing is started: run the monitoring chain again"
        )
        raise GovernanceDenied(msg, reason_code="unsealed_quality")
    for parent in parents:
        pd = parent.event.policy_decisions[0] if parent.event.policy_decisions else {}
        if (
            intact(parent)
            and parent.event.kind == "policy_decision"
            and parent.event.status == "allow"
            and parent.event.subject == resource
            and pd.get("action") == "run_task"
        ):
            break
    else:
        msg = f"{record_id} names no policy decision that allowed run_task on {resource}; nothing is started"
        raise GovernanceDenied(msg, reason_code="no_evidence")
    _policy_still_in_force(record_id, pd, settings)
    held = store.claim_holders([trigger_claim(record_id)]).get(trigger_claim(record_id))
    if held is not None and held[0] != holder:
        msg = (
            f"drift decision {record_id} already started a retraining (it registered {held[0]}, audit record seq "
            f"{held[1]}); one decision starts one retraining: run the monitoring chain again for a new decision"
        )
        raise GovernanceDenied(msg, reason_code="trigger_used")
    return rec


def _policy_still_in_force(record_id: str, pd: dict[str, Any], settings: Settings) -> None:
    """Refuse a retraining decision made under another policy set than the one in force now, as the document acting
    point does (``policy_changed``), and when the set in force cannot be read (``policy_unavailable``): an operator's
    freeze of retraining in Cedar once left every unused ``retrain_triggered`` decision able to start one
    (review of 2026-12-07)."""
    from flytekitplugins.aios_approvals.acting import policy_changed_since, policy_in_force

    try:
        in_force = policy_in_force(settings)
    except Exception as e:  # the policies cannot be read or validated: nothing is started (fail closed)
        msg = f"the policy set in force cannot be read ({type(e).__name__}); nothing is started for {record_id}"
        raise GovernanceDenied(msg, reason_code="policy_unavailable") from None
    changed = policy_changed_since(pd, in_force)
    if changed:
        msg = f"{record_id} {changed}: nothing is started; run the monitoring chain again for a decision under it"
        raise GovernanceDenied(msg, reason_code="policy_changed")


@task(**GOVERNED)
def decide_retraining(report: DriftReport, target: str) -> RetrainDecision:
    """Decide whether drift starts retraining (effect-size thresholds, then policy run_task); audit why.

    The figures are read from the drift check's own audit record (``report.audit_record_id``), never from the
    report handed in: a report typed by hand neither starts nor stops a retraining.

    Args:
        report: the drift report (its thresholds are the monitoring thresholds).
        target: the retraining workflow that would be started.
    """
    settings = get_settings()  # this task's entry point: resolved once, passed down
    found = recorded_drift(report.audit_record_id, settings)  # the report is a claim: its record is the check
    a, dataset = found.event.attributes, found.event.subject.removeprefix("dataset:")
    summary = {k: a.get(k) for k in report.summary()}
    parents = [found.record_id]
    if found.event.status == "no_drift":
        reason = f"no drift on {dataset} at thresholds {a.get('thresholds')}"
        rid = record_drift(
            "retrain_skipped", found.event.subject, {"reason": reason, **summary}, settings, parents=parents
        )
        return RetrainDecision(False, reason, rid)
    embedding = a.get("embedding") or {}
    what = list(a.get("drifted_features") or []) or [
        "text embedding" if isinstance(embedding, dict) and embedding.get("drifted") else "predictions"
    ]
    reason = f"drift on {dataset}: {', '.join(map(str, what))} crossed {a.get('thresholds')}"
    try:
        target = canonical_target(target)
    except (ValueError, ImportError, TypeError) as e:  # nothing to ask the policy about: nothing is started
        allowed, why, policy_record = False, f"retrain target not resolved: {e}", ""
    else:
        allowed, why, policy_record = _policy_allows(target, settings)
    status = "retrain_triggered" if allowed else "retrain_denied"
    attrs = {"reason": reason, "target": target, "policy": why, **summary}
    rid = record_drift(
        status, found.event.subject, attrs, settings, parents=parents + [policy_record] * bool(policy_record)
    )
    return RetrainDecision(allowed, reason if allowed else f"{reason}; retraining denied: {why}", rid)


@dynamic(**GOVERNED)
def start_retraining(target: str, reason: str, drift_record: str) -> str:
    """Launch the retraining workflow named by ``target`` (a real node of this execution).

    Args:
        target: ``module.workflow`` to launch.
        reason: why (from the decision), passed as ``trigger_reason`` when the target declares it.
        drift_record: audit record id of the decision, passed when declared.

    Raises:
        GovernanceDenied: ``drift_record`` is not the trail's decision to start ``target``, a retraining already
            registered a model on it (see :func:`triggered_retraining`), or another execution (or an earlier call
            in this one that was not a retry of this node) started a retraining on it (``trigger_used``, see
            :func:`claim_start`); the reason passed on is the one that decision recorded. Nothing is launched.
    """
    settings = get_settings()  # this node's entry point: resolved once, passed down
    entity = resolve_target(target)  # a target that cannot be imported fails before the decision is claimed
    target = _flyte_name(entity)  # the decision names the target as canonical_target gives it, however spelled here
    decided = triggered_retraining(drift_record, target, settings)
    reason = str(decided.event.attributes.get("reason") or reason)
    claim_start(decided, target, reason, settings)  # one decision, one retraining: claimed before anything runs
    offered = {"trigger_reason": reason, "drift_record": drift_record}
    declared = entity.python_interface.inputs
    out = entity(**{k: v for k, v in offered.items() if k in declared})
    if list(entity.python_interface.outputs.values()) == [RetrainSummary]:
        return retraining_outcome(target=target, reason=reason, summary=out)
    return f"retraining ran: {target} for {reason}"


@task(**GOVERNED)
def retraining_outcome(target: str, reason: str, summary: RetrainSummary) -> str:
    """One line for the person watching: what the retraining the drift started decided, and why.

    Args:
        target: the retraining workflow that ran.
        reason: the drift that started it.
        summary: the retraining's result.
    """
    why = "; ".join(summary.reasons) or "no reason recorded"
    return f"retraining ran: {target} for {reason}: {summary.model_id} {summary.decision.upper()} ({why})"


@task(**GOVERNED)
def skip_retraining(reason: str) -> str:
    """No retraining: say why (no drift, or policy refused it); the audit trail has the same reason.

    Args:
        reason: why retraining was not started.
    """
    return f"retraining not started: {reason}"
