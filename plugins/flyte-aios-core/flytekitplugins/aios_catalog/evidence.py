"""Promotion evidence re-established from the audit trail, never taken from the report handed in.

A promotion step receives an ``EvaluationReport`` (or an evidence dict) as input; anyone with launch rights can
type one by hand, with any figures, any ``drift_passed`` and any model. What the catalog acts on is read here from
the ``kind="evaluation"`` record the evidence names: the record must be intact, must be the evaluation of exactly
the catalog entry being promoted (same name, version and artifact digest) against the current champion, and its
drift check must be a recorded ``no_drift`` about the very rows the models were evaluated on.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from flytekitplugins.aios_audit import AuditStore
from flytekitplugins.aios_audit.records import intact
from flytekitplugins.aios_core.errors import GovernanceDenied


@dataclass(frozen=True)
class RecordedEvaluation:
    """One evaluation as the trail recorded it."""

    record_id: str
    model_id: str
    candidate_digest: str
    champion_digest: str
    champion_model: str
    test_digest: str
    evidence: dict[str, Any]


EVALUATION_ALPHA = 0.05
"""The pack's significance level for an evaluation's McNemar test. An evaluation may test at a stricter level, never a
looser one: ``alpha`` is a launch input, and an evaluation at ``alpha=0.999`` recorded ``significant`` for p = 0.75,
which the promotion evidence and the approver's summary repeated. The evidence re-derives ``significant`` from the
recorded p-value at this level whatever the record says."""

SPLIT_KIND, SPLIT_STATUS = "dataset", "split"
"""The record a pack step seals the rows it drew in: training rows and held-out rows of one split, disjoint."""
TRAINING_ROLES = ("train", "reference_rows", "train_head")
"""The ``outputs`` of a split's seal that are training rows (``test`` is the held-out rows, ``feedback`` a file)."""
TRAINED_KIND = "trained"
"""The record the step that trained a model seals it in: ``outputs.model`` the artifact digest, ``inputs.train`` the
rows it was trained on, ``inputs.start`` the model it started from (none for a head trained from scratch)."""


def split_training_rows(store: AuditStore, split: str, test_digest: str) -> set[str]:
    """The training rows (digests, by :data:`TRAINING_ROLES`) of ``split`` when it is an intact split seal whose
    held-out rows are ``test_digest``; empty otherwise. A drift check's two batches were drawn apart by one pack step
    when its reference rows are among them."""
    rec = store.get(split) if split and test_digest else None
    if rec is None or not intact(rec) or rec.event.kind != SPLIT_KIND or rec.event.status != SPLIT_STATUS:
        return set()
    out = rec.event.outputs
    return {out[role] for role in TRAINING_ROLES if out.get(role)} if out.get("test") == test_digest else set()


def drift_reference(store: AuditStore, drift_record: str, test_digest: str, training_data: Collection[str]) -> str:
    """The ``reference_rows`` digest of ``drift_record`` when it is an intact drift check that found no drift between
    one of ``training_data`` (the candidate's ``training_data_digests`` as the catalog pins them: its
    ``inputs.reference_rows``) and exactly the rows whose digest is ``test_digest`` (its ``inputs.current``); ""
    for any other record, even a ``no_drift`` about other data or against another reference (the held-out rows
    against themselves)."""
    rec = store.get(drift_record) if drift_record and test_digest else None
    if rec is None or not intact(rec) or rec.event.kind != "drift" or rec.event.status != "no_drift":
        return ""
    reference = str(rec.event.inputs.get("reference_rows") or "")
    return reference if rec.event.inputs.get("current") == test_digest and reference in training_data else ""


def trained_binds(store: AuditStore, trained: str, candidate: str, rows: set[str], champion: str) -> bool:
    """True when ``trained`` is an intact seal of the step that trained ``candidate`` (its artifact digest) on one of
    ``rows`` (a split's training rows, :func:`split_training_rows`), from no start model or from ``champion`` (the
    model it is evaluated against: a retraining starts from the champion). An artifact trained elsewhere (on the
    held-out rows, say) and registered with any card has no such seal."""
    rec = store.get(trained) if trained and candidate and rows else None
    if rec is None or not intact(rec) or rec.event.kind != TRAINED_KIND:
        return False
    ins = rec.event.inputs
    started = ins.get("start", "") in ("", champion)
    return rec.event.outputs.get("model") == candidate and ins.get("train") in rows and started


def drift_passed(
    store: AuditStore,
    drift_record: str,
    test_digest: str,
    training_data: Collection[str],
    binding: Mapping[str, str],
    models: tuple[str, str],
) -> bool:
    """True only when ``drift_record`` compared the candidate's own training rows with exactly the tested rows
    (:func:`drift_reference`), ``binding["split"]`` is the seal of the step that drew those two batches apart
    (:func:`split_training_rows`) and ``binding["trained"]`` the seal of the step that trained the candidate on that
    split's training rows (:func:`trained_binds`; ``models`` is (candidate, champion) by artifact digest): a catalog
    entry's training digests are its registrant's word, the seals are not. Fail closed."""
    reference = drift_reference(store, drift_record, test_digest, training_data)
    rows = split_training_rows(store, str(binding.get("split") or ""), test_digest) if reference else set()
    candidate, champion = models
    return reference in rows and trained_binds(store, str(binding.get("trained") or ""), candidate, rows, champion)


