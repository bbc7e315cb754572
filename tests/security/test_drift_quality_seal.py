"""A drift check counts only on a sealed quality validation of exactly its two batches (known gap of 2026-12-05).

``measure_drift`` is a task anyone with launch rights can start on its own. It used to believe the quality reports
handed to it: a report typed by hand (``success: true`` and the batch's row count, no Great Expectations suite run)
let it record a check, ``no_drift`` included, that an evaluation then counted. Now ``check_quality`` seals a passed
validation in a ``kind="quality"`` record (the suite, the digests of the rows it validated), and ``measure_drift``
measures only when such a record stands behind each batch, naming it as the drift record's parent. Real flytekit
local execution, the pack's suite, real VADER rows.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from flytekitplugins.aios_audit import audit_log
from flytekitplugins.aios_core.errors import GovernanceDenied
from flytekitplugins.aios_core.settings import get_settings, reset_settings

ARGS = {"dataset": "vader-tweets", "columns": ["score"], "text_column": "", "model_dir": "", "psi_threshold": 0.03}
ARGS |= {"js_threshold": 0.1, "wasserstein_threshold": 0.2, "text_sample": 10}


def _rows(n: int, offset: int = 0) -> pd.DataFrame:
    from tasks.evaluation.data import binarize, load_vader

    data = binarize(load_vader("tweets", get_settings().data_dir))
    return data.iloc[offset : offset + n][["id", "text", "label", "score"]].reset_index(drop=True)


def test_a_passed_quality_report_typed_by_hand_is_no_check(monkeypatch: pytest.MonkeyPatch) -> None:
    from tasks.drift.check import check_quality, measure_drift
    from tasks.drift.report import QualityReport

    monkeypatch.setenv("AIOS_PRINCIPAL", "service:retraining")
    reference, current = _rows(200), _rows(200, offset=200)
    typed = [
        QualityReport(suite="vader_text", batch=b, success=True, evaluated=9, rows=len(f))
        for b, f in (("reference", reference), ("current", current))
    ]
    with pytest.raises(GovernanceDenied, match="not a sealed validation") as refused:
        measure_drift(reference=reference, current=current, quality=typed, **ARGS)
    assert refused.value.reason_code == "unsealed_quality"
    store = audit_log(get_settings())
    assert [r for r in store.scan() if r.event.kind == "drift"] == []

    # a real, sealed validation of other rows does not stand in for these
    other = check_quality(reference=_rows(200, offset=400), current=current, suite="vader_text", dataset="vader-tweets")
    assert all(q.audit_record_id for q in other)
    with pytest.raises(GovernanceDenied, match="reference batch is not a sealed validation"):
        measure_drift(reference=reference, current=current, quality=other, **ARGS)
    # nor does a sealed record id copied onto a report typed by hand for rows it did not validate
    forged = [q.model_copy(update={"audit_record_id": other[0].audit_record_id}) for q in typed]
    with pytest.raises(GovernanceDenied, match="reference batch is not a sealed validation"):
        measure_drift(reference=reference, current=current, quality=forged, **ARGS)
    assert [r for r in store.scan() if r.event.kind == "drift"] == []

    # the real validation of exactly these rows: measured, and the drift record names the seal as its parent
    sealed = check_quality(reference=reference, current=current, suite="vader_text", dataset="vader-tweets")
    report = measure_drift(reference=reference, current=current, quality=sealed, **ARGS)
    record = store.get(report.audit_record_id)
    assert record is not None and record.event.parents == [sealed[0].audit_record_id]
    seal = store.get(sealed[0].audit_record_id)
    assert seal is not None and seal.event.kind == "quality" and seal.event.status == "passed"
    assert seal.event.inputs == {k: record.event.inputs[k] for k in ("reference", "current")}
    assert seal.event.attributes["suite"] == "vader_text"


@pytest.mark.slow
def test_an_evaluation_counts_no_drift_check_without_its_quality_seal(monkeypatch: pytest.MonkeyPatch) -> None:
    """A drift record that names no sealed quality validation of its batches (one recorded before ``measure_drift``
    required it, measured on reports typed by hand) passes no evaluation; the same check with its seal does."""
    from workflows.drift import check_drift
    from workflows.evaluation import evaluate_model, vader_models

    monkeypatch.setenv("AIOS_PRINCIPAL", "service:retraining")
    s = vader_models(n_weak=80, n_strong=400, n_test=300)
    drift = check_drift(
        reference=s.train, current=s.test, text_sample=150, dataset="vader-tweets", suite="vader_text",
        columns=["score"], text_column="text",
    )  # fmt: skip
    store = audit_log(get_settings())
    rec = store.get(drift.audit_record_id)
    assert rec is not None and rec.event.status == "no_drift" and len(rec.event.parents) == 1
    unsealed = store.append(rec.event.model_copy(update={"parents": []}))
    evaluated = {"candidate": s.strong, "champion": s.baseline, "test": s.test, "latency_sample": 8}
    unchecked = evaluate_model(drift_record=unsealed.record_id, **evaluated)
    assert not unchecked.drift_passed and unchecked.decision == "keep", unchecked.reasons
    checked = evaluate_model(drift_record=drift.audit_record_id, **evaluated)
    assert checked.drift_passed and checked.decision == "needs_approval", checked.reasons


def test_a_suite_is_a_name_in_the_deployments_config_and_validates_something(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Review of 2026-12-05 (third): the suite is a launch input, and it was joined onto ``config/expectations/``
    as given. A path to a file the launcher had planted (``register_candidate`` copies any folder it is handed
    under the state's ``models/``) holding ``{"expectations": []}`` "passed" a batch the pack's suite refuses, the
    seal said the rows were validated, and an evaluation counted the check. A suite is now a name, and a suite that
    evaluates no expectation passes nothing."""
    from tasks.drift.check import check_quality

    monkeypatch.setenv("AIOS_PRINCIPAL", "service:retraining")
    reference, current = _rows(200), _rows(200, offset=200)
    planted = tmp_path / "nothing.json"
    planted.write_text(json.dumps({"name": "nothing", "expectations": []}))
    for suite in (str(planted.with_suffix("")), "../../" + str(planted.with_suffix("")).lstrip("/"), "vader_text/.."):
        with pytest.raises(ValueError, match="is not a suite name; name one of") as refused:
            check_quality(reference=reference, current=current, suite=suite, dataset="vader-tweets")
        assert "vader_text" in str(refused.value)
    # a suite of the deployment's own config that holds no expectation is refused the same way
    config = tmp_path / "config"
    shutil.copytree(get_settings().config_dir, config)
    (config / "expectations" / "nothing.json").write_text(json.dumps({"name": "nothing", "expectations": []}))
    monkeypatch.setenv("AIOS_CONFIG_DIR", str(config))
    reset_settings()
    with pytest.raises(ValueError, match="holds no expectation"):
        check_quality(reference=reference, current=current, suite="nothing", dataset="vader-tweets")
    assert [r for r in audit_log(get_settings()).scan() if r.event.kind == "quality"] == []


