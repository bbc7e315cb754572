"""Governed Flyte 2 tasks: a fail-closed policy gate, approvals on conditions and an audited attempt.

Use as a decorator placed UNDER ``@env.task`` (sync or async functions)::

    @env.task
    @governed(action="act_on_document", resource=("Document", "digest"),
              context=lambda **i: {"amount": i["amount"], ...})
    async def act_on_document(digest: str, amount: float, ...) -> str: ...

It wraps the function itself, not an observer callback (observers swallow exceptions): the gate runs in the task
attempt, and whatever it raises fails the task. Semantics, as ``policy_gate`` + ``audited`` on flytekit:

* the request is built from the typed inputs and the acting principal (``settings.actor``) and decided with
  :func:`~flytekitplugins.aios_policy.enforce`, which writes a ``policy_decision`` record before anything runs;
* ``deny`` (a policy, a request that cannot be built, an engine error, a decision that cannot be recorded)
  raises :class:`GovernanceDenied` and the body never runs;
* ``require_approval`` opens the request, pauses on a Flyte 2 condition and runs the body only when the
  verification after it finds an authorized quorum (see :mod:`.approvals`);
* every attempt ends with one ``task`` record (inputs/outputs by digest, the decisions and approvals it used,
  the Flyte 2 identity); if that record cannot be written the task fails and its result is not released.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import sys
from collections.abc import Callable
from typing import Any, TypeVar, cast

from flytekitplugins.aios_core.errors import GovernanceDenied
from flytekitplugins.aios_core.types import PolicyDecision
from flytekitplugins.aios_flyte2.approvals import Waiter, await_approvals, open_for, settle, wait_approvals
from flytekitplugins.aios_flyte2.record import Attempt, attempt
from flytekitplugins.aios_policy import Check, enforce
from flytekitplugins.aios_policy.spec import ContextSpec, ResourceSpec, resolve_path

F = TypeVar("F", bound=Callable[..., Any])


@dataclasses.dataclass(frozen=True)
class GovernSpec:
    """What a governed task checks: an optional policy pre-condition, the subject and how approvals wait."""

    check: Check | None = None
    subject: str | Callable[..., str] | None = None
    approval_timeout_s: float | str | None = None
    waiter: Waiter = "auto"

    def timeout(self, kwargs: dict[str, Any]) -> float | None:
        """The approval timeout: a number, the value of the named input, or None (the settings' default).

        A named input is the launcher's choice: it must be seconds above 0 and at most a year and a day
        (:func:`~flytekitplugins.aios_approvals.service.check_timeout`), or the attempt fails naming the input
        before any request is opened (a negative one opened a request already timed out).
        """
        from flytekitplugins.aios_approvals.service import check_timeout

        if isinstance(self.approval_timeout_s, str):
            name = f"approval timeout input {self.approval_timeout_s!r}"
            value = resolve_path(kwargs, self.approval_timeout_s)
            if isinstance(value, str):  # a text input holding a number of seconds
                try:
                    value = float(value)
                except ValueError:
                    raise ValueError(f"{name} must be a number of seconds, not {value!r}") from None
            return check_timeout(value, name)
        return None if self.approval_timeout_s is None else check_timeout(self.approval_timeout_s, "approval_timeout_s")


def _subject(spec: GovernSpec, kwargs: dict[str, Any], resource: dict[str, Any]) -> str:
    if spec.subject is None:
        return str(resource.get("id", ""))
    if callable(spec.subject):
        return str(spec.subject(**kwargs))
    return str(resolve_path(kwargs, spec.subject))


def decide(spec: GovernSpec, task: str, att: Attempt) -> tuple[PolicyDecision, str, dict[str, Any]] | None:
    """Decide the pre-condition (audited); raise on deny. Returns (decision, subject, summary) or None."""
    kwargs = att.kwargs
    if spec.check is None:
        if spec.subject is not None:
            att.scope.set_subject(_subject(spec, kwargs, {}))
        return None
    from flytekitplugins.aios_policy.decide import denial_message, failed_decision
    from flytekitplugins.aios_policy.record import record_decision

    settings = att.scope.settings
    principal = settings.actor
    attrs = {"task": task, "stage": "pre", "runtime": "flyte2"}
    try:
        resource, context = spec.check.build(kwargs)
        subject = _subject(spec, kwargs, resource)
        att.scope.set_subject(subject)
    except Exception as e:
        reason = f"could not build the policy request for {task} from its inputs: {e}"
        d = record_decision(failed_decision(reason, principal, spec.check.action), attributes=attrs, settings=settings)
        raise GovernanceDenied(denial_message(d), reason_code="policy_deny", record_id=d.audit_record_id) from e
    request = {"principal": principal, "action": spec.check.action, "resource": resource, "context": context}
    decision = enforce(request, subject=subject, attributes=attrs, settings=settings)  # deny raises
    summary = {"task": task, "reasons": decision.reasons, **{k: request[k] for k in ("action", "resource", "context")}}
    return decision, subject, summary


def _gate(
    decided: tuple[PolicyDecision, str, dict[str, Any]] | None, spec: GovernSpec, att: Attempt
) -> tuple[str, str] | None:
    """(gate, request id) when the decision needs an approval; the request is opened here."""
    if decided is None:
        return None
    decision, subject, summary = decided
    if decision.effect != "require_approval":
        return None
    assert decision.approval is not None  # require_approval always names its gate
    settings = att.scope.settings
    timeout = spec.timeout(att.kwargs)
    return decision.approval.gate, open_for(
        decision, subject=subject, summary=summary, requester=settings.actor, timeout_s=timeout, settings=settings
    )


def run_sync(fn: Callable[..., Any], spec: GovernSpec, task: str, kwargs: dict[str, Any]) -> Any:
    """One governed attempt of a sync task body."""
    with attempt(task, kwargs) as att:
        gate = _gate(decide(spec, task, att), spec, att)
        if gate is not None:
            outs = wait_approvals(
                gate[0], [gate[1]], settings=att.scope.settings, timeout_s=spec.timeout(kwargs), waiter=spec.waiter
            )
            settle(gate[0], outs[0])
        return att.done(fn(**kwargs))


async def run_async(fn: Callable[..., Any], spec: GovernSpec, task: str, kwargs: dict[str, Any]) -> Any:
    """One governed attempt of an async task body."""
    with attempt(task, kwargs) as att:
        gate = _gate(decide(spec, task, att), spec, att)
        if gate is not None:
            outs = await await_approvals(
                gate[0], [gate[1]], settings=att.scope.settings, timeout_s=spec.timeout(kwargs), waiter=spec.waiter
            )
            settle(gate[0], outs[0])
        return att.done(await fn(**kwargs))


def _module_name(f: Callable[..., Any]) -> str:
    """The function's module; for ``python -m pkg.mod`` the real name, not ``__main__``."""
    module = f.__module__
    if module == "__main__":
        spec = getattr(sys.modules.get("__main__"), "__spec__", None)
        module = spec.name if spec is not None else module
    return module


def governed(
    action: str | None = None,
    resource: ResourceSpec | None = None,
    context: ContextSpec = None,
    *,
    subject: str | Callable[..., str] | None = None,
    approval_timeout_s: float | str | None = None,
    waiter: Waiter = "auto",
) -> Callable[[F], F]:
    """Decorator (under ``@env.task``): policy gate, approvals on conditions and an audited attempt.

    Args:
        action: Cedar action of the pre-condition (omit for an audited task without a policy gate).
        resource: callable ``(**inputs) -> {"type", "id", ...}`` or ``(type, input path of the id)``.
        context: callable ``(**inputs) -> {...}`` or ``{attribute: input path}``.
        subject: input path or callable naming what the decision is about (default: the resource id).
        approval_timeout_s: seconds a required approval waits, or the name of the input holding them
            (default ``settings.approval_timeout_s``).
        waiter: how approvals wait: ``auto`` (trail locally, condition on a cluster), ``trail`` or ``condition``.

    Returns:
        A decorator keeping the signature (``functools.wraps``) and the sync/async nature of the function.

    Raises:
        ValueError: at decoration time, for an action without a resource.
    """
    return functools.partial(
        wrap_function, spec=make_spec(action, resource, context, subject, approval_timeout_s, waiter)
    )


def make_spec(
    action: str | None,
    resource: ResourceSpec | None,
    context: ContextSpec,
    subject: str | Callable[..., str] | None,
    approval_timeout_s: float | str | None,
    waiter: Waiter,
) -> GovernSpec:
    """Validate the arguments of :func:`governed` (or the ``Governed`` plugin config) into a spec."""
    if action is not None and resource is None:
        msg = f"governed(action={action!r}) needs resource=: a callable or a (type, input path) pair"
        raise ValueError(msg)
    check = Check(action, resource, context) if action is not None and resource is not None else None
    return GovernSpec(check=check, subject=subject, approval_timeout_s=approval_timeout_s, waiter=waiter)


def wrap_function(f: F, spec: GovernSpec, task_name: str = "") -> F:
    """``f`` governed by ``spec`` (same signature, same sync/async nature); records name it ``task_name``."""
    signature = inspect.signature(f)
    name = task_name or f"{_module_name(f)}.{f.__qualname__}"

    def bind(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        return dict(bound.arguments)

    if inspect.iscoroutinefunction(f):

        @functools.wraps(f)
        async def awrapper(*args: Any, **kwargs: Any) -> Any:
            return await run_async(f, spec, name, bind(args, kwargs))

        wrapper: Callable[..., Any] = awrapper
    else:

        @functools.wraps(f)
        def swrapper(*args: Any, **kwargs: Any) -> Any:
            return run_sync(f, spec, name, bind(args, kwargs))

        wrapper = swrapper
    wrapper.__aios_governed__ = spec  # type: ignore[attr-defined]
    return cast(F, wrapper)


__all__ = ["Attempt", "GovernSpec", "decide", "governed", "make_spec", "run_async", "run_sync", "wrap_function"]
