"""Flyte tasks of the champion/challenger evaluation and of the governed promotion that follows it."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from flytekit import Deck, task
from flytekit.types.directory import FlyteDirectory

from flytekitplugins.aios_audit import AuditEvent, audit_log
from flytekitplugins.aios_core.context import code_version, current_execution
from flytekitplugins.aios_core.digest import digest_value
from flytekitplugins.aios_core.errors import GovernanceDenied
from flytekitplugins.aios_core.settings import Settings, get_settings
from tasks.evaluation.metrics import ModelFigures, mcnemar_exact, no_skill, paired_bootstrap
from tasks.evaluation.report import Comparison, EvaluationReport, NoSkill, model_figures
from tasks.images import GOVERNED
from tasks.ml.classifier import TextClassifier


def _load(d: FlyteDirectory) -> TextClassifier:
    return TextClassifier.load(Path(d.download()))


def _proba(clf: TextClassifier, texts: list[str]) -> np.ndarray:
    from tasks.drift.text import embed_cached

    if clf.card.kind == "minilm-head":  # frozen base encoder: reuse the (cached) base embeddings
        return clf.predict_proba_embeddings(embed_cached(texts))
    return clf.predict_proba(texts)


def training_data_of(model: ModelFigures, settings: Settings) -> list[str]:
    """The training data digests the catalog pins for ``model`` (its entry of that name, version and artifact
    digest); empty when the catalog holds no such entry. The digests in the artifact's own card are a claim of
    whoever built the folder handed in; the catalog's are what was registered."""
    from flytekitplugins.aios_catalog import catalog

    name, _, version = model.model.partition("@")
    entry = catalog(settings).find(name, version)
    return list(entry.training_data_digests) if entry is not None and entry.digest == model.digest else []


def drift_binding(
    record_id: str, test_digest: str, training_data: list[str], models: tuple[str, str], settings: Settings
) -> dict[str, str]:
    """The seals behind drift check ``record_id`` for the candidate of ``models`` ((candidate, champion) artifact
    digests): ``split``, the intact ``kind="dataset"`` record of the pack step that drew the check's reference rows
    (one of the candidate's ``training_data``) as training rows and the rows whose digest is ``test_digest`` as
    held-out rows, and ``trained``, the intact ``kind="trained"`` record of the step that trained the candidate on
    that split's training rows. Empty when the check is not about those rows or no steps sealed them (both found
    through the lineage index's ``output_of`` edges, each record read and checked from the log)."""
    from flytekitplugins.aios_audit.edges import EdgeIndex
    from flytekitplugins.aios_catalog.evidence import drift_reference, split_training_rows, trained_binds

    store = audit_log(settings)
    reference = drift_reference(store, record_id, test_digest, training_data)
    if not reference or not _strict_enough(store, record_id):
        return {}
    index = EdgeIndex.for_store(store, settings.state_dir)
    try:
        index.catch_up(store)
        splits = [rid for rid, rel, _seq in index.parents(reference) if rel == "output_of"]
        trainings = [rid for rid, rel, _seq in index.parents(models[0]) if rel == "output_of"]
    finally:
        index.close()
    for split in splits:
        rows = split_training_rows(store, split, test_digest)
        if reference not in rows:
            continue
        for trained in trainings:
            if trained_binds(store, trained, models[0], rows, models[1]):
                return {"split": split, "trained": trained}
    return {}


def _strict_enough(store: Any, record_id: str) -> bool:
    """Whether drift check ``record_id`` decided at thresholds no looser than the pack's (``Thresholds()``: effect
    sizes at most, the significance level at least) on batches a sealed quality validation passed. The thresholds
    are the check's launch inputs: a check run at ``psi_threshold=1e9`` records ``no_drift`` for any data, and
    counted; a check recorded before ``measure_drift`` required the seal (``kind="quality"``, its parent) may have
    been measured on quality reports typed by hand."""
    from dataclasses import asdict

    from tasks.drift.check import drift_sealed
    from tasks.drift.effect_size import Thresholds

    rec = store.get(record_id)
    used = rec.event.attributes.get("thresholds") if rec is not None else None
    if rec is None or not isinstance(used, dict) or not drift_sealed(store, rec):
        return False
    pack = asdict(Thresholds())
    try:
        looser = [k for k in ("psi", "js", "wasserstein") if not float(used[k]) <= pack[k]]
        looser += ["alpha"] * (not float(used["alpha"]) >= pack["alpha"])
    except (KeyError, TypeError, ValueError):
        return False
    return not looser


