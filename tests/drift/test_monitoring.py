"""Scheduled monitoring: a real drift alarm starts the retraining chain, and the audit trail says why."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from flytekitplugins.aios_audit import audit_log
from flytekitplugins.aios_core.settings import get_settings
from tasks.drift.monitor import resolve_target

STANDIN = "tests.evaluation.standin_retrain.retrain"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def as_monitoring(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIOS_PRINCIPAL", "service:monitoring")


def records(kind: str) -> list:
    return [r for r in audit_log(get_settings()).scan() if r.event.kind == kind]


@pytest.mark.slow
def test_seasonal_drift_starts_retraining_and_the_trail_says_why() -> None:
    from workflows.monitoring import monitor_flights

    out = monitor_flights(n=20000, retrain_target=STANDIN)
    assert out.startswith(f"retraining ran: {STANDIN} for drift on flights: ") and "month" in out, out
    drift = records("drift")
    assert [r.event.status for r in drift] == ["drift", "retrain_triggered"]
    check, decision = drift
    assert "month" in check.event.attributes["drifted_features"]
    assert decision.event.parents[0] == check.record_id  # the decision derives from the drift check
    assert "month" in decision.event.attributes["reason"] and decision.event.attributes["target"] == STANDIN
    policy = audit_log(get_settings()).get(decision.event.parents[1])
    assert policy.event.kind == "policy_decision"
    started = [r for r in records("task") if r.event.status == "retrain_started"]
    assert len(started) == 1 and started[0].event.parents == [decision.record_id]
    assert "month" in started[0].event.attributes["trigger_reason"]


@pytest.mark.slow
def test_same_period_does_not_start_retraining() -> None:
    from workflows.monitoring import monitor_flights

    out = monitor_flights(reference_months=[1, 2], current_months=[1, 2], n=20000, retrain_target=STANDIN)
    assert out.startswith("retraining not started: no drift on flights at thresholds"), out
    assert [r.event.status for r in records("drift")] == ["no_drift", "retrain_skipped"]
    assert not [r for r in records("task") if r.event.status == "retrain_started"]


@pytest.mark.slow
def test_policy_can_refuse_retraining(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from workflows.monitoring import monitor_flights

    # the identity is the launch plan's principal input (the shell's AIOS_PRINCIPAL is service:monitoring here): a
    # service the roles file declares with no role, so policy run_task may not let it start anything
    config = shutil.copytree(REPO / "config", tmp_path / "config")
    roles = yaml.safe_load((config / "roles.yaml").read_text())
    roles["principals"]["service:reporting"] = {"roles": [], "display": "Reporting (no roles)"}
    (config / "roles.yaml").write_text(yaml.safe_dump(roles))
    monkeypatch.setenv("AIOS_CONFIG_DIR", str(config))
    out = monitor_flights(n=20000, retrain_target=STANDIN, principal="service:reporting")
    assert out.startswith("retraining not started: drift on flights: ") and "retraining denied" in out, out
    assert [r.event.status for r in records("drift")] == ["drift", "retrain_denied"]
    assert not [r for r in records("task") if r.event.status == "retrain_started"]
    assert {r.event.actor for r in records("drift")} == {"service:reporting"}


def test_target_resolution_fails_loudly() -> None:
    assert resolve_target(STANDIN).name.endswith("retrain")
    assert resolve_target("tests.evaluation.standin_retrain:retrain") is resolve_target(STANDIN)
    with pytest.raises(ImportError, match="retrain_target"):
        resolve_target("workflows.nope.retrain")
    with pytest.raises(TypeError, match="not a Flyte"):
        resolve_target("tasks.drift.monitor.resolve_target")


def test_launch_plans_have_stable_names_and_cron_schedules() -> None:
    from workflows.monitoring import drift_check_hourly, text_drift_check_daily

    assert drift_check_hourly.name == "drift_check_hourly"
    assert drift_check_hourly.schedule.cron_schedule.schedule == "0 * * * *"
    assert text_drift_check_daily.name == "text_drift_check_daily"
    assert text_drift_check_daily.schedule.cron_schedule.schedule == "0 6 * * *"
    assert "retrain_target" in drift_check_hourly.parameters.parameters
    principal = drift_check_hourly.parameters.parameters["principal"]
    assert principal.default.scalar.primitive.string_value == "service:monitoring"
    assert drift_check_hourly.parameters.parameters["n"].var.description == "rows per batch (0 = all)."


def test_default_target_is_the_real_retraining_workflow() -> None:
    """The chain's default target resolves to workflows.retraining.retrain, which takes the reason and the drift
    record and has a default for every other input (so the dynamic node can launch it with just those two)."""
    from flytekit.core.workflow import WorkflowBase

    from tasks.drift.monitor import DEFAULT_TARGET
    from workflows.retraining import retrain

    entity = resolve_target(DEFAULT_TARGET)
    assert entity is retrain and isinstance(entity, WorkflowBase)
    declared = entity.python_interface.inputs
    assert {"trigger_reason", "drift_record"} <= set(declared)
    required = [k for k in declared if k not in entity.python_interface.default_inputs_as_kwargs]
    assert required == [], f"retrain inputs without defaults cannot be launched by the monitor: {required}"


def test_decide_retraining_reads_the_drift_check_from_the_trail_not_the_report() -> None:
    """A drift report typed by hand (a monitoring launch with launch rights) started or stopped a retraining with
    whatever figures it held. The decision is taken on the drift check's own record."""
    from flytekitplugins.aios_core.errors import GovernanceDenied
    from tasks.drift.monitor import decide_retraining
    from tasks.drift.report import DriftReport, FeatureDrift
    from tests.drift.sealed import sealed_check

    month = FeatureDrift(
        name="month", kind="categorical", psi=2.0, js=0.6, p_value=0.0, significant=True, material=True,
        missing_ref=0.0, missing_cur=0.0, drifted=True,
    )  # fmt: skip
    forged = DriftReport(dataset="flights", n_ref=100, n_cur=100, thresholds={"psi": 0.03}, features=[month])
    assert forged.drifted
    with pytest.raises(GovernanceDenied, match="not a recorded drift check"):
        decide_retraining(report=forged, target=STANDIN)
    calm = {"drift_detected": False, "drifted_features": [], "thresholds": {"psi": 0.03}, "dataset": "flights"}
    rid = sealed_check("no_drift", "dataset:flights", calm, get_settings())
    decision = decide_retraining(report=forged.model_copy(update={"audit_record_id": rid}), target=STANDIN)
    assert decision.trigger is False and decision.reason.startswith("no drift on flights")
    assert [r.event.status for r in records("drift")] == ["no_drift", "retrain_skipped"]


