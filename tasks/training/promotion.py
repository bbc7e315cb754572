"""Catalog steps of retraining: register the candidate with its lineage, and finish a governed promotion.

The promotion itself is the evaluation workflow's (``tasks.evaluation.tasks.decide_promotion``: policy
``promote_model`` via the catalog). Where the policy asks for a ``model-promotion`` approval, the
retraining workflow waits on the approval gate and :func:`finish_promotion` promotes only with a
verified, authorized approval of exactly this model.
"""

from __future__ import annotations

import os
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
from tasks.training.data import DataLineage, sealed_split
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
    models = settings.state_dir / "models"
    target = models / name / version
    _check_slot(models, name, version)
    (models / name).mkdir(parents=True, exist_ok=True, mode=0o700)
    _check_slot(models, name, version)
    try:
        target.mkdir(mode=0o700)  # exclusive: this registration makes the slot, or it holds what it held
    except FileExistsError:
        pass  # an earlier registration's copy (or another's bytes): the digest check after this says which
    else:
        shutil.copytree(Path(model.download()), target, dirs_exist_ok=True)
    _check_slot(models, name, version)  # still a folder of its own after the copy (not swapped for a link meanwhile)
    return str(target)


def _check_slot(models: Path, name: str, version: str) -> None:
    """Refuse a model slot (``models/<name>/<version>``) that is a symbolic link, or lies under one, or is not a
    folder: a link planted there made the catalog's entry point outside the state folder (whose bytes anyone able
    to write there could change), and a dangling one failed the registration with a bare ``FileExistsError``.

    Raises:
        GovernanceDenied: ``model_slot_taken``, naming the path.
    """
    from flytekitplugins.aios_core.errors import GovernanceDenied

    slot = models / name / version
    bad = [p for p in (models, models / name, slot) if p.is_symlink() or (p.exists() and not p.is_dir())]
    if not bad and slot.is_dir():  # what the slot holds: folders and regular files of its own, no link out
        bad = [
            Path(root) / e for root, dirs, files in os.walk(slot) for e in [*dirs, *files] if _not_plain(Path(root) / e)
        ]
    if bad:
        msg = (
            f"{bad[0]} is a symbolic link or not a folder: a model's slot must be a folder of the state folder's "
            "own, holding folders and regular files only; remove it and register again"
        )
        raise GovernanceDenied(msg, reason_code="model_slot_taken")


def _not_plain(path: Path) -> bool:
    """Whether ``path`` is a link or anything but a folder or a regular file of one name (a slot whose files were
    links, symbolic or hard, to a copy outside the state folder was registered: reviews of 2026-12-06)."""
    import stat

    st = os.lstat(path)  # a hard link is a regular file whose bytes another name outside can change
    return not (stat.S_ISDIR(st.st_mode) or (stat.S_ISREG(st.st_mode) and st.st_nlink == 1))


ON_DEMAND = "on demand"


def _names_retraining(target: str) -> bool:
    """Whether ``target`` (a drift decision's ``target``) is this retraining workflow or a launch plan of it."""
    from tasks.drift.monitor import DEFAULT_TARGET, resolve_target

    if target == DEFAULT_TARGET:
        return True
    try:
        entity, retrain = resolve_target(target), resolve_target(DEFAULT_TARGET)
    except (ImportError, TypeError, ValueError):
        return False
    return entity is retrain or getattr(entity, "workflow", None) is retrain


