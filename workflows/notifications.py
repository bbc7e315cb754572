"""Failure notifications for the pack's launch plans (ops hear about a failed scheduled run without watching).

Recipients come from ``AIOS_FAILURE_EMAILS`` (comma-separated) at registration time; the default is a
placeholder address to replace per deployment (docs/runbook.md). FlyteAdmin sends them through its
configured notifications backend (SES, SendGrid, or a Slack e-mail integration).
"""

from __future__ import annotations

import os

from flytekit import Email
from flytekit.models.core.execution import WorkflowExecutionPhase

DEFAULT_RECIPIENTS = "aios-ops@example.com"
FAILURE_PHASES = [WorkflowExecutionPhase.FAILED, WorkflowExecutionPhase.TIMED_OUT, WorkflowExecutionPhase.ABORTED]


def on_failure() -> list[Email]:
    """One e-mail notification on failure, timeout or abort of a launched execution."""
    recipients = [r.strip() for r in os.environ.get("AIOS_FAILURE_EMAILS", DEFAULT_RECIPIENTS).split(",") if r.strip()]
    return [Email(phases=FAILURE_PHASES, recipients_email=recipients)]
