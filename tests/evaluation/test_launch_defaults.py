"""The evaluation and retraining launch plans run as they are, as their service principal, and fail fast."""

from __future__ import annotations

import time

import pytest
from flytekit import LaunchPlan
from flytekit.core.context_manager import FlyteContextManager

from flytekitplugins.aios_audit import audit_log
from flytekitplugins.aios_core.settings import get_settings


def _default_launch_plan(workflow):
    lp = LaunchPlan.get_default_launch_plan(FlyteContextManager.current_context(), workflow)
    assert [k for k, p in lp.parameters.parameters.items() if p.required] == []
    return lp


@pytest.mark.slow
def test_evaluate_model_runs_from_its_launch_plan_with_no_inputs() -> None:
    """No DataFrames or folders to type: a VADER pair is trained, drift-checked and evaluated as service:retraining."""
    from workflows.evaluation import evaluate_model

    report = _default_launch_plan(evaluate_model)()
    assert report.candidate.model.startswith("vader-sentiment@tweets-strong")
    assert report.champion.model.startswith("vader-sentiment@tweets-weak")
    assert report.drift_passed  # held-out rows vs training rows of the same source: the check ran and passed
    assert report.decision in {"promote", "needs_approval"}, report.reasons  # strong beats weak
    record = audit_log(get_settings()).get(report.audit_record_id)
    assert record is not None and record.event.actor == "service:retraining"  # not the launching shell's user


def test_retraining_is_refused_before_any_training_for_a_principal_that_may_not_promote(monkeypatch) -> None:
    from workflows.retraining import retrain

    monkeypatch.setenv("AIOS_PRINCIPAL", "service:retraining")  # restored after the test
    start = time.monotonic()
    with pytest.raises(Exception, match=r"retraining not started: service:monitoring may not register or promote"):
        retrain(principal="service:monitoring", gpu=False, accelerator="")  # role pipeline: no catalog-writer
    assert time.monotonic() - start < 60  # the training alone takes minutes on this data
    records = list(audit_log(get_settings()).scan())
    kinds = {r.event.kind for r in records}
    assert "training" not in kinds and "evaluation" not in kinds and "drift" not in kinds
    denials = [r for r in records if r.event.kind == "policy_decision" and r.event.actor == "service:monitoring"]
    assert denials, [r.event for r in records]


@pytest.mark.parametrize("principal", ["user:dave", "user:frank", "dave", "service:", "user:x\x1b[2J"])
def test_a_launch_input_cannot_make_the_run_act_as_a_person(monkeypatch, principal: str) -> None:
    """Whoever may launch chooses the inputs: before, ``principal="user:dave"`` made the trail say the compliance
    reviewer started the run and was refused (or, as user:frank, the model approver requested the promotion)."""
    from workflows.retraining import retrain

    monkeypatch.setenv("AIOS_PRINCIPAL", "service:retraining")  # restored after the test
    with pytest.raises(Exception, match=r"a launch input may name only a service identity") as err:
        retrain(principal=principal, gpu=False, accelerator="")
    assert "\x1b" not in str(err.value)  # the input is quoted with its control characters escaped
    records = list(audit_log(get_settings()).scan())
    assert not [r for r in records if r.event.actor == principal], [r.event for r in records]
    assert not {r.event.kind for r in records} & {"training", "evaluation", "drift", "catalog"}