def recorded_evidence(report: EvaluationReport, settings: Settings) -> dict[str, object]:
    """The promotion evidence for ``report``'s candidate as the trail recorded it (``aios_catalog.evidence``):
    the report handed in is a claim; its evaluation record, the catalog entry it names and the current champion
    are what count.

    Raises:
        GovernanceDenied: no evaluation record, or one about another artifact, champion or figures.
    """
    from flytekitplugins.aios_catalog import catalog

    cat = catalog(settings)
    name, _, version = report.candidate.model.partition("@")
    entry = cat.find(name, version)
    if entry is None:
        msg = f"{report.candidate.model} (evaluated in {report.audit_record_id}) is not in the catalog; register it"
        raise GovernanceDenied(msg, reason_code="no_evidence")
    return cat.promotion_evidence(entry, report.evidence())  # bound to the record's model, digest and champion


MIN_TEST_ROWS = 20
"""Fewest held-out rows an evaluation accepts: fewer cannot show a difference (McNemar, bootstrap)."""


def _check_test(test: pd.DataFrame, labels: list[str]) -> None:
    """Refuse held-out rows that cannot be scored, naming what is wrong (never a TypeError or KeyError)."""
    if len(test) < MIN_TEST_ROWS:
        msg = f"{len(test)} held-out row(s): an evaluation needs at least {MIN_TEST_ROWS} labelled rows"
        raise ValueError(msg)
    bad = [(i, v) for i, v in enumerate(test["label"].tolist()) if not isinstance(v, str) or v not in labels]
    if bad:
        shown = ", ".join(f"row {i}: {v!r}" for i, v in bad[:5])
        msg = f"{len(bad)} held-out row(s) have a label the models do not know ({shown}); use one of {labels}"
        raise ValueError(msg)


@task(**GOVERNED, enable_deck=True)
def evaluate_pair(
    candidate: FlyteDirectory,
    champion: FlyteDirectory,
    test: pd.DataFrame,
    dataset: str,
    drift_record: str,
    alpha: float,
    latency_sample: int,
    cpu_price_per_hour: float,
) -> EvaluationReport:
    """Score candidate and champion on the same held-out rows; Deck with plots; kind="evaluation" record.

    Args:
        candidate: artifact folder of the challenger.
        champion: artifact folder of the current champion.
        test: held-out labelled rows (columns ``text``, ``label``).
        dataset: dataset label.
        drift_record: audit record id of the candidate's drift check: it passes only when it found no drift
            between the candidate's training rows (as the catalog pins them) and ``test``; empty fails.
        alpha: significance level of the McNemar test.
        latency_sample: documents timed per model for latency and cost.
        cpu_price_per_hour: USD per vCPU-hour for the cost model.
    """
    from flytekitplugins.aios_catalog.evidence import EVALUATION_ALPHA
    from tasks.evaluation.plots import confusion_matrices, reliability_diagram, summary_table

    # each written as what holds, so NaN fails it: a NaN alpha made no difference significant, a NaN price every cost
    if not 0 < alpha <= EVALUATION_ALPHA:  # a launch input: stricter than the pack's level, never looser
        msg = (
            f"alpha={alpha!r}: use a significance level above 0 and at most the pack's {EVALUATION_ALPHA} (a looser "
            "level calls more differences significant than the pack's promotion rule allows)"
        )
        raise ValueError(msg)
    if not 0 <= cpu_price_per_hour < math.inf:
        raise ValueError(f"cpu_price_per_hour={cpu_price_per_hour!r}: use a price of 0 or more, in USD a vCPU-hour")
    if latency_sample < 1:
        raise ValueError(f"latency_sample={latency_sample}: time at least 1 document per model")
    from flytekitplugins.aios_catalog.evidence import drift_passed

    settings = get_settings()  # this task's entry point: resolved once, passed down
    missing = [c for c in ("text", "label") if c not in test.columns]
    if missing:
        msg = f"the held-out rows lack column(s) {missing} (they have {list(map(str, test.columns))}); give text, label"
        raise ValueError(msg)
    cand, champ = _load(candidate), _load(champion)
    texts = test["text"].astype(str).tolist()
    labels = champ.labels
    if cand.labels != labels:
        msg = f"candidate labels {cand.labels} differ from champion labels {labels}"
        raise ValueError(msg)
    _check_test(test, labels)
    y = np.array([labels.index(v) for v in test["label"]])
    p_cand, p_champ = _proba(cand, texts), _proba(champ, texts)
    timed = texts[:latency_sample]
    f_cand = model_figures(cand, p_cand, y, timed, cpu_price_per_hour)
    f_champ = model_figures(champ, p_champ, y, timed, cpu_price_per_hour)
    training = training_data_of(f_cand, settings)  # the drift check's reference must be these rows
    test_digest = digest_value(test)
    models = (f_cand.digest, f_champ.digest)
    binding = drift_binding(drift_record, test_digest, training, models, settings)  # the seals behind the check
    a, b = p_champ.argmax(axis=1), p_cand.argmax(axis=1)
    n01, n10, p = mcnemar_exact(y, a, b)
    # the floor no launcher chooses: with no champion in the catalog, the folder handed in as `champion` is the
    # launcher's pick (an inverted head made any candidate look far better); the catalog then judges on this
    floor_label, floor_acc, floor_f1 = no_skill(y, len(labels))
    floor = NoSkill(label=labels[floor_label], accuracy=round(floor_acc, 6), macro_f1=round(floor_f1, 6))
    comp = Comparison(
        accuracy_delta=round(f_cand.accuracy - f_champ.accuracy, 6),
        macro_f1_delta=round(f_cand.macro_f1 - f_champ.macro_f1, 6),
        ece_delta=round(f_cand.ece - f_champ.ece, 6),
        champion_only_correct=n01,
        candidate_only_correct=n10,
        mcnemar_p=p,
        bootstrap_ci=[round(v, 6) for v in paired_bootstrap(y, a, b)],
        significant=p < alpha,
        alpha=alpha,
    )
    report = EvaluationReport(
        dataset=dataset,
        n_test=len(test),
        test_digest=test_digest,
        candidate=f_cand,
        champion=f_champ,
        comparison=comp,
        drift_passed=drift_passed(audit_log(settings), drift_record, test_digest, training, binding, models),
        no_skill=floor,
    )
    event = AuditEvent(
        kind="evaluation",
        actor=settings.actor,
        status="evaluated",
        subject=f_cand.model,
        execution=current_execution(),
        code_version=code_version(settings.code_version),
        models=[cand.ref, champ.ref],
        inputs={"test": report.test_digest},
        parents=[drift_record] if drift_record else [],
        attributes={
            "candidate": f_cand.model_dump(),
            "champion": f_champ.model_dump(),
            "comparison": comp.model_dump(),
            "drift_passed": report.drift_passed,
            "candidate_training_data": training,
            "drift_binding": binding,
            "no_skill": floor.model_dump(),
            "dataset": dataset,
        },
    )
    report.audit_record_id = audit_log(settings).append(event).record_id
    Deck("evaluation", summary_table(report) + reliability_diagram(report) + confusion_matrices(report))
    return report