def test_an_empty_or_unchecked_batch_is_never_recorded_as_no_drift() -> None:
    """measure_drift, handed an empty quality list, recorded ``no_drift`` for an empty or one-row current batch."""
    import pandas as pd

    from tasks.drift.check import measure_drift

    reference = pd.DataFrame({"x": [float(i % 7) for i in range(200)]})
    args = {"dataset": "d", "columns": ["x"], "text_column": "", "model_dir": "", "psi_threshold": 0.03}
    args |= {"js_threshold": 0.1, "wasserstein_threshold": 0.2, "text_sample": 10}
    for current, why in ((reference.head(0), "has 0 row"), (reference.head(1), "has 1 row"), (reference, "quality")):
        with pytest.raises(ValueError, match=why):
            measure_drift(reference=reference, current=current, quality=[], **args)
    assert records("drift") == []


def test_start_retraining_starts_only_what_the_trail_decided() -> None:
    """Regression: ``start_retraining`` (a node anyone with launch rights can start on its own) re-established
    nothing: a made-up ``drift_record`` and a principal the policy refuses launched the target all the same, and
    the made-up id became the retraining's parent. It now starts a target only on the trail's intact
    ``retrain_triggered`` decision for exactly that target, with the policy decision that allowed it, and passes on
    the reason that decision recorded, not the one handed in."""
    from flytekitplugins.aios_core.errors import GovernanceDenied
    from tasks.drift.check import record_drift
    from tasks.drift.monitor import decide_retraining, start_retraining
    from tasks.drift.report import DriftReport
    from tests.drift.sealed import sealed_check

    with pytest.raises(GovernanceDenied, match="not a recorded decision to start retraining"):
        start_retraining(target=STANDIN, reason="no drift at all", drift_record="made-up-record-id")
    drifted = {"drifted_features": ["month"], "thresholds": {"psi": 0.03}, "dataset": "flights"}
    check = sealed_check("drift", "dataset:flights", drifted, get_settings())
    report = DriftReport(dataset="flights", n_ref=100, n_cur=100, thresholds={"psi": 0.03}, features=[])
    decision = decide_retraining(report=report.model_copy(update={"audit_record_id": check}), target=STANDIN)
    assert decision.trigger, decision.reason
    with pytest.raises(GovernanceDenied, match="not a recorded decision to start retraining"):
        start_retraining(target="tests.evaluation.standin_retrain.record_start", reason="x", drift_record=check)
    with pytest.raises(GovernanceDenied, match="not a recorded decision to start retraining"):
        start_retraining(
            target="tests.evaluation.standin_retrain.record_start", reason="x", drift_record=decision.record_id
        )
    attrs = {"target": STANDIN, "reason": "x"}
    no_policy = record_drift("retrain_triggered", "dataset:flights", attrs, get_settings(), parents=[check])
    with pytest.raises(GovernanceDenied, match="names no policy decision"):
        start_retraining(target=STANDIN, reason="x", drift_record=no_policy)
    assert not [r for r in records("task") if r.event.status == "retrain_started"]
    out = start_retraining(target=STANDIN, reason="handed in", drift_record=decision.record_id)
    assert out.startswith(f"retraining ran: {STANDIN} for drift on flights"), out
    (started,) = [r for r in records("task") if r.event.status == "retrain_started"]
    assert started.event.parents == [decision.record_id] and "month" in started.event.attributes["trigger_reason"]
