"""Catalog steps of retraining: register the candidate with its lineage, and finish a governed promotion.

The promotion itself is the evaluation workflow's (``tasks.evaluation.tasks.decide_promotion``: policy
``promote_model`` via the catalog). Where the policy asks for a ``model-promotion`` approval, the
retraining workflow waits on the approval gate and :func:`finish_promotion` promotes only with a
verified, authorized approval of exactly this model.
"""

from __future__ import annotations

import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import NamedTuple

from flytekit import Deck, task
from flytekit.types.directory import FlyteDirectory

from flytekitplugins.aios_approvals import ApprovalOutcome
from flytekitplugins.aios_audit import AuditEvent, ModelRef, audit_log
from flytekitplugins.aios_core.context import code_version, current_execution
from flytekitplugins.aios_core.settings import Settings, get_settings
from tasks.evaluation.report import EvaluationReport
from tasks.images import GOVERNED
from tasks.training.config import TrainConfig, TrainResult
from tasks.training.data import DataLineage
from tasks.training.report import loss_curve_html, summary_html

GATE = "model-promotion"


class Registered(NamedTuple):
    candidate: FlyteDirectory
    training_record: str


@dataclass
class RetrainSummary:
    """Outcome of one retraining run.

    Args:
        model_id: ``name@version`` of the candidate.
        digest: artifact digest of the candidate.
        decision: ``promoted``, ``rejected`` (approval refused), or ``kept`` (policy kept the champion).
        reasons: why.
        accuracy_delta: candidate minus start model on held-out rows.
        macro_f1_delta: same for macro-F1.
        training_record: audit record id of the training lineage record.
        evaluation_record: audit record id of the evaluation.
        approval_request_id: the model-promotion request, when one was opened.
    """

    model_id: str
    digest: str
    decision: str
    reasons: list[str] = field(default_factory=list)
    accuracy_delta: float = 0.0
    macro_f1_delta: float = 0.0
    training_record: str = ""
    evaluation_record: str = ""
    approval_request_id: str = ""


def _persist(model: FlyteDirectory, name: str, version: str, settings: Settings) -> str:
    """Where the catalog points: a copy under the state dir locally, the blob-store URI on a cluster."""
    from flytekitplugins.aios_catalog.entries import check_model_id

    check_model_id(name, version)  # before anything is copied under models/<name>/<version>
    if model.remote_source and "://" in str(model.remote_source):
        return str(model.remote_source)
    target = settings.state_dir / "models" / name / version
    if not target.exists():
        shutil.copytree(Path(model.download()), target)
    return str(target)


@task(**GOVERNED)
def register_candidate(
    result: TrainResult,
    lineage: DataLineage,
    config: TrainConfig,
    name: str,
    owner: str,
    trigger: str,
    drift_record: str,
) -> Registered:
    """Record the training lineage (config, data, figures) and register the model as a catalog candidate.

    Args:
        result: the fine-tuning result (artifact, digest, losses, throughput).
        lineage: data digests and counts.
        config: training hyper-parameters.
        name: catalog name.
        owner: accountable owner recorded in the catalog.
        trigger: why retraining ran (``on demand`` or the drift reason).
        drift_record: audit record id of the drift decision that triggered it ("" on demand).
    """
    from flytekitplugins.aios_catalog import ModelEntry, catalog

    settings = get_settings()  # this task's entry point: resolved once, passed down
    actor = settings.actor
    uri = _persist(result.model, name, lineage.version, settings)
    figures = {k: v for k, v in asdict(result).items() if k not in ("model", "losses")}
    event = AuditEvent(
        kind="training", actor=actor, status="trained", subject=f"{name}@{lineage.version}",
        execution=current_execution(), code_version=code_version(settings.code_version),
        models=[ModelRef(name=name, version=lineage.version, digest=result.digest)],
        inputs={"train": lineage.train_digest, "test": lineage.test_digest, "feedback": lineage.feedback_digest,
                "config": config.digest()},
        outputs={"model": result.digest}, parents=[drift_record] if drift_record else [],
        attributes={"config": asdict(config), "result": figures, "losses": result.losses, "trigger": trigger,
                    "data": {k: v for k, v in asdict(lineage).items() if k != "feedback_rejected"},
                    "feedback_rejected_lines": len(lineage.feedback_rejected), "artifact_uri": uri},
    )  # fmt: skip
    record = audit_log(settings).append(event)
    digests = [d for d in (lineage.train_digest, lineage.feedback_digest) if d]
    entry = ModelEntry(
        name=name, version=lineage.version, digest=result.digest, training_data_digests=digests,
        metrics={"final_train_loss": result.losses[-1]} if result.losses else {}, owner=owner, artifact_uri=uri,
        description=f"MiniLM fine-tuned by retraining; training_record={record.record_id}; trigger={trigger}",
    )  # fmt: skip
    catalog(settings).register(entry, actor=actor)
    return Registered(FlyteDirectory(uri), record.record_id)


