"""Error types shared by every plugin of the pack.

Every error names what was wrong and what to do about it. Governance errors are raised *instead of*
the governed action: when one escapes a task, the action did not happen.
"""

from flytekitplugins.aios_core.visible import visible


class AiosError(Exception):
    """Base class for errors raised by the pack."""


class ConfigError(AiosError):
    """Configuration is missing or invalid; the message names the key, the value and the fix."""


class GovernanceDenied(AiosError):
    """A governed action was refused (policy deny, missing approval, failed audit write).

    Fail-closed: raising this means the action did not take place. The message is what a person reads (the task's
    error in a terminal, in the Flyte console): the text a request or a record brings into it (a resource id, a
    document's vendor, an approver's reason) has its control characters shown as escapes, never obeyed.
    """

    def __init__(self, message: str, *, reason_code: str = "denied", record_id: str | None = None) -> None:
        super().__init__(visible(message))
        self.reason_code = reason_code
        self.record_id = record_id
