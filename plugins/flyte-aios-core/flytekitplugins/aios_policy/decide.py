"""``evaluate`` (never raises; every failure is a deny) and ``enforce`` (evaluate + durable audit record).

Fail closed, always: a missing or unparseable policy set, an unknown principal, action or resource, a
missing or ill-typed attribute, an engine error and an engine slower than its budget all give ``deny``
with a reason. ``enforce`` writes the decision to the audit trail before it returns; if that write
fails the decision is a deny.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from flytekitplugins.aios_core.errors import GovernanceDenied
from flytekitplugins.aios_core.settings import Settings
from flytekitplugins.aios_core.types import PolicyDecision
from flytekitplugins.aios_core.visible import visible
from flytekitplugins.aios_policy.engine import PolicyEngine, PolicySource, Verdict, get_engine
from flytekitplugins.aios_policy.request import PolicyRequest, coerce_request

log = logging.getLogger(__name__)


def policy_source(settings: Settings, policy_dir: str | Path | None = None) -> PolicySource:
    """Policy directory and roles file of ``settings`` (``--policy-dir``, ``AIOS_POLICY_DIR``), or ``policy_dir``."""
    return PolicySource(Path(policy_dir).resolve() if policy_dir else settings.policy_dir, settings.roles_file)


def evaluate(
    request: PolicyRequest | dict[str, Any],
    *,
    settings: Settings,
    policy_dir: str | Path | None = None,
    engine: PolicyEngine | None = None,
    budget: float | None = None,
) -> PolicyDecision:
    """Decide one request. Never raises: every error becomes a deny whose reasons say what went wrong.

    Args:
        request: the request, or its dict form (validated; malformed input is a deny).
        settings: the caller's settings: policy folder, roles file, engine kind and time budget.
        policy_dir: policies to use instead of ``settings.policy_dir``.
        engine: engine to use instead of ``settings.policy_engine`` (default cedar).
        budget: time budget in milliseconds (default ``settings.policy_budget_ms``, 200).

    Returns:
        The decision: ``allow``, ``deny`` or ``require_approval`` (with ``decision.approval`` set).
    """
    return evaluate_many([request], settings=settings, policy_dir=policy_dir, engine=engine, budget=budget)[0]


def evaluate_many(
    requests: Sequence[PolicyRequest | dict[str, Any]],
    *,
    settings: Settings,
    policy_dir: str | Path | None = None,
    engine: PolicyEngine | None = None,
    budget: float | None = None,
) -> list[PolicyDecision]:
    """Decide a batch in one engine call (same semantics as :func:`evaluate`; budget is per request).

    Loading and parsing the policy set (once per process) is not counted against the budget.
    """
    parsed: list[PolicyRequest | None] = []
    verdicts: list[Verdict | None] = []
    digests: list[str] = []
    for raw in requests:
        try:
            request = coerce_request(raw)
            digests.append(request.digest())  # what every decision records; text that is not Unicode has none
            parsed.append(request)
            verdicts.append(None)
        except UnicodeEncodeError as e:
            bad = e.object[e.start : e.end] if isinstance(e.object, str) else ""
            msg = (
                f"malformed policy request: it holds text that is not Unicode ({bad!a}, a lone surrogate: bytes "
                "that were not UTF-8); send UTF-8 text"
            )
            parsed.append(None)
            digests.append("")
            verdicts.append(Verdict("deny", [msg]))
        except ValueError as e:
            parsed.append(None)
            digests.append("")
            verdicts.append(Verdict("deny", [f"malformed policy request: {_one_line(e)}"]))
    todo = [(i, r) for i, r in enumerate(parsed) if r is not None]
    kind = "unknown"
    start = time.perf_counter()
    try:
        eng = engine or get_engine(settings.policy_engine)
        kind = eng.kind
        if todo:
            source = policy_source(settings, policy_dir)
            eng.policy_set_digest(source)  # load + validate once per process, outside the budget
            start = time.perf_counter()
            answers = eng.decide([r for _, r in todo], source)
            if len(answers) != len(todo):
                raise RuntimeError(f"engine returned {len(answers)} verdicts for {len(todo)} requests")
            for (i, _), v in zip(todo, answers, strict=True):
                verdicts[i] = v
    except Exception as e:
        log.warning("policy engine failed, denying: %s", e)
        for i, _ in todo:
            verdicts[i] = Verdict("deny", [f"policy engine error (fail closed): {type(e).__name__}: {_one_line(e)}"])
    elapsed_us = (time.perf_counter() - start) * 1e6
    limit_ms = (budget if budget is not None and budget > 0 else settings.policy_budget_ms) * max(1, len(requests))
    out = []
    for req, digest, maybe in zip(parsed, digests, verdicts, strict=True):
        v = maybe if maybe is not None else Verdict("deny", ["the engine gave no verdict (fail closed)"])
        if elapsed_us > limit_ms * 1000 and v.effect != "deny":
            over = f"policy engine exceeded its time budget ({elapsed_us / 1000:.1f} ms > {limit_ms:.1f} ms)"
            v = Verdict("deny", [f"{over}: denied (fail closed)"], v.policy_ids, v.policy_set_digest)
        out.append(_decision(req, digest, v, kind, elapsed_us / max(1, len(requests))))
    return out


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split())[:500]


def _decision(req: PolicyRequest | None, digest: str, v: Verdict, engine: str, duration_us: float) -> PolicyDecision:
    attrs: dict[str, Any] = {}
    if req is not None:
        attrs = {"principal": req.principal, "action": req.action, "resource_type": req.resource["type"]}
        attrs["resource_id"] = req.resource["id"]
    return PolicyDecision(
        effect=v.effect,
        reasons=list(v.reasons),
        policy_ids=list(v.policy_ids),
        policy_set_digest=v.policy_set_digest,
        request_digest=digest,
        engine=engine,
        duration_us=duration_us,
        approval=v.approval if v.effect == "require_approval" else None,
        attributes=attrs,
    )


def enforce(
    request: PolicyRequest | dict[str, Any],
    *,
    subject: str = "",
    policy_dir: str | Path | None = None,
    raise_on_deny: bool = True,
    attributes: dict[str, Any] | None = None,
    settings: Settings,
) -> PolicyDecision:
    """Evaluate, write the decision to the audit trail (durably), then act on it.

    Args:
        request: the policy request (or its dict form).
        subject: what the decision is about in the audit trail (a document digest, a model id).
            Defaults to ``<resource type>::<resource id>``.
        policy_dir: policies to use instead of the configured ``AIOS_POLICY_DIR``.
        raise_on_deny: raise :class:`GovernanceDenied` on deny (default). When False a deny is returned.
        attributes: extra non-sensitive metadata for the audit record.
        settings: the caller's settings: policies, engine, budget, audit store and actor.

    Returns:
        The decision (``allow`` or ``require_approval``; ``deny`` only with ``raise_on_deny=False``),
        with ``audit_record_id`` set to the record's id.

    Raises:
        GovernanceDenied: ``reason_code="policy_deny"`` naming the policy and reason, or
            ``reason_code="audit_write_failed"`` when the decision could not be recorded.
    """
    from flytekitplugins.aios_policy.record import record_decision

    decision = evaluate(request, settings=settings, policy_dir=policy_dir)
    decision = record_decision(decision, subject=subject, attributes=attributes, settings=settings)
    if decision.effect == "deny" and raise_on_deny:
        raise GovernanceDenied(denial_message(decision), reason_code="policy_deny", record_id=decision.audit_record_id)
    return decision


def enforce_many(
    requests: Sequence[PolicyRequest | dict[str, Any]],
    *,
    subjects: Sequence[str],
    attributes: Sequence[dict[str, Any] | None] | None = None,
    policy_dir: str | Path | None = None,
    settings: Settings,
) -> list[PolicyDecision]:
    """:func:`enforce` for a batch: one engine call and ONE durable audit transaction for all decisions.

    Denies are returned, not raised (each item of a batch is handled on its own); callers must check
    ``effect``. Every decision, allow and deny, is recorded before this returns.

    Raises:
        GovernanceDenied: ``reason_code="audit_write_failed"`` when the batch could not be recorded; then
            nothing in it may be acted on.
    """
    from flytekitplugins.aios_policy.record import record_decisions

    decisions = evaluate_many(requests, settings=settings, policy_dir=policy_dir)
    extra = list(attributes) if attributes is not None else [None] * len(decisions)
    return record_decisions(decisions, subjects=subjects, attributes=extra, settings=settings)


def denial_message(decision: PolicyDecision) -> str:
    """One message naming what was denied, by which policy, and why: what a person reads (the task's error in a
    terminal or the Flyte console, a connector's answer), so the request's text in it (a resource id, an action a
    caller chose) has its control characters escaped (:func:`.visible.visible`)."""
    a = decision.attributes
    on = f"{a.get('resource_type', '?')}::{a.get('resource_id', '?')}"
    what = f"{a.get('principal', '?')} {a.get('action', '?')} on {on}"
    by = ", ".join(decision.policy_ids) or "default deny / fail closed"
    return visible(f"policy denied {what} [policies: {by}]: {'; '.join(decision.reasons)}")


def failed_decision(reason: str, principal: str, action: str) -> PolicyDecision:
    """A deny for a request that could not even be built (recorded like any other decision)."""
    attrs = {"principal": principal, "action": action, "resource_type": "?", "resource_id": "?"}
    return PolicyDecision(effect="deny", reasons=[reason], engine="none", attributes=attrs)
