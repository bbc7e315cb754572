"""``check_drift`` runs from its launch plan with no inputs: the flights shipped with the pack are its default data."""

from __future__ import annotations

import pytest
from flytekit import LaunchPlan
from flytekit.core.context_manager import FlyteContextManager

from flytekitplugins.aios_core.settings import get_settings

pytestmark = pytest.mark.slow


def test_check_drift_runs_from_its_default_launch_plan_with_no_inputs() -> None:
    from flytekitplugins.aios_audit import audit_log
    from workflows.drift import DEFAULT_ROWS, check_drift

    lp = LaunchPlan.get_default_launch_plan(FlyteContextManager.current_context(), check_drift)
    required = [k for k, p in lp.parameters.parameters.items() if p.required]
    assert required == []
    report = lp()
    assert report.dataset == "flights" and report.drifted  # January-April vs September-December is seasonal drift
    assert "month" in report.drifted_features
    record = audit_log(get_settings()).get(report.audit_record_id)
    assert record is not None and record.event.kind == "drift"
    assert {q.rows for q in report.quality} == {DEFAULT_ROWS}