def test_retraining_is_decided_and_started_only_on_a_sealed_check(monkeypatch: pytest.MonkeyPatch) -> None:
    """Left open on 2026-12-05: ``decide_retraining`` (a task anyone with launch rights can start, naming any drift
    record) counted a drift record with no quality seal behind it (one recorded before ``measure_drift`` required
    the seal, measured on quality reports typed by hand), and so did ``start_retraining`` for a decision made on one.
    Both now refuse it (``unsealed_quality``) and record nothing; a check whose seal names other batches counts no
    more than one without a seal. The same check with its seal still decides."""
    from flytekitplugins.aios_audit import AuditEvent
    from tasks.drift.check import QUALITY_KIND, record_drift
    from tasks.drift.monitor import decide_retraining, start_retraining
    from tasks.drift.report import DriftReport
    from tests.drift.sealed import BATCHES, sealed_check

    monkeypatch.setenv("AIOS_PRINCIPAL", "service:monitoring")
    target = "tests.evaluation.standin_retrain.retrain"
    settings, store = get_settings(), audit_log(get_settings())
    drifted = {"drifted_features": ["month"], "thresholds": {"psi": 0.03}, "dataset": "flights"}
    report = DriftReport(dataset="flights", n_ref=100, n_cur=100, thresholds={"psi": 0.03}, features=[])
    other = AuditEvent(
        kind=QUALITY_KIND, actor=settings.actor, status="passed", subject="dataset:flights",
        inputs={"reference": BATCHES["reference"], "current": "sha256:" + "c" * 64}, attributes={"suite": "flights"},
    )  # fmt: skip
    elsewhere = store.append(other).record_id
    unsealed = [
        record_drift("drift", "dataset:flights", drifted, settings, inputs=dict(BATCHES)),  # no seal at all
        record_drift("drift", "dataset:flights", drifted, settings, inputs=dict(BATCHES), parents=[elsewhere]),
    ]
    for check in unsealed:
        with pytest.raises(GovernanceDenied, match="names no sealed quality validation") as refused:
            decide_retraining(report=report.model_copy(update={"audit_record_id": check}), target=target)
        assert refused.value.reason_code == "unsealed_quality" and "Traceback" not in str(refused.value)
    assert [r for r in store.scan() if r.event.status.startswith("retrain_")] == []

    sealed = sealed_check("drift", "dataset:flights", drifted, settings)
    decided = decide_retraining(report=report.model_copy(update={"audit_record_id": sealed}), target=target)
    assert decided.trigger, decided.reason
    policy = store.get(decided.record_id).event.parents[1]  # the policy decision that allowed run_task on it
    attrs = {"target": target, "reason": decided.reason}
    legacy = record_drift("retrain_triggered", "dataset:flights", attrs, settings, parents=[unsealed[0], policy])
    with pytest.raises(GovernanceDenied, match="names no drift check measured on sealed") as refused:
        start_retraining(target=target, reason=decided.reason, drift_record=legacy)
    assert refused.value.reason_code == "unsealed_quality"
    assert [r for r in store.scan() if r.event.status == "retrain_started"] == []
    assert start_retraining(target=target, reason="x", drift_record=decided.record_id).startswith("retraining ran")