@task(**GOVERNED)
def decide_promotion(report: EvaluationReport) -> EvaluationReport:
    """Ask the catalog to promote the candidate under policy promote_model; open the approval it asks for.

    Args:
        report: the evaluation; its figures are the policy's evidence.
    """
    from flytekitplugins.aios_approvals import open_request
    from flytekitplugins.aios_approvals.evaluate import Env
    from flytekitplugins.aios_catalog import ApprovalRequired, catalog

    settings = get_settings()  # this task's entry point: resolved once, passed down
    name, _, version = report.candidate.model.partition("@")
    actor = settings.actor
    current = catalog(settings).champion(name)
    if current is not None and current.digest != report.champion.digest:
        report.decision = "keep"
        report.reasons = [f"evaluated against {report.champion.model}, but the champion is {current.model_id}"]
        return report
    evidence = recorded_evidence(report, settings)  # the report is a claim: the trail's figures are what count
    try:
        catalog(settings).promote(name, version, actor=actor, evidence=evidence)
        report.decision, report.reasons = "promote", ["policy allowed the promotion"]
    except ApprovalRequired as e:
        req = e.decision.approval
        assert req is not None
        report.approval_request_id = open_request(
            req.gate,
            req.risk,
            report.candidate.model,
            summary=evidence,
            requester=actor,
            reason=req.reason,
            evidence={"evaluation": report.audit_record_id, "policy_decision": e.decision.audit_record_id},
            env=Env.load(settings),
        )
        report.decision, report.reasons = "needs_approval", list(e.decision.reasons)
    except GovernanceDenied as e:
        report.decision, report.reasons = "keep", [str(e)]
    return report


@task(**GOVERNED)
def promote_approved(evaluation_record: str, approval_request_id: str) -> str:
    """Promote the evaluated candidate once its approval request is approved (evidence read from the trail).

    Args:
        evaluation_record: audit record id of the evaluation (its figures are the evidence).
        approval_request_id: the approved request (``apr-...``).
    """
    from flytekitplugins.aios_catalog import catalog
    from flytekitplugins.aios_catalog.evidence import recorded_evaluation

    settings = get_settings()  # this task's entry point: resolved once, passed down
    recorded = recorded_evaluation(audit_log(settings), evaluation_record)
    name, _, version = recorded.model_id.partition("@")
    # the catalog re-reads the record, binds it to the entry's artifact and the current champion
    entry = catalog(settings).promote(
        name, version, actor=settings.actor, evidence=recorded.evidence, approval_request_id=approval_request_id
    )
    return entry.model_id
