"""Launch plans read well in the console and run locally with their defaults."""

from __future__ import annotations

import importlib
import pkgutil
import re

import pytest

from tests.cluster.package_check import EXPECTED


def _launch_plans() -> dict[str, object]:
    from flytekit.core.launch_plan import LaunchPlan

    import workflows

    found: dict[str, object] = {}
    for mod in pkgutil.walk_packages(workflows.__path__, "workflows."):
        for obj in vars(importlib.import_module(mod.name)).values():
            if isinstance(obj, LaunchPlan) and not obj.name.startswith("workflows."):
                found[obj.name] = obj
    return found


def test_named_launch_plans_are_stable_public_names_listed_in_the_manifest_and_runbook() -> None:
    from pathlib import Path

    runbook = (Path(__file__).resolve().parents[2] / "docs" / "runbook.md").read_text()
    named = _launch_plans()
    assert named, "no named launch plan in workflows/"
    expected = {lp.name for lp in EXPECTED.launch_plans}
    for name in named:
        assert re.fullmatch(r"[a-z][a-z0-9_]*", name), f"{name}: launch plan names are snake_case"
        assert name in expected, f"{name}: add it to EXPECTED in tests/cluster/package_check.py"
        assert f"`{name}`" in runbook, f"{name}: document it in docs/runbook.md section 8"


def test_every_launch_plan_input_has_a_description_for_the_console() -> None:
    for name, lp in _launch_plans().items():
        for var, v in lp.workflow.interface.inputs.items():  # type: ignore[attr-defined]
            assert v.description and v.description != var, f"{name}: input {var!r} has no docstring description"


@pytest.mark.slow
@pytest.mark.parametrize("name", ["drift_check_hourly", "text_drift_check_daily"])
def test_scheduled_launch_plan_runs_locally_with_its_defaults(name: str) -> None:
    """Runs on its defaults as service:monitoring; the retraining it starts is the stand-in (the real one trains)."""
    lp = _launch_plans()[name]
    result = lp(retrain_target=STANDIN)  # type: ignore[operator]
    assert result.startswith(f"retraining ran: {STANDIN} for drift on "), result  # both defaults are real drift


STANDIN = "tests.evaluation.standin_retrain.retrain"


def test_default_launch_plan_of_flights_drift_runs_locally() -> None:
    """A workflow's default launch plan (what the console launches) runs with nothing but its defaults."""
    from flytekit import LaunchPlan

    from workflows.drift import flights_drift

    lp = LaunchPlan.get_or_create(flights_drift)
    assert lp.name == "workflows.drift.flights_drift"
    assert set(lp.parameters.parameters) == set(flights_drift.python_interface.inputs)
    report = lp()
    assert report.drifted, "Jan-Apr vs Sep-Dec (the defaults) is a real seasonal drift"
    assert "month" in report.drifted_features and report.audit_record_id
