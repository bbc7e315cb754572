"""A retraining decision is acted on only under the policy set it was decided under (review of 2026-12-07, R1 F1).

Attacker: launch rights on Flyte. ``start_retraining`` accepted any intact ``allow`` of ``run_task`` behind a
``retrain_triggered`` decision, and never compared that decision's policy set with the set in force, which the
document acting point does (``policy_changed``). So after an operator froze retraining in Cedar (a ``forbid`` of
``run_task``), a launcher started ``start_retraining`` on its own with a decision made before the freeze, and the
retraining ran. Now it is refused ``policy_changed`` and nothing is started or claimed; when the set in force cannot
be read, ``policy_unavailable``. Real flytekit local execution of the stand-in retraining workflow, the pack's Cedar
engine on a copy of the shipped policies, the audit trail of the test's own state dir.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from flytekitplugins.aios_core.context import local_run
from flytekitplugins.aios_core.settings import reset_settings
from flytekitplugins.aios_policy.cedar_load import clear_cache
from tests.conftest import REPO
from tests.security.test_candidate_registration import STANDIN
from tests.security.test_one_retraining_a_decision import _decision, _holder, _ran, _refused, _starts

FREEZE = """
@id("emergency-freeze-retraining")
@reason("retraining frozen by the operator")
forbid (principal, action == Action::"run_task", resource);
"""


def _own_policies(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    folder = tmp_path / "policies"
    shutil.copytree(REPO / "config" / "policies", folder)
    monkeypatch.setenv("AIOS_POLICY_DIR", str(folder))
    reset_settings()
    clear_cache()
    return folder


def test_a_decision_made_before_a_freeze_starts_nothing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from tasks.drift.monitor import start_retraining

    policies = _own_policies(monkeypatch, tmp_path)
    decided, reason = _decision(monkeypatch, STANDIN)  # retrain_triggered under the shipped policies
    (policies / "tasks.cedar").write_text((policies / "tasks.cedar").read_text() + FREEZE)  # the operator freezes
    clear_cache()  # a long-lived process sees the edit once its cached set is no longer fresh
    with local_run("launcher"):
        refusal = _refused(
            lambda: start_retraining(target=STANDIN, reason=reason, drift_record=decided),
            "policy_changed",
            decided,
            "the policy in force is",
        )
    assert "Traceback" not in str(refusal)
    assert _ran(decided) == [] and _starts(decided) == [] and _holder(decided) is None  # nothing launched or claimed


def test_an_unreadable_policy_set_starts_nothing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from tasks.drift.monitor import start_retraining

    policies = _own_policies(monkeypatch, tmp_path)
    decided, reason = _decision(monkeypatch, STANDIN)
    (policies / "tasks.cedar").write_text("permit (principal, action, resource) when { this is not cedar };")
    clear_cache()
    with local_run("launcher"):
        _refused(
            lambda: start_retraining(target=STANDIN, reason=reason, drift_record=decided),
            "policy_unavailable",
            decided,
        )
    assert _ran(decided) == [] and _starts(decided) == []


def test_an_unchanged_policy_set_still_starts_the_retraining(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from tasks.drift.monitor import start_retraining

    _own_policies(monkeypatch, tmp_path)
    decided, reason = _decision(monkeypatch, STANDIN)
    with local_run("monitoring"):
        assert start_retraining(target=STANDIN, reason=reason, drift_record=decided).startswith("retraining ran: ")
    assert len(_ran(decided)) == 1


def test_a_freeze_of_one_workflow_holds_however_the_launcher_spells_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """An operator's ``forbid`` of ``run_task`` on the retraining workflow's name was passed by naming the same
    workflow ``module:attr``, or a launch plan of it: the policy was asked about ``Workflow::<the string handed in>``
    (then about the launch plan's own name) and the retraining ran during the freeze (re-reviews R8 and R10b of
    2026-12-07). The policy is now asked about the name of the workflow the target runs."""
    from tasks.drift.monitor import decide_retraining, start_retraining
    from tasks.drift.report import DriftReport
    from tests.drift.sealed import sealed_check
    from tests.security.test_candidate_registration import _act_as

    policies = _own_policies(monkeypatch, tmp_path)
    scoped = FREEZE.replace("resource);", f'resource == Workflow::"{STANDIN}");')
    (policies / "tasks.cedar").write_text((policies / "tasks.cedar").read_text() + scoped)
    clear_cache()
    module, _, name = STANDIN.rpartition(".")
    _act_as(monkeypatch, "service:monitoring")
    from flytekitplugins.aios_core.settings import get_settings

    drifted = {"drifted_features": ["month"], "thresholds": {"psi": 0.03}, "dataset": "flights"}
    report = DriftReport(dataset="flights", n_ref=100, n_cur=100, thresholds={"psi": 0.03}, features=[])
    for spelled in (STANDIN, f"{module}:{name}", f"{module}.standin_on_demand"):  # a launch plan (re-review R10b)
        check = sealed_check("drift", "dataset:flights", drifted, get_settings())
        decided = decide_retraining(report=report.model_copy(update={"audit_record_id": check}), target=spelled)
        assert not decided.trigger and "retraining frozen by the operator" in decided.reason, (spelled, decided)
        with local_run("launcher"):
            refusal = _refused(
                lambda: start_retraining(target=spelled, reason=decided.reason, drift_record=decided.record_id),
                "no_evidence",
                decided.record_id,
            )
        assert "Traceback" not in str(refusal)
        assert _ran(decided.record_id) == [] and _starts(decided.record_id) == []


def test_a_launch_plan_target_is_decided_and_registered_under_its_workflow(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The retraining's own launch plan (``retrain_on_demand``) as the target: the decision records the workflow's
    name, so the registration at the end of the retraining finds it (it looked for a workflow named after the launch
    plan, refused ``no_evidence`` and registered nothing: re-review R10b)."""
    from tasks.drift.monitor import DEFAULT_TARGET, canonical_target, triggered_retraining
    from tasks.training.promotion import _names_retraining

    assert canonical_target("workflows.retraining.retrain_on_demand") == DEFAULT_TARGET
    assert canonical_target("workflows.retraining:retrain") == DEFAULT_TARGET
    _own_policies(monkeypatch, tmp_path)
    decided, _ = _decision(monkeypatch, "workflows.retraining.retrain_on_demand")
    from flytekitplugins.aios_core.settings import get_settings

    rec = triggered_retraining(decided, DEFAULT_TARGET, get_settings())
    assert rec.event.attributes["target"] == DEFAULT_TARGET and _names_retraining(rec.event.attributes["target"])