def _recorded_trigger(trigger: str, drift_record: str, holder: str, settings: Settings) -> tuple[str, list[str]]:
    """Why this retraining ran, as the trail says: (the trigger to record, the parent records of the training record).

    ``register_candidate`` is a task anyone with launch rights can start on its own, with any inputs: a made-up or
    unrelated ``drift_record`` became the training record's parent and any ``trigger`` text its stated reason. A
    drift record counts only as the trail's intact ``retrain_triggered`` decision to start this retraining workflow
    (:func:`tasks.drift.monitor.triggered_retraining`), and the trigger recorded is the reason that decision
    recorded; without one the retraining is on demand and its trigger is recorded as the launcher's own words. A
    decision another registration (not ``holder``) already claimed counts no more (one decision, one retraining).

    Raises:
        GovernanceDenied: ``no_evidence`` (no such decision), ``unsealed_quality``, ``trigger_used`` or
            ``trigger_mismatch`` (the trigger handed in is not the one the decision recorded); nothing is recorded.
    """
    from flytekitplugins.aios_audit import audit_log
    from flytekitplugins.aios_core.errors import GovernanceDenied
    from tasks.drift.monitor import DEFAULT_TARGET, triggered_retraining

    said = trigger.strip()
    if not drift_record:
        return (ON_DEMAND if said in ("", ON_DEMAND) else f"{ON_DEMAND}: {said}"), []
    found = audit_log(settings).get(drift_record)
    target = str(found.event.attributes.get("target") or "") if found is not None else ""
    wanted = target if _names_retraining(target) else DEFAULT_TARGET
    decided = triggered_retraining(drift_record, wanted, settings, holder=holder)
    recorded = str(decided.event.attributes.get("reason") or f"drift decision {decided.record_id}")
    if said not in ("", ON_DEMAND, recorded):
        msg = (
            f"trigger {said!r} is not the reason drift decision {decided.record_id} recorded ({recorded!r}); "
            "launch with that reason, or leave trigger_reason at its default"
        )
        raise GovernanceDenied(msg, reason_code="trigger_mismatch")
    return recorded, [decided.record_id]


def _trained_here(digest: str, name: str, lineage: DataLineage, settings: Settings) -> str:
    """The id of the intact seal the pack's training step wrote for exactly this artifact (``kind="trained"``: its
    digest, ``name@version``, trained on the split's training rows), else "".

    ``register_candidate`` is a task anyone with launch rights can start with any ``TrainResult``: it copied any
    folder handed in under the state's ``models/`` (a planted suite file once came in this way) and registered it
    as a candidate, with a training record saying it was trained on the sealed split."""
    from flytekitplugins.aios_audit.edges import EdgeIndex
    from flytekitplugins.aios_audit.records import intact
    from flytekitplugins.aios_catalog.evidence import TRAINED_KIND

    store = audit_log(settings)
    index = EdgeIndex.for_store(store, settings.state_dir)
    try:
        index.catch_up(store)
        producers = [rid for rid, rel, _seq in index.parents(digest) if rel == "output_of"]
    finally:
        index.close()
    for rid, rec in store.get_many(producers).items():
        ev = rec.event
        if (
            intact(rec)
            and ev.kind == TRAINED_KIND
            and ev.subject == f"{name}@{lineage.version}"
            and ev.outputs.get("model") == digest
            and ev.inputs.get("train") == lineage.train_digest
        ):
            return rid
    return ""


