"""Champion/challenger on real held-out VADER tweets with two real MiniLM heads; policy decides."""

from __future__ import annotations

import pytest

from flytekitplugins.aios_approvals.evaluate import Env
from flytekitplugins.aios_audit import audit_log
from flytekitplugins.aios_catalog import catalog
from flytekitplugins.aios_core.settings import get_settings

NAME = "vader-sentiment"


@pytest.mark.slow
def test_better_challenger_promoted_after_approval_worse_one_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    from flytekitplugins.aios_approvals import decide
    from workflows.drift import check_drift
    from workflows.evaluation import evaluate_model, promote_after_approval, vader_models

    monkeypatch.setenv("AIOS_PRINCIPAL", "service:retraining")
    s = vader_models(n_weak=80, n_strong=400, n_test=300)
    args = {"dataset": "vader-tweets", "suite": "vader_text", "columns": ["score"], "text_column": "text"}
    # each candidate's own training rows against the held-out rows (the weak head's are the strong one's first 80)
    weak_drift = check_drift(reference=s.train.head(80), current=s.test, text_sample=150, **args)
    drift = check_drift(reference=s.train, current=s.test, text_sample=150, **args)
    assert not drift.drifted and not weak_drift.drifted, drift.summary()
    common = {"test": s.test, "drift_record": drift.audit_record_id, "latency_sample": 16}

    # the name's first champion: the weak head against the majority-class baseline
    first = evaluate_model(
        candidate=s.weak, champion=s.baseline, **{**common, "drift_record": weak_drift.audit_record_id}
    )
    assert first.decision == "needs_approval" and first.drift_passed, (first.reasons, first.comparison)
    with pytest.raises(Exception, match=r"does not approve|approval"):  # pending is not approved
        promote_after_approval(evaluation_record=first.audit_record_id, approval_request_id=first.approval_request_id)
    assert decide(
        first.approval_request_id, "user:frank", "approve", reason="beats baseline", env=Env.load(get_settings())
    ).accepted
    promote_after_approval(evaluation_record=first.audit_record_id, approval_request_id=first.approval_request_id)
    weak_id = first.candidate.model
    assert catalog(get_settings()).champion(NAME).model_id == weak_id

    # a better challenger: significant gain, promoted only after a model approver signs off
    better = evaluate_model(candidate=s.strong, champion=s.weak, **common)
    c = better.comparison
    assert c.accuracy_delta > 0.05 and c.macro_f1_delta > 0.1 and c.significant and c.bootstrap_ci[0] > 0
    assert better.decision == "needs_approval" and catalog(get_settings()).champion(NAME).model_id == weak_id
    assert decide(
        better.approval_request_id, "user:grace", "approve", reason="figures reviewed", env=Env.load(get_settings())
    ).accepted
    promote_after_approval(evaluation_record=better.audit_record_id, approval_request_id=better.approval_request_id)
    assert catalog(get_settings()).champion(NAME).model_id == better.candidate.model
    assert catalog(get_settings()).get(NAME, weak_id.split("@")[1]).stage == "retired"

    # a worse challenger: the policy keeps it out, no approval is even asked
    worse_split = vader_models(n_weak=12, n_strong=400, n_test=300)
    worse = evaluate_model(candidate=worse_split.weak, champion=s.strong, **common)
    assert worse.comparison.accuracy_delta < 0
    assert worse.decision == "keep" and "beats the champion" in " ".join(worse.reasons)
    assert not worse.approval_request_id and catalog(get_settings()).champion(NAME).model_id == better.candidate.model

    # figures are in the audit record and reproduce the report
    rec = audit_log(get_settings()).get(better.audit_record_id)
    assert rec.event.kind == "evaluation"
    assert rec.event.attributes["comparison"]["mcnemar_p"] == c.mcnemar_p
    assert rec.event.attributes["candidate"]["latency_ms_p95"] == better.candidate.latency_ms_p95
    assert {m.name for m in rec.event.models} == {NAME}
    hist = catalog(get_settings()).history(NAME)
    assert [h.op for h in hist if h.to_stage == "champion"] == ["promote", "promote"]
    last_promotion = [h for h in hist if h.op == "promote"][-1]
    assert last_promotion.evidence["evaluation_record"] == better.audit_record_id
    assert last_promotion.approvals[0]["approvers"] == ["user:grace"]


@pytest.mark.slow
def test_evaluation_without_a_drift_check_is_not_promoted(monkeypatch: pytest.MonkeyPatch) -> None:
    from workflows.evaluation import evaluate_model, vader_models

    monkeypatch.setenv("AIOS_PRINCIPAL", "service:retraining")
    s = vader_models(n_weak=80, n_strong=400, n_test=300)
    report = evaluate_model(candidate=s.strong, champion=s.weak, test=s.test, latency_sample=8)
    assert not report.drift_passed and report.decision == "keep"
    assert "drift check" in " ".join(report.reasons)
