"""One audited attempt of a governed Flyte 2 task: identity, span, scope and the durable ``task`` record."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping
from typing import Any

from flytekitplugins.aios_audit import AuditEvent, AuditRecord, AuditScope, audit_log
from flytekitplugins.aios_audit.recorder import build_event
from flytekitplugins.aios_core.context import ExecutionRef
from flytekitplugins.aios_core.digest import digest_value
from flytekitplugins.aios_core.errors import GovernanceDenied
from flytekitplugins.aios_flyte2.identity import acting_as, flyte_execution, run_parts
from flytekitplugins.aios_flyte2.spans import finish_span, task_span

log = logging.getLogger(__name__)
RUNTIME = "flyte2"


def digest_one(value: Any) -> str:
    """Content digest of an input or output (pydantic models and dataclasses by their fields)."""
    try:
        return digest_value(value)
    except TypeError:
        pass
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        try:
            return digest_value(dump(mode="json"))
        except TypeError:
            pass
    cls = type(value)
    log.warning("audit: no content digest for a %s.%s value; recorded by type only", cls.__module__, cls.__name__)
    return f"undigestable:{cls.__module__}.{cls.__qualname__}"


def output_digests(result: Any) -> dict[str, str]:
    """Flyte 2's output names (``o0``, ``o1``, ... for a tuple) to content digests; none for ``None``."""
    if result is None:
        return {}
    values = result if isinstance(result, tuple) else (result,)
    return {f"o{i}": digest_one(v) for i, v in enumerate(values)}


class Attempt:
    """The attempt in progress: its identity and audit scope; :meth:`done` records the outputs."""

    def __init__(self, execution: ExecutionRef, scope: AuditScope, kwargs: Mapping[str, Any]) -> None:
        self.execution = execution
        self.scope = scope
        self.kwargs = dict(kwargs)

    def done(self, result: Any) -> Any:
        """Digest the task's result into the record; return it unchanged."""
        self.scope.outputs.update(output_digests(result))
        return result


def _event(ex: ExecutionRef, scope: AuditScope, status: str, error: BaseException | None) -> AuditEvent:
    return build_event(scope, "task", status, error, execution=ex, extra={"runtime": RUNTIME})


def _append(ex: ExecutionRef, scope: AuditScope, status: str, error: BaseException | None) -> AuditRecord:
    try:
        return audit_log(scope.settings).append(_event(ex, scope, status, error))
    except Exception as e:
        msg = f"the audit record of task {ex.task_name} could not be written, so its result is withheld: {e}"
        raise GovernanceDenied(msg, reason_code="audit_write_failed") from e


@contextlib.contextmanager
def attempt(task_name: str, kwargs: Mapping[str, Any], subject_input: str = "") -> Iterator[Attempt]:
    """Run the body as one audited attempt: a ``task`` record (succeeded or failed) is written at the end.

    The record of a successful body must be durable before the result is released (else the task fails with
    ``audit_write_failed``); a failed body is recorded if possible and its own error is raised.
    """
    from flytekitplugins.aios_core.settings import get_settings

    ex = flyte_execution(task_name)
    settings = get_settings()  # the governed attempt is the task's entry point: settings resolved once, passed down
    span_cm = task_span(ex, run_parts(ex), settings.otel_exporter)
    with acting_as(ex), span_cm as span, AuditScope(task_name, settings) as scope:
        scope.inputs.update({k: digest_one(v) for k, v in kwargs.items()})
        if subject_input and subject_input in scope.inputs:
            scope.subject = scope.inputs[subject_input]
        try:
            yield Attempt(ex, scope, kwargs)
        except BaseException as error:
            record_id = ""
            try:
                record_id = _append(ex, scope, "failed", error).record_id
            except GovernanceDenied as write_error:
                log.error("%s", write_error)
            finish_span(span, record_id, error)
            raise
        try:
            record = _append(ex, scope, "succeeded", None)
        except GovernanceDenied as write_error:
            finish_span(span, "", write_error)
            raise
        finish_span(span, record.record_id, None)


__all__ = ["Attempt", "attempt", "digest_one", "output_digests"]
