"""The in-task audit scope: what other plugins attach to the record of the governed step in progress.

A governed task (``@audited`` or ``@task(task_config=Audited(...))``) opens one :class:`AuditScope` for the
duration of its body; ``current_audit()`` returns it (or ``None`` outside a governed task). Policy gates,
approvals, model loaders and document code call it to attach what they did::

    scope = current_audit()
    if scope is not None:
        scope.add_policy_decision(decision.model_dump(mode="json"))
        scope.add_parent(decision.audit_record_id)

Everything attached lands in the single ``task`` record appended when the body returns or raises.
Privacy: values are metadata only. Long strings are replaced by their digest and keys that name secrets
are redacted, so raw document text or credentials never reach the log.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import functools
from typing import Any

from flytekitplugins.aios_audit.records import ModelRef
from flytekitplugins.aios_core.digest import digest_value
from flytekitplugins.aios_core.settings import Settings

MAX_TEXT = 256
_SECRET_WORDS = ("password", "passwd", "secret", "token", "api_key", "apikey", "credential", "private_key")

_current: contextvars.ContextVar[AuditScope | None] = contextvars.ContextVar("aios_audit_scope", default=None)


def current_audit() -> AuditScope | None:
    """The audit scope of the governed task running in this context, or ``None`` outside one."""
    return _current.get()


def _secret_named(key: str) -> bool:
    """True when ``key`` names a secret (any of :data:`_SECRET_WORDS` in it, any case).

    Keys of up to 64 characters are answered from a bounded cache: records repeat the same few dozen keys, and the
    scan of eight words was most of what scrubbing a policy decision cost."""
    return _secret_named_cached(key) if len(key) <= 64 else _has_secret_word(key)


def _has_secret_word(key: str) -> bool:
    low = key.lower()
    return any(w in low for w in _SECRET_WORDS)


_secret_named_cached = functools.lru_cache(maxsize=4096)(_has_secret_word)


def scrub(value: Any, key: str = "") -> Any:
    """Make ``value`` safe for an audit record: redact secret-named keys, digest long text, keep JSON types."""
    if key and _secret_named(key):
        return "[redacted]"
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return value if len(value) <= MAX_TEXT else {"$digest": digest_value(value), "chars": len(value)}
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): scrub(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [scrub(v) for v in value]
    model_dump = getattr(value, "model_dump", None)
    if callable(model_dump):
        return scrub(model_dump(mode="json"))
    return {"$digest": digest_value(value)} if _digestible(value) else str(type(value).__name__)


def _digestible(value: Any) -> bool:
    try:
        digest_value(value)
    except TypeError:
        return False
    return True


class AuditScope:
    """Mutable collector for the record of one governed task execution.

    Args:
        task_name: The Flyte task name (module.function).
        settings: The settings the task's entry point resolved; the record goes to their store, as their actor.
    """

    def __init__(self, task_name: str, settings: Settings) -> None:
        self.task_name = task_name
        self.settings = settings
        self.started_at = dt.datetime.now(dt.UTC)
        self.policy_decisions: list[dict[str, Any]] = []
        self.approvals: list[dict[str, Any]] = []
        self.models: list[ModelRef] = []
        self.parents: list[str] = []
        self.attributes: dict[str, Any] = {}
        self.inputs: dict[str, str] = {}
        self.outputs: dict[str, str] = {}
        self.subject: str = ""
        self.record_id: str = ""
        self._token: contextvars.Token[AuditScope | None] | None = None

    def add_policy_decision(self, decision: dict[str, Any]) -> None:
        """Attach a policy decision (e.g. ``PolicyDecision.model_dump(mode="json")``) to this step."""
        self.policy_decisions.append(scrub(dict(decision)))

    def add_approval(self, approval: dict[str, Any]) -> None:
        """Attach an approval (request id, approver, decision, record id) to this step."""
        self.approvals.append(scrub(dict(approval)))

    def add_model(self, model: ModelRef) -> None:
        """Record that this step used ``model`` (catalog name, version, artifact digest)."""
        if model not in self.models:
            self.models.append(model)

    def add_parent(self, record_id: str) -> None:
        """Add an explicit lineage edge: this step derives from the audit record ``record_id``."""
        if record_id and record_id not in self.parents:
            self.parents.append(record_id)

    def add_input(self, name: str, digest: str) -> None:
        """Declare an extra consumed artifact (e.g. a document digest read inside the task)."""
        self.inputs[name] = digest

    def add_output(self, name: str, digest: str) -> None:
        """Declare an extra produced artifact (e.g. a file written to a system of record)."""
        self.outputs[name] = digest

    def set_subject(self, subject: str) -> None:
        """What the step is about (a document digest, a request id); shown by ``aios audit show``."""
        self.subject = str(scrub(subject)) if len(subject) <= MAX_TEXT else digest_value(subject)

    def set_attribute(self, key: str, value: Any) -> None:
        """Attach non-sensitive metadata; secrets are redacted and long text is replaced by its digest."""
        self.attributes[str(key)] = scrub(value, str(key))

    def __enter__(self) -> AuditScope:
        self._token = _current.set(self)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._token is not None:
            _current.reset(self._token)
            self._token = None