def _persist_verified(result: TrainResult, name: str, lineage: DataLineage, settings: Settings) -> tuple[str, str, str]:
    """Persist ``result.model`` where the catalog will point; return (uri, artifact digest of what was persisted,
    the id of the training step's seal of it).

    The digest handed in is a claim: the digest registered is the one computed here, of the bytes the catalog
    entry names. A candidate whose bytes are not the ones ``result.digest`` names is refused before anything is
    recorded (before it is copied, and again on the copy: a folder already under ``models/<name>/<version>``
    keeps its bytes), and so is one the pack's training step did not seal as trained on this split
    (:func:`_trained_here`), before it is copied.

    Raises:
        GovernanceDenied: ``model_digest_mismatch`` naming both digests, or ``untrained_artifact``; nothing is
            recorded.
    """
    from flytekitplugins.aios_catalog.entries import check_model_id
    from flytekitplugins.aios_core.errors import GovernanceDenied
    from tasks.ml.classifier import artifact_digest

    version = lineage.version
    check_model_id(name, version)  # before anything is downloaded or copied
    digest = artifact_digest(Path(result.model.download()))
    if digest != result.digest:
        msg = (
            f"candidate {name}@{version}: the artifact handed in has digest {digest}, not the {result.digest} the "
            "training result claims; register the artifact the training run produced"
        )
        raise GovernanceDenied(msg, reason_code="model_digest_mismatch")
    trained = _trained_here(digest, name, lineage, settings)
    if not trained:
        msg = (
            f"candidate {name}@{version}: no intact seal of the pack's training step says the artifact {digest} was "
            "trained as this version on this split's training rows; register what train_distributed produced for it"
        )
        raise GovernanceDenied(msg, reason_code="untrained_artifact")
    uri = _persist(result.model, name, version, settings)
    if "://" not in uri:
        stored = artifact_digest(Path(uri))
        if stored != digest:
            msg = (
                f"candidate {name}@{version}: {uri} already holds other bytes (digest {stored}, the artifact is "
                f"{digest}); a version names one artifact for good: retrain under a new version"
            )
            raise GovernanceDenied(msg, reason_code="model_digest_mismatch")
    return uri, digest, trained


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

    What stands behind the registration is re-established, not taken from the inputs: the digest registered is
    the one computed of the artifact as persisted (refused when ``result.digest`` names other bytes, or when the
    pack's training step did not seal those bytes as trained for this version on this split), and a
    ``drift_record`` counts only as the trail's decision to start this retraining workflow, whose recorded reason
    is the trigger (see :func:`_recorded_trigger`), and ``lineage`` must be the split ``prepare_data`` sealed
    (:func:`tasks.training.data.sealed_split`), whose digests the catalog then pins as the training data.

    Args:
        result: the fine-tuning result (artifact, digest, losses, throughput).
        lineage: data digests and counts.
        config: training hyper-parameters.
        name: catalog name.
        owner: accountable owner recorded in the catalog.
        trigger: why retraining ran (``on demand`` or the drift reason the decision recorded).
        drift_record: audit record id of the drift decision that triggered it ("" on demand).

    Raises:
        GovernanceDenied: ``model_digest_mismatch``, ``untrained_artifact``, ``no_evidence``, ``unsealed_quality``,
            ``trigger_used`` (the drift decision already started another retraining: another registration holds
            it, or another execution started a retraining on it), ``trigger_mismatch`` or
            ``unsealed_training_data``; nothing is recorded.
    """
    from flytekitplugins.aios_audit.stores import CLAIMS_ATTR, ClaimTaken, claim
    from flytekitplugins.aios_catalog import ModelEntry, catalog
    from flytekitplugins.aios_core.errors import GovernanceDenied
    from tasks.drift.monitor import registration_start_claims, trigger_claim

    settings = get_settings()  # this task's entry point: resolved once, passed down
    actor, holder, execution = settings.actor, f"{name}@{lineage.version}", current_execution()
    trigger, parents = _recorded_trigger(trigger, drift_record, holder, settings)  # the trail's, not the input's
    # one decision, one retraining: the training record claims the decision (a retry of this registration holds it)
    key = trigger_claim(parents[0]) if parents else ""
    fresh = bool(key) and key not in audit_log(settings).claim_holders([key])
    # ... and registers only in the execution that started it (start_retraining's claim; taken here when none is)
    claims = ([claim(key, holder)] if fresh else []) + (
        registration_start_claims(parents[0], execution, settings) if parents else []
    )
    parents.append(sealed_split(lineage, settings))  # the split prepare_data drew, not a lineage typed by hand
    uri, digest, trained = _persist_verified(result, name, lineage, settings)  # the bytes stored, not the claim
    parents.append(trained)  # the training step's seal of exactly these bytes
    figures = {k: v for k, v in asdict(result).items() if k not in ("model", "losses")}
    event = AuditEvent(
        kind="training", actor=actor, status="trained", subject=f"{name}@{lineage.version}",
        execution=execution, code_version=code_version(settings.code_version),
        models=[ModelRef(name=name, version=lineage.version, digest=digest)],
        inputs={"train": lineage.train_digest, "test": lineage.test_digest, "feedback": lineage.feedback_digest,
                "reference_rows": lineage.reference_rows_digest, "config": config.digest()},
        outputs={"model": digest}, parents=parents,
        attributes={"config": asdict(config), "result": figures, "losses": result.losses, "trigger": trigger,
                    "data": {k: v for k, v in asdict(lineage).items() if k != "feedback_rejected"},
                    "feedback_rejected_lines": len(lineage.feedback_rejected), "artifact_uri": uri,
                    **({CLAIMS_ATTR: claims} if claims else {})},
    )  # fmt: skip
    try:
        record = audit_log(settings).append(event)
    except ClaimTaken as e:  # another registration or execution claimed the decision since it was read
        msg = f"drift decision {parents[0]} already started a retraining ({e.holder}); nothing is registered"
        raise GovernanceDenied(msg, reason_code="trigger_used") from e
    # the VADER rows the training rows were drawn from too: a drift check counts only with them as its reference
    digests = [d for d in (lineage.train_digest, lineage.feedback_digest, lineage.reference_rows_digest) if d]
    entry = ModelEntry(
        name=name, version=lineage.version, digest=digest, training_data_digests=digests,
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
