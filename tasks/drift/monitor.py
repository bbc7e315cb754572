"""The monitoring chain's decision and trigger: drift past the threshold starts the retraining workflow.

* :func:`decide_retraining` turns a drift report into a decision: no drift -> no retraining; drift ->
  ask policy ``run_task`` on the ``Workflow`` resource of the target for the acting principal
  (``service:monitoring``); the decision is written to the audit trail (kind="drift",
  status ``retrain_triggered`` / ``retrain_skipped`` / ``retrain_denied``) with the drift record as parent,
  so the trail says why retraining started (or did not).
* :func:`start_retraining` is a dynamic node that imports the target (``module.attr`` or
  ``module:attr``: a workflow, launch plan or task; default ``workflows.retraining.retrain``) and calls it
  with the inputs it declares among ``trigger_reason`` and ``drift_record``. A target
  that cannot be imported fails the node loudly.
* The chain's output is one line a person reads: ``retraining not started: ...`` (no drift, or policy
  refused) from :func:`skip_retraining`, or ``retraining ran: ...`` with the retraining's own decision
  (promoted / kept / rejected, and why) from :func:`retraining_outcome`.
"""

from __future__ import annotations

import importlib
from typing import Any, NamedTuple

from flytekit import dynamic, task

from flytekitplugins.aios_core.errors import GovernanceDenied
from flytekitplugins.aios_core.settings import Settings, get_settings
from tasks.acting import act_as
from tasks.drift.check import record_drift
from tasks.drift.report import DriftReport
from tasks.images import GOVERNED
from tasks.training.promotion import RetrainSummary

DEFAULT_TARGET = "workflows.retraining.retrain"


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


@task(**GOVERNED)
def decide_retraining(report: DriftReport, target: str) -> RetrainDecision:
    """Decide whether drift starts retraining (effect-size thresholds, then policy run_task); audit why.

    Args:
        report: the drift report (its thresholds are the monitoring thresholds).
        target: the retraining workflow that would be started.
    """
    settings = get_settings()  # this task's entry point: resolved once, passed down
    summary = report.summary()
    parents = [report.audit_record_id] if report.audit_record_id else []
    if not report.drifted:
        reason = f"no drift on {report.dataset} at thresholds {report.thresholds}"
        rid = record_drift(
            "retrain_skipped", f"dataset:{report.dataset}", {"reason": reason, **summary}, settings, parents=parents
        )
        return RetrainDecision(False, reason, rid)
    what = report.drifted_features or [
        "text embedding" if report.embedding and report.embedding.drifted else "predictions"
    ]
    reason = f"drift on {report.dataset}: {', '.join(what)} crossed {report.thresholds}"
    allowed, why, policy_record = _policy_allows(target, settings)
    status = "retrain_triggered" if allowed else "retrain_denied"
    attrs = {"reason": reason, "target": target, "policy": why, **summary}
    rid = record_drift(
        status, f"dataset:{report.dataset}", attrs, settings, parents=parents + [policy_record] * bool(policy_record)
    )
    return RetrainDecision(allowed, reason if allowed else f"{reason}; retraining denied: {why}", rid)


@dynamic(**GOVERNED)
def start_retraining(target: str, reason: str, drift_record: str) -> str:
    """Launch the retraining workflow named by ``target`` (a real node of this execution).

    Args:
        target: ``module.workflow`` to launch.
        reason: why (from the decision), passed as ``trigger_reason`` when the target declares it.
        drift_record: audit record id of the decision, passed when declared.
    """
    entity = resolve_target(target)
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
