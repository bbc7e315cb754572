"""Stand-in for workflows/retraining.py::retrain: records that it was started, and by which drift decision."""

from __future__ import annotations

from flytekit import LaunchPlan, task, workflow

from flytekitplugins.aios_audit import AuditEvent, audit_log
from flytekitplugins.aios_core.settings import get_settings


@task
def record_start(trigger_reason: str, drift_record: str) -> str:
    """Append a record proving the retraining chain ran.

    Args:
        trigger_reason: why retraining started.
        drift_record: the decision record that started it.
    """
    event = AuditEvent(
        kind="task",
        actor=get_settings().actor,
        status="retrain_started",
        subject="standin-retrain",
        parents=[drift_record],
        attributes={"trigger_reason": trigger_reason},
    )
    return audit_log(get_settings()).append(event).record_id


@workflow
def retrain(trigger_reason: str = "", drift_record: str = "") -> str:
    """Stand-in retraining workflow.

    Args:
        trigger_reason: why retraining started.
        drift_record: the decision record that started it.
    """
    return record_start(trigger_reason=trigger_reason, drift_record=drift_record)


standin_on_demand = LaunchPlan.get_or_create(workflow=retrain, name="standin_on_demand")
"""A launch plan of the stand-in, as workflows/retraining.py ships ``retrain_on_demand`` for the real one."""
