"""Turn a finished :class:`AuditScope` into a durable ``task`` record (and a Flyte Deck)."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import html
import inspect
import logging
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from flytekitplugins.aios_audit.api import audit_log
from flytekitplugins.aios_audit.records import AuditEvent, AuditRecord
from flytekitplugins.aios_audit.scope import AuditScope
from flytekitplugins.aios_core.context import ExecutionRef, code_version, current_execution
from flytekitplugins.aios_core.digest import digest_file, digest_value
from flytekitplugins.aios_core.errors import AiosError

log = logging.getLogger(__name__)


def _digest_flyte_path(value: Any) -> str | None:
    """FlyteFile / FlyteDirectory by content (they are dataclasses whose local path changes every run)."""
    try:
        local = Path(value.download())
    except Exception as e:
        log.warning("audit: could not download %s to digest it: %s", getattr(value, "path", value), e)
        return None
    if local.is_file():
        return digest_value({"$file": digest_file(local)})
    if local.is_dir():
        files = sorted(f for f in local.rglob("*") if f.is_file())
        return digest_value({"$dir": {str(f.relative_to(local)): digest_file(f) for f in files}})
    return None


def digest_one(value: Any) -> str:
    """Content digest of a task input/output: files and directories by content, data frames by rows."""
    if type(value).__name__ in ("FlyteFile", "FlyteDirectory") and callable(getattr(value, "download", None)):
        found = _digest_flyte_path(value)
        if found is not None:
            return found
    try:
        return digest_value(value)
    except TypeError:
        pass
    frame = getattr(value, "dataframe", None)
    if frame is not None:
        try:
            return digest_value(frame)
        except TypeError:
            pass
    uri = getattr(value, "uri", None) or getattr(value, "remote_source", None)
    if isinstance(uri, str) and uri:
        return digest_value({"$uri": uri})
    cls = type(value)
    log.warning("audit: no content digest for a %s.%s value; recorded by type only", cls.__module__, cls.__name__)
    return f"undigestable:{cls.__module__}.{cls.__qualname__}"


class NotUnicode(AiosError, ValueError):
    """A task's input or output holds text that is not Unicode: it has no digest, and no record could hold it."""


def digest_io(values: Mapping[str, Any]) -> dict[str, str]:
    """Digest every named value (``name -> sha256:...``).

    Raises:
        NotUnicode: a value holds a lone surrogate (bytes that were not UTF-8, as Python passes on a Latin-1 folder
            name given to ``pyflyte run``): named with the character escaped, before the task's body runs, where it
            was a ``UnicodeEncodeError`` traceback from inside the digest.
    """
    out: dict[str, str] = {}
    for name, v in values.items():
        try:
            out[name] = digest_one(v)
        except UnicodeEncodeError as e:
            bad = e.object[e.start : e.end] if isinstance(e.object, str) else ""
            msg = (
                f"{name!r} holds text that is not Unicode ({bad!a}: bytes that were not UTF-8, such as a Latin-1 file "
                "name), which no audit record can hold: pass UTF-8 text (rename the folder or file, or reach it "
                "through a link with a UTF-8 name)"
            )
            raise NotUnicode(msg) from None
    return out


@functools.cache
def _code_version(configured: str) -> str:
    return code_version(configured)


def execution_ref(task_name: str) -> ExecutionRef:
    """Flyte identity of the running task; local runs get the process's run id (see ``context.local_run_id``)."""
    ex = current_execution(task_name)
    if ex.task_name in ("", "local"):
        return ex.model_copy(update={"task_name": task_name})
    return ex


@functools.lru_cache(maxsize=1024)
def output_names(fn: Callable[..., Any]) -> tuple[str, ...]:
    """Flyte output names of ``fn`` (``o0``, ``o1``... or a NamedTuple's fields), from its return annotation."""
    from flytekit.core.interface import extract_return_annotation

    try:
        hints = typing.get_type_hints(fn, include_extras=True)
    except Exception:
        hints = {}
    ret = hints.get("return", inspect.signature(fn).return_annotation)
    if ret is inspect.Signature.empty:
        return ()
    return tuple(extract_return_annotation(ret))


def _error_attributes(error: BaseException) -> dict[str, Any]:
    # The message may quote input data: keep its digest, never the text.
    return {
        "error_type": f"{type(error).__module__}.{type(error).__qualname__}",
        "error_digest": "sha256:" + hashlib.sha256(str(error).encode("utf-8", "replace")).hexdigest(),
    }


def build_event(
    scope: AuditScope,
    kind: str,
    status: str,
    error: BaseException | None = None,
    execution: ExecutionRef | None = None,
    extra: dict[str, Any] | None = None,
) -> AuditEvent:
    """The record of a finished scope (``execution``: default the running Flyte task's identity)."""
    attributes = {**scope.attributes, **(extra or {})}
    if error is not None:
        attributes.update(_error_attributes(error))
        reason = getattr(error, "reason_code", "")
        if reason:
            attributes["reason_code"] = reason
    return AuditEvent(
        kind=kind,
        actor=scope.settings.actor,
        status=status,
        subject=scope.subject,
        execution=execution or execution_ref(scope.task_name),
        code_version=_code_version(scope.settings.code_version),
        started_at=scope.started_at,
        ended_at=dt.datetime.now(dt.UTC),
        inputs=dict(scope.inputs),
        outputs=dict(scope.outputs),
        models=list(scope.models),
        policy_decisions=list(scope.policy_decisions),
        approvals=list(scope.approvals),
        parents=list(scope.parents),
        attributes=attributes,
    )


def finish_scope(
    scope: AuditScope, kind: str, status: str, *, error: BaseException | None = None, deck: bool = True
) -> AuditRecord:
    """Append the scope's record durably (raises ``AuditWriteError`` on failure) and publish its deck."""
    record = audit_log(scope.settings).append(build_event(scope, kind, status, error))
    scope.record_id = record.record_id
    if deck:
        _publish_deck(record)
    return record


def _publish_deck(record: AuditRecord) -> None:
    try:
        import flytekit

        if not flytekit.current_context().enable_deck:
            return
        from flytekit import Deck

        Deck("audit", record_html(record))
    except Exception as e:
        log.warning("audit: could not publish the audit deck for record %s: %s", record.record_id, e)


def record_html(record: AuditRecord) -> str:
    """A small self-contained HTML view of one record (used as the ``audit`` Flyte Deck)."""
    ev = record.event
    rows: list[tuple[str, str]] = [
        ("record id", record.record_id),
        ("sequence", str(record.seq)),
        ("chain hash", record.chain_hash),
        ("kind / status", f"{ev.kind} / {ev.status}"),
        ("execution", ev.execution.execution_key if ev.execution else ""),
        ("task", f"{ev.execution.task_name} {ev.execution.task_version}" if ev.execution else ""),
        ("actor", ev.actor),
        ("code version", ev.code_version),
    ]
    rows += [(f"input {k}", v) for k, v in ev.inputs.items()]
    rows += [(f"output {k}", v) for k, v in ev.outputs.items()]
    rows += [(f"model {m.name}", f"{m.version} {m.digest}") for m in ev.models]
    rows += [("parent", p) for p in ev.parents]
    rows += [("policy decision", str(d.get("effect", d))) for d in ev.policy_decisions]
    rows += [("approval", str(a.get("decision", a))) for a in ev.approvals]
    body = "".join(f"<tr><th>{html.escape(k)}</th><td><code>{html.escape(v)}</code></td></tr>" for k, v in rows)
    return f"<h3>Audit record</h3><table>{body}</table>"
