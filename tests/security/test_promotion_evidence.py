"""Promotion acts on the audit trail's evaluation, not on the report handed to the step (defects 2, 3, 4, 10).

Real VADER heads, real flytekit local execution, the pack's Cedar policy and signed approvals. Each case is what an
attacker with launch rights can hand a promotion step: a report typed by hand, a model folder that names another
catalog version, a drift check about other data, an approval given while another champion was crowned.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from flytekit.types.directory import FlyteDirectory

from flytekitplugins.aios_approvals import decide
from flytekitplugins.aios_approvals.evaluate import Env
from flytekitplugins.aios_approvals.models import ApprovalOutcome
from flytekitplugins.aios_catalog import catalog
from flytekitplugins.aios_core.settings import get_settings

NAME = "vader-sentiment"
pytestmark = pytest.mark.slow


def _approve(rid: str, who: str) -> None:
    assert decide(rid, who, "approve", reason="figures reviewed", env=Env.load(get_settings())).accepted


def test_promotion_re_reads_its_evidence_and_binds_it_to_the_catalog_entry(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from tasks.evaluation.tasks import decide_promotion
    from tasks.training.promotion import _decide
    from workflows.drift import check_drift
    from workflows.evaluation import evaluate_model, promote_after_approval, vader_models

    monkeypatch.setenv("AIOS_PRINCIPAL", "service:retraining")
    s = vader_models(n_weak=80, n_strong=400, n_test=300)
    drift_args = {"dataset": "vader-tweets", "suite": "vader_text", "columns": ["score"], "text_column": "text"}
    drift = check_drift(reference=s.train, current=s.test, text_sample=150, **drift_args)
    assert not drift.drifted
    common = {"test": s.test, "drift_record": drift.audit_record_id, "latency_sample": 8}

    # 4. a no_drift record about other rows (here: the training rows against themselves) is not this test's check
    other = check_drift(reference=s.train, current=s.train, text_sample=150, **drift_args)
    assert not other.drifted
    unbound = evaluate_model(
        candidate=s.strong, champion=s.baseline, **dict(common, drift_record=other.audit_record_id)
    )
    assert not unbound.drift_passed and unbound.decision == "keep", unbound.reasons

    # two requests opened while the name has no champion: weak vs baseline, strong vs baseline
    first = evaluate_model(candidate=s.weak, champion=s.baseline, **common)
    strong = evaluate_model(candidate=s.strong, champion=s.baseline, **common)
    assert first.decision == strong.decision == "needs_approval"
    _approve(first.approval_request_id, "user:frank")
    _approve(strong.approval_request_id, "user:grace")
    promote_after_approval(evaluation_record=first.audit_record_id, approval_request_id=first.approval_request_id)
    assert catalog(get_settings()).champion(NAME).model_id == first.candidate.model

    # 10. the strong head was approved against the baseline; the champion is now the weak head: refused
    with pytest.raises(Exception, match="no longer the champion"):
        promote_after_approval(evaluation_record=strong.audit_record_id, approval_request_id=strong.approval_request_id)

    # 2. a worse challenger's report, its figures typed by hand: the step refuses instead of asking with them
    worse_split = vader_models(n_weak=12, n_strong=400, n_test=300)
    worse = evaluate_model(candidate=worse_split.weak, champion=s.weak, **common)
    assert worse.decision == "keep" and worse.comparison.accuracy_delta < 0
    forged = worse.model_copy(deep=True)
    forged.comparison.accuracy_delta, forged.comparison.significant = 0.25, True
    forged.candidate.accuracy, forged.drift_passed, forged.decision = 0.99, True, "pending"
    with pytest.raises(Exception, match="differs from evaluation record"):
        decide_promotion(report=forged)
    # ... and finish_promotion, handed the forged report with an approval of another request, promotes nothing
    granted = ApprovalOutcome(request_id="apr-x", gate="model-promotion", status="approved", approvers=["user:grace"])
    forged.decision, forged.approval_request_id = "needs_approval", "apr-x"
    decision, reasons = _decide(forged, [granted], get_settings())
    assert decision == "rejected", reasons
    forged.decision = "promote"  # ... and a summary that says "promoted" is what the catalog says
    decision, reasons = _decide(forged, [], get_settings())
    assert decision == "kept" and "the catalog's champion" in reasons[0], reasons
    assert catalog(get_settings()).champion(NAME).model_id == first.candidate.model

    # 3. a folder whose aios_model.json names the weak version holds other weights: not the catalog's artifact
    disguised = tmp_path / "disguised"
    shutil.copytree(Path(s.strong.download()), disguised)
    manifest = disguised / "aios_model.json"
    card = json.loads(manifest.read_text())
    card["version"] = json.loads((Path(worse_split.weak.download()) / "aios_model.json").read_text())["version"]
    manifest.write_text(json.dumps(card))
    with pytest.raises(Exception, match="not the catalog's"):
        evaluate_model(candidate=FlyteDirectory(str(disguised)), champion=s.weak, **common)
    assert catalog(get_settings()).champion(NAME).model_id == first.candidate.model