def _best_case_denials(principal: str, name: str, settings: Settings) -> list[str]:
    """Why ``principal`` could never register or promote ``name``, even with the best evaluation (empty: it may)."""
    from flytekitplugins.aios_catalog.governance import policy_decision

    resource = {"type": "Model", "id": f"{name}@pre-training-check"}
    best = {"accuracy_delta": 1.0, "drift_passed": True}
    denials = []
    for action, context in (("write_catalog", {}), ("promote_model", best)):
        decision = policy_decision(action, principal, resource, context, settings=settings)
        if decision.effect == "deny":
            denials.append(f"{action}: {'; '.join(decision.reasons) or 'denied'}")
    return denials


@task(**GOVERNED)
def authorize_retraining(principal: str, name: str) -> str:
    """Before any training: act as ``principal`` and fail fast when policy could never let it promote ``name``.

    Asks policy ``write_catalog`` and ``promote_model`` (with the best possible evaluation: the candidate
    beats the champion and passed its drift check); a deny there would deny the real promotion too, so
    minutes of training would be wasted.

    Args:
        principal: the service identity of the run (the launch plan's input, default ``service:retraining``).
        name: catalog name of the model to retrain.
    """
    from flytekitplugins.aios_catalog.entries import check_model_id
    from flytekitplugins.aios_core.errors import GovernanceDenied
    from tasks.acting import act_as

    check_model_id(name, "0")  # a name that is not one path segment fails here, before any training
    actor = act_as(principal)
    denials = _best_case_denials(actor, name, get_settings())
    if denials:
        msg = (
            f"retraining not started: {actor} may not register or promote {name} ({' | '.join(denials)}); "
            f"launch it as a principal with role catalog-writer or ml-engineer, e.g. --principal service:retraining"
        )
        raise GovernanceDenied(msg, reason_code="retraining_not_allowed")
    return actor


@task(**GOVERNED)
def promotion_requests(report: EvaluationReport) -> list[str]:
    """The approval requests the promotion waits for (none when the policy allowed or kept the champion).

    Args:
        report: the evaluation with the policy's decision.
    """
    return [report.approval_request_id] if report.decision == "needs_approval" else []


def _decide(report: EvaluationReport, outcomes: list[ApprovalOutcome], settings: Settings) -> tuple[str, list[str]]:
    from flytekitplugins.aios_catalog import catalog
    from flytekitplugins.aios_core.errors import GovernanceDenied

    if report.decision == "promote":  # the report is a claim: the catalog says whether it was promoted
        name = report.candidate.model.partition("@")[0]
        current = catalog(settings).champion(name)
        if current is None or current.digest != report.candidate.digest:
            held = current.model_id if current is not None else "none"
            return "kept", [f"the report says promoted, but the catalog's champion of {name} is {held}"]
        return "promoted", list(report.reasons)
    if report.decision == "keep":
        return "kept", list(report.reasons)
    approved = [o for o in outcomes if o.approved and o.request_id == report.approval_request_id]
    if not approved:
        return "rejected", [f"{o.request_id}: {o.status} {o.reason}".strip() for o in outcomes] or ["no decision"]
    from tasks.evaluation.tasks import recorded_evidence

    name, _, version = report.candidate.model.partition("@")
    try:
        evidence = recorded_evidence(report, settings)  # the report is a claim: its evaluation record counts
        rid, actor = approved[0].request_id, settings.actor
        catalog(settings).promote(name, version, actor=actor, evidence=evidence, approval_request_id=rid)
    except GovernanceDenied as e:
        return "rejected", [str(e)]
    return "promoted", [f"approved by {', '.join(approved[0].approvers)}"]


@task(**GOVERNED, enable_deck=True)
def finish_promotion(
    report: EvaluationReport, outcomes: list[ApprovalOutcome], result: TrainResult, training_record: str
) -> RetrainSummary:
    """Promote the candidate when the approval after the gate is verified; summarize the run in a Deck.

    Args:
        report: evaluation and policy decision.
        outcomes: verified approval outcomes from the gate (empty when no approval was needed).
        result: the fine-tuning result (for the loss curve).
        training_record: audit record id of the training lineage record.
    """
    decision, reasons = _decide(report, outcomes, get_settings())  # this task's settings, passed down
    c = report.comparison
    summary = RetrainSummary(
        model_id=report.candidate.model, digest=report.candidate.digest, decision=decision, reasons=reasons,
        accuracy_delta=c.accuracy_delta, macro_f1_delta=c.macro_f1_delta,
        training_record=training_record, evaluation_record=report.audit_record_id,
        approval_request_id=report.approval_request_id,
    )  # fmt: skip
    rows = {"candidate": report.candidate.model, "start model": report.champion.model,
            "accuracy": f"{report.champion.accuracy:.4f} -> {report.candidate.accuracy:.4f}",
            "macro-F1": f"{report.champion.macro_f1:.4f} -> {report.candidate.macro_f1:.4f}",
            "McNemar p": report.comparison.mcnemar_p, "decision": decision, "reasons": "; ".join(reasons),
            "steps": result.steps, "resumed from step": result.resumed_from_step, "world size": result.world_size,
            "samples/s": round(result.samples / max(result.seconds, 1e-9), 1),
            "precision": result.precision}  # fmt: skip
    Deck("retraining", summary_html(rows) + loss_curve_html(result.losses, result.resumed_from_step))
    return summary
