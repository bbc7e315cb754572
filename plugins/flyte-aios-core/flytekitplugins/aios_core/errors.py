"""Error types shared by every plugin of the pack.

Every error names what was wrong and what to do about it. Governance errors are raised *instead of*
the governed action: when one escapes a task, the action did not happen.
"""


class AiosError(Exception):
    """Base class for errors raised by the pack."""


class ConfigError(AiosError):
    """Configuration is missing or invalid; the message names the key, the value and the fix."""


class GovernanceDenied(AiosError):
    """A governed action was refused (policy deny, missing approval, failed audit write).

    Fail-closed: raising this means the action did not take place.
    """

    def __init__(self, message: str, *, reason_code: str = "denied", record_id: str | None = None) -> None:
        super().__init__(message)
        self.reason_code = reason_code
        self.record_id = record_id