def _refuse(msg: str, code: str) -> GovernanceDenied:
    return GovernanceDenied(msg, reason_code=code)


def recorded_evaluation(store: AuditStore, record_id: str) -> RecordedEvaluation:
    """The evaluation ``record_id`` as recorded, with its evidence (``drift_passed`` re-derived from its drift
    check's own record, the training data the catalog pinned for the candidate when it was evaluated and the split
    and training seals it found: an evaluation recorded before it named them passes no drift check, so evaluate such
    a candidate again).

    Raises:
        GovernanceDenied: ``no_evidence`` (no such evaluation record) or ``evidence_altered`` (it does not re-hash).
    """
    rec = store.get(record_id) if record_id else None
    if rec is None or rec.event.kind != "evaluation":
        shown = record_id or "(none given)"
        raise _refuse(f"{shown} is not an evaluation record in the audit trail; evaluate first", "no_evidence")
    if not intact(rec):
        raise _refuse(f"evaluation record {record_id} does not re-hash to its id", "evidence_altered")
    ev = rec.event
    a = ev.attributes
    try:
        cand, champ, comp = a["candidate"], a["champion"], a["comparison"]
        test_digest = str(ev.inputs["test"])
        training = [str(d) for d in a.get("candidate_training_data", [])]  # the catalog's, when it evaluated
        binding = a.get("drift_binding") or {}  # the seals that drew the batches apart and trained the candidate
        models = (str(cand["digest"]), str(champ["digest"]))
        evidence = {
            "accuracy_delta": comp["accuracy_delta"],
            "macro_f1_delta": comp["macro_f1_delta"],
            # as recorded and at the pack's level, from the recorded p: an older record holds no alpha of its own
            "significant": comp["significant"] is True and float(comp["mcnemar_p"]) < EVALUATION_ALPHA,
            "mcnemar_p": comp["mcnemar_p"],
            "drift_passed": bool(a["drift_passed"])
            and any(drift_passed(store, p, test_digest, training, binding, models) for p in ev.parents),
            "candidate_accuracy": cand["accuracy"],
            "champion_accuracy": champ["accuracy"],
            "champion_model": str(champ["model"]),  # what it was compared with, for whoever signs off
            "champion_digest": str(champ["digest"]),
            "evaluation_record": rec.record_id,
            "test_digest": test_digest,
        }
        floor = a.get("no_skill")  # the held-out rows' no-skill floor (evaluations recorded since 2026-12-05)
        if floor is not None:
            evidence["no_skill_delta"] = round(float(cand["accuracy"]) - float(floor["accuracy"]), 6)
            evidence["no_skill_accuracy"] = float(floor["accuracy"])
        found = RecordedEvaluation(
            rec.record_id, ev.subject, str(cand["digest"]), str(champ["digest"]), str(champ["model"]),
            test_digest, evidence,
        )  # fmt: skip
    except (KeyError, TypeError, ValueError) as e:
        raise _refuse(f"evaluation record {record_id} lacks {e}; it is not evidence", "no_evidence") from e
    return found


def check_evidence(
    recorded: RecordedEvaluation, model_id: str, digest: str, champion_digest: str | None, given: dict[str, Any]
) -> dict[str, Any]:
    """The recorded evidence for promoting ``model_id`` (artifact ``digest``) over the champion whose digest is
    ``champion_digest`` (None: the name has none); ``given`` is what the caller handed in, and must agree.

    Raises:
        GovernanceDenied: ``evidence_for_other_model``, ``champion_changed`` or ``evidence_mismatch``.
    """
    rid = recorded.record_id
    if recorded.model_id != model_id or recorded.candidate_digest != digest:
        msg = (
            f"evaluation {rid} scored {recorded.model_id} ({recorded.candidate_digest[:19]}), not the catalog's "
            f"{model_id} ({digest[:19]}); evaluate the registered artifact"
        )
        raise _refuse(msg, "evidence_for_other_model")
    if champion_digest is not None and recorded.champion_digest != champion_digest:
        msg = f"evaluation {rid} compared against {recorded.champion_model}, which is no longer the champion"
        raise _refuse(msg, "champion_changed")
    differ = sorted(k for k, v in recorded.evidence.items() if k in given and given[k] != v)
    if differ:
        msg = f"the evidence handed in differs from evaluation record {rid} in {', '.join(differ)}; nothing promoted"
        raise _refuse(msg, "evidence_mismatch")
    if champion_digest is None:
        # a first champion: what it was compared with is a folder its launcher chose (an inverted head made any
        # candidate look far better), so it must also beat the held-out rows' no-skill floor, which no one chooses
        # (the policy reads `no_skill_delta`, model-promote-beats-no-skill)
        if "no_skill_delta" not in recorded.evidence:
            msg = (
                f"{model_id} would be the first champion of its name, and evaluation {rid} records no no-skill floor "
                "to judge it against (it was recorded before evaluations kept one): evaluate it again"
            )
            raise _refuse(msg, "no_skill_floor_missing")
        return {**recorded.evidence, "first_champion": True}
    return dict(recorded.evidence)
