"""Policy gates around a task body: decide before it runs (and, optionally, check its result).

Use as a decorator placed UNDER ``@task`` (composes with any task config), below ``@audited`` when both
are used so that the decision lands in the step's audit record::

    @task
    @audited(subject_input="doc_id")
    @policy_gate(action="act_on_document", resource=("Document", "doc_id"),
                 context=lambda **i: {"amount": i["amount"], ...})
    def pay(doc_id: str, amount: float, ...) -> str: ...

Semantics (fail closed): the request is built from the typed inputs and the acting principal
(``settings.actor``) and decided with :func:`enforce` (so the decision is audited before anything runs).
``allow``: the body runs. ``deny``: ``GovernanceDenied`` naming the policy and reason; the body never
runs. ``require_approval``: handed to ``flytekitplugins.aios_approvals.require_approval``, which returns
only for a valid, authorized approval; if that plugin is missing or fails in any other way, deny.
A post-condition (``post=Check(...)``) is decided on the result the same way; on deny the task fails and
its result is never released.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Any, Literal, TypeVar, cast

from flytekitplugins.aios_core.errors import GovernanceDenied
from flytekitplugins.aios_core.settings import Settings, get_settings
from flytekitplugins.aios_core.types import PolicyDecision
from flytekitplugins.aios_policy.decide import denial_message, enforce, failed_decision
from flytekitplugins.aios_policy.record import record_decision
from flytekitplugins.aios_policy.spec import Check, ContextSpec, ResourceSpec, resolve_path

F = TypeVar("F", bound=Callable[..., Any])
Stage = Literal["pre", "post"]


@dataclasses.dataclass(frozen=True)
class GateSpec:
    """A gate: a pre-condition, a post-condition, or both; plus what the decision is about."""

    pre: Check | None = None
    post: Check | None = None
    subject: str | Callable[..., str] | None = None

    def __post_init__(self) -> None:
        if self.pre is None and self.post is None:
            msg = "a policy gate needs action=/resource= (a pre-condition) or post=Check(...) (a post-condition)"
            raise ValueError(msg)


def run_gated(fn: Callable[..., Any], spec: GateSpec, task_name: str, kwargs: dict[str, Any]) -> Any:
    """Decide ``spec.pre``, run ``fn(**kwargs)`` only if allowed, then decide ``spec.post`` on its result.

    The gated task's entry point: its settings are resolved here, once, and passed to both checks.
    """
    settings, subject = get_settings(), spec.subject
    if spec.pre is not None:
        gate_check(spec.pre, dict(kwargs), stage="pre", task_name=task_name, settings=settings, subject=subject)
    result = fn(**kwargs)
    if spec.post is not None:
        namespace = {**kwargs, "result": result}
        gate_check(spec.post, namespace, stage="post", task_name=task_name, settings=settings, subject=subject)
    return result


def gate_check(
    check: Check, namespace: dict[str, Any], *, stage: Stage, task_name: str, settings: Settings, subject: Any = None
) -> PolicyDecision:
    """Build the request, enforce it (audited), hand ``require_approval`` over; raise unless allowed."""
    principal = settings.actor
    attrs = {"task": task_name, "stage": stage}
    try:
        resource, context = check.build(namespace)
        subj = _subject(subject, namespace, resource)
    except Exception as e:
        reason = f"could not build the policy request for {task_name} ({stage}) from its inputs: {e}"
        decision = record_decision(
            failed_decision(reason, principal, check.action), attributes=attrs, settings=settings
        )
        rid = decision.audit_record_id
        raise GovernanceDenied(denial_message(decision), reason_code="policy_deny", record_id=rid) from e
    request = {"principal": principal, "action": check.action, "resource": resource, "context": context}
    decision = enforce(request, subject=subj, attributes=attrs, settings=settings)
    if decision.effect == "require_approval":
        _hand_over(decision, subj, request, task_name, settings)
    return decision


def _subject(subject: Any, namespace: Mapping[str, Any], resource: Mapping[str, Any]) -> str:
    if subject is None:
        return str(resource.get("id", ""))
    if callable(subject):
        return str(subject(**namespace))
    return str(resolve_path(namespace, str(subject)))


def _hand_over(decision: PolicyDecision, subject: str, request: dict[str, Any], task: str, settings: Settings) -> None:
    """Return only if the approvals plugin confirms a valid approval; anything else denies."""
    rid = decision.audit_record_id or None
    try:
        from flytekitplugins.aios_approvals import require_approval
    except ImportError as e:
        msg = f"{task}: policy requires approval ({decision.approval}) but the approvals plugin is missing: denied"
        raise GovernanceDenied(msg, reason_code="approval_unavailable", record_id=rid) from e
    summary = {"task": task, "reasons": decision.reasons}
    summary.update({k: request[k] for k in ("action", "resource", "context")})
    # Keyed on the request digest, not this decision's record id: the approval must be found again when
    # the same action is retried after it was approved (each retry writes a new decision record).
    evidence = {"policy_decision": decision.request_digest, "policy_set": decision.policy_set_digest}
    try:
        require_approval(
            decision, subject=subject, summary=summary, evidence=evidence, requester=settings.actor, settings=settings
        )
    except GovernanceDenied:
        raise
    except Exception as e:
        msg = f"{task}: approval check failed ({type(e).__name__}: {e}): denied (fail closed)"
        raise GovernanceDenied(msg, reason_code="approval_unavailable", record_id=rid) from e


def policy_gate(
    action: str | None = None,
    resource: ResourceSpec | None = None,
    context: ContextSpec = None,
    *,
    post: Check | None = None,
    postcondition: Check | None = None,
    subject: str | Callable[..., str] | None = None,
) -> Callable[[F], F]:
    """Decorator (under ``@task``): decide a policy before the body runs and optionally on its result.

    Args:
        action: Cedar action of the pre-condition (omit for a post-condition-only gate).
        resource: callable ``(**inputs) -> {"type", "id", ...}`` or ``(type, input path of the id)``.
        context: callable ``(**inputs) -> {...}`` or ``{attribute: input path}``.
        post: post-condition :class:`Check`; its callables also get ``result=``.
        postcondition: alias of ``post``.
        subject: input path or callable naming what the decision is about (default: the resource id).

    Returns:
        A decorator keeping the function's signature (``functools.wraps``) so flytekit sees its inputs.

    Raises:
        ValueError: at decoration time, for an incomplete gate (names the argument and the fix).
    """
    if action is not None and resource is None:
        msg = f"policy_gate(action={action!r}) needs resource=: a callable or a (type, input path) pair"
        raise ValueError(msg)
    pre = Check(action, resource, context) if action is not None and resource is not None else None
    spec = GateSpec(pre=pre, post=post or postcondition, subject=subject)

    def wrap(f: F) -> F:
        signature = inspect.signature(f)
        if spec.post is not None and "result" in signature.parameters:
            msg = f"{f.__qualname__}: an input named 'result' clashes with the post-condition's result; rename it"
            raise ValueError(msg)
        name = f"{f.__module__}.{f.__qualname__}"

        @functools.wraps(f)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            return run_gated(f, spec, name, dict(bound.arguments))

        wrapper.__aios_policy_gate__ = spec  # type: ignore[attr-defined]
        return cast(F, wrapper)

    return wrap


__all__ = ["Check", "GateSpec", "gate_check", "policy_gate", "run_gated"]
