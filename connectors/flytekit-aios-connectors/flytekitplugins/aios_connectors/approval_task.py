"""Approval notification as a Flyte task that runs in the connector service: no pod waits for a person.

The task takes the id of a request opened with ``flytekitplugins.aios_approvals.open_request``. The
connector (:mod:`flytekitplugins.aios_connectors.approval_connector`) posts a signed notification to the
configured chat or ticketing webhook, then polls the approval plugin's verified outcome until the request
is decided or the wait times out. Decisions are still made with ``aios approvals approve|reject``: the
webhook only tells people that a request is waiting.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from flytekit import Documentation
from flytekit.configuration import SerializationSettings
from flytekit.core.base_task import PythonTask
from flytekit.core.interface import Interface
from flytekit.extend.backend.base_connector import AsyncConnectorExecutorMixin

from flytekitplugins.aios_connectors.constants import APPROVAL_NOTIFICATION_TASK_TYPE
from flytekitplugins.aios_connectors.webhook import RetryPolicy

APPROVAL_INPUTS: dict[str, type] = {"request_id": str}
APPROVAL_OUTPUTS: dict[str, type] = {"request_id": str, "status": str, "approvers": list[str], "reason": str}
_KEYS = {"channel", "wait_timeout_s", "attempts", "base_delay_s", "max_delay_s", "http_timeout_s"}


@dataclass(frozen=True)
class ApprovalNotificationConfig:
    """How to notify and how long to wait.

    Attributes:
        channel: free-form routing hint passed to the receiver (a Slack channel, a Jira project).
        wait_timeout_s: longest wait for a decision after the notification; the request's own expiry
            applies too, whichever comes first. No decision in time is a failure (timeout = deny).
        attempts: webhook deliveries in all (1-10) before the task fails.
        base_delay_s: first retry back-off ceiling (doubles per retry, with jitter).
        max_delay_s: ceiling of one back-off.
        http_timeout_s: connect/read timeout of one delivery.
    """

    channel: str = ""
    wait_timeout_s: float = 86400.0
    attempts: int = 4
    base_delay_s: float = 0.5
    max_delay_s: float = 8.0
    http_timeout_s: float = 10.0

    def __post_init__(self) -> None:
        if not self.wait_timeout_s > 0:  # NaN too: min(now + NaN, expiry) was NaN, a deadline never reached
            msg = f"wait_timeout_s={self.wait_timeout_s} must be > 0 (seconds to wait for a decision)"
            raise ValueError(msg)
        self.retry_policy()  # validates the retry bounds at construction

    def retry_policy(self) -> RetryPolicy:
        """The delivery retry bounds."""
        return RetryPolicy(self.attempts, self.base_delay_s, self.max_delay_s, self.http_timeout_s)

    @classmethod
    def from_custom(cls, custom: dict[str, Any] | None) -> ApprovalNotificationConfig:
        """Read the config back from a template's ``custom`` (Struct numbers arrive as floats)."""
        data = dict(custom or {})
        unknown = set(data) - _KEYS
        if unknown:
            msg = f"unknown approval notification config keys {sorted(unknown)}: re-register with this version"
            raise ValueError(msg)
        if "attempts" in data:
            data["attempts"] = int(data["attempts"])
        return cls(**data)


class ApprovalNotificationTask(AsyncConnectorExecutorMixin, PythonTask[ApprovalNotificationConfig]):
    """Notifies reviewers about an approval request and waits for its verified outcome.

    Input: ``request_id`` (from ``open_request``). Outputs: ``request_id``, ``status`` (``approved``),
    ``approvers`` and ``reason``. A rejected, refused, expired or timed-out request fails the task with
    the status and reason (fail closed), so nothing downstream runs without an authorized approval.

    Example:
        ``notify = ApprovalNotificationTask(name="notify_payment_signoff", config=ApprovalNotificationConfig(
        channel="#finance-approvals", wait_timeout_s=4 * 3600))``
    """

    _TASK_TYPE = APPROVAL_NOTIFICATION_TASK_TYPE

    def __init__(
        self, name: str, config: ApprovalNotificationConfig | None = None, description: str = "", **kwargs: Any
    ):
        super().__init__(
            name=name,
            task_type=self._TASK_TYPE,
            task_config=config or ApprovalNotificationConfig(),
            interface=Interface(inputs=APPROVAL_INPUTS, outputs=APPROVAL_OUTPUTS),
            docs=Documentation(short_description=description or "Notify reviewers and wait for an approval"),
            **kwargs,
        )

    def get_custom(self, settings: SerializationSettings) -> dict[str, Any]:
        """The config dataclass as the template's ``custom``."""
        return asdict(self.task_config)
