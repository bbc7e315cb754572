"""The Cedar engine (default): two passes over a cached, schema-validated policy set.

Pass 1 (access): ordinary Cedar semantics over every policy without ``@effect``: default deny,
``forbid`` overrides ``permit``; any evaluation error is a deny. Pass 2 (approval), only for requests
pass 1 allows: the ``@effect("require_approval")`` permits; if any matches, the decision becomes
``require_approval`` with the gate and risk of the matching policy of highest risk (ties: file order).
"""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Sequence
from typing import Any

import cedarpy

from flytekitplugins.aios_core.types import ApprovalRequirement
from flytekitplugins.aios_policy.cedar_load import RISKS, CedarPolicySet, load_policy_set
from flytekitplugins.aios_policy.cedar_types import RequestError, record_to_cedar
from flytekitplugins.aios_policy.engine import PolicySource, Verdict
from flytekitplugins.aios_policy.request import PolicyRequest

_Prepared = tuple[dict[str, Any], dict[str, Any]]  # (cedar request, resource entity)

VERDICT_CACHE_SIZE = 4096
"""Verdicts kept per process, keyed by the policy set's content digest (its policies, schema and roles) and the
request exactly as Cedar is handed it (principal, action, resource entity with its attributes, typed context): Cedar's
answer depends on nothing else (no clock, no entity beyond the roles and the request's own resource), so the same
request under the same policy set is answered without evaluating it again. A gated task runs
with the same principal, action and resource every time; evaluating it cold after the flytekit work around the task
cost 150-180 us a call against 33 us warm (benchmarks/README.md, the session of 2026-12-07 from 21:32 UTC)."""
_verdicts: dict[tuple[str, str], Verdict] = {}
_verdicts_lock = threading.Lock()


def _cached(key: tuple[str, str]) -> Verdict | None:
    with _verdicts_lock:
        hit = _verdicts.get(key)
    # a copy: callers may change the lists of the verdict they get
    return None if hit is None else dataclasses.replace(hit, reasons=list(hit.reasons), policy_ids=list(hit.policy_ids))


def _remember(key: tuple[str, str], verdict: Verdict) -> None:
    kept = dataclasses.replace(verdict, reasons=list(verdict.reasons), policy_ids=list(verdict.policy_ids))
    with _verdicts_lock:
        if key not in _verdicts and len(_verdicts) >= VERDICT_CACHE_SIZE:
            del _verdicts[next(iter(_verdicts))]  # the oldest first
        _verdicts[key] = kept


def clear_verdicts() -> None:
    """Forget every cached verdict (tests)."""
    with _verdicts_lock:
        _verdicts.clear()


class CedarEngine:
    """Cedar policies via cedarpy (see the module docstring)."""

    kind = "cedar"

    def decide(self, requests: Sequence[PolicyRequest], source: PolicySource) -> list[Verdict]:
        """One verdict per request, in order; bad requests get a deny naming the problem."""
        ps = load_policy_set(source)
        verdicts: list[Verdict | None] = [None] * len(requests)
        prepared: list[tuple[int, _Prepared]] = []
        keys: dict[int, tuple[str, str]] = {}
        for i, req in enumerate(requests):
            try:
                item = _prepare(req, ps)
            except RequestError as e:
                verdicts[i] = Verdict("deny", [f"invalid request: {e}"], policy_set_digest=ps.digest)
                continue
            # keyed by what Cedar is handed, not by the request's digest: that wrote NaN and infinities as null, the
            # digest of an absent value, and a request Cedar denies (not a finite number) was answered as its twin
            # without the attribute had been (re-review R32a)
            key = (ps.digest, json.dumps(item, sort_keys=True, separators=(",", ":")))
            verdicts[i] = _cached(key)
            if verdicts[i] is None:
                prepared.append((i, item))
                keys[i] = key
        for chunk in _chunks(prepared):
            for i, verdict in zip([i for i, _ in chunk], _decide_chunk([p for _, p in chunk], ps), strict=True):
                verdicts[i] = verdict
                _remember(keys[i], verdict)
        return [v if v is not None else Verdict("deny", ["no verdict (internal error)"]) for v in verdicts]

    def validate(self, source: PolicySource) -> list[str]:
        """Load (parse + schema validation) and report problems; empty when valid."""
        from flytekitplugins.aios_policy.engine import PolicyLoadError

        try:
            load_policy_set(source)
        except PolicyLoadError as e:
            return [str(e)]
        return []

    def rule_ids(self, source: PolicySource) -> list[str]:
        """Every rule id, in file order."""
        return list(load_policy_set(source).rule_ids)

    def policy_set_digest(self, source: PolicySource) -> str:
        """Digest of policies + schema + roles."""
        return load_policy_set(source).digest


def _prepare(req: PolicyRequest, ps: CedarPolicySet) -> _Prepared:
    if req.principal not in ps.principals:
        raise RequestError(f"unknown principal {req.principal!r}: declare it in roles.yaml with its roles")
    spec = ps.actions.get(req.action)
    if spec is None:
        raise RequestError(f"unknown action {req.action!r}; the schema declares: {', '.join(sorted(ps.actions))}")
    applies = spec.get("appliesTo", {})
    rtype = req.resource["type"]
    if rtype not in ps.entity_types or rtype in ("Role", "User", "Service"):
        raise RequestError(f"unknown resource type {rtype!r}")
    if rtype not in applies.get("resourceTypes", []):
        raise RequestError(f"action {req.action!r} does not apply to resources of type {rtype!r}")
    ptype, pid = req.principal_uid
    if ptype not in applies.get("principalTypes", []):
        raise RequestError(f"action {req.action!r} cannot be taken by a {ptype}")
    shape = ps.entity_types[rtype].get("shape", {}).get("attributes", {})
    attrs = record_to_cedar(req.resource_attrs, shape, f"resource {rtype}")
    context = record_to_cedar(req.context, applies.get("context", {}).get("attributes", {}), "context")
    uid = {"type": rtype, "id": req.resource["id"]}
    cedar_req = {"principal": {"type": ptype, "id": pid}, "action": {"type": "Action", "id": req.action}}
    cedar_req.update(resource=uid, context=context)
    return cedar_req, {"uid": uid, "attrs": attrs, "parents": []}


def _chunks(prepared: list[tuple[int, _Prepared]]) -> list[list[tuple[int, _Prepared]]]:
    """Split so that within a chunk every resource uid has one set of attributes."""
    chunks: list[list[tuple[int, _Prepared]]] = []
    seen: dict[str, Any] = {}
    current: list[tuple[int, _Prepared]] = []
    for item in prepared:
        ent = item[1][1]
        key = json.dumps(ent["uid"], sort_keys=True)
        if key in seen and seen[key] != ent["attrs"]:
            chunks.append(current)
            current, seen = [], {}
        seen[key] = ent["attrs"]
        current.append(item)
    if current:
        chunks.append(current)
    return chunks


def _decide_chunk(prepared: list[_Prepared], ps: CedarPolicySet) -> list[Verdict]:
    # Resources without attributes need no entity (Cedar treats them as attribute-less, parent-less).
    unique = {json.dumps(e["uid"], sort_keys=True): e for _, e in prepared if e["attrs"]}
    entities = ps.base_entities.with_added_json_str(json.dumps(list(unique.values()))) if unique else ps.base_entities
    reqs = [r for r, _ in prepared]
    first = cedarpy.is_authorized_batch(reqs, ps.access, entities, schema=ps.schema)
    verdicts = [_access_verdict(res, req, ps) for res, req in zip(first, reqs, strict=True)]
    scoped = ps.approval_actions
    allowed = [
        i
        for i, v in enumerate(verdicts)
        if v.effect == "allow" and (scoped is None or reqs[i]["action"]["id"] in scoped)
    ]
    if ps.approval is not None and allowed:
        second = cedarpy.is_authorized_batch([reqs[i] for i in allowed], ps.approval, entities, schema=ps.schema)
        for i, res in zip(allowed, second, strict=True):
            verdicts[i] = _approval_verdict(res, verdicts[i], ps)
    return verdicts


def _rule_reason(rule_id: str, ps: CedarPolicySet) -> str:
    return f"{rule_id}: {ps.annotations.get(rule_id, {}).get('reason', 'no @reason given')}"


def _access_verdict(res: cedarpy.AuthzResult, req: dict[str, Any], ps: CedarPolicySet) -> Verdict:
    diag = res.diagnostics
    ids = list(diag.reasons)
    if diag.errors:
        reasons = [f"policy evaluation error (fail closed): {e}" for e in diag.errors]
        return Verdict("deny", reasons, ids, ps.digest)
    if res.decision == cedarpy.Decision.Allow:
        return Verdict("allow", [_rule_reason(i, ps) for i in ids], ids, ps.digest)
    if ids:
        return Verdict("deny", [f"denied by {_rule_reason(i, ps)}" for i in ids], ids, ps.digest)
    who, what, on = req["principal"], req["action"]["id"], req["resource"]["type"]
    reason = f"no policy permits {who['type']}::{who['id']!r} to {what} on a {on} (default deny)"
    return Verdict("deny", [reason], [], ps.digest)


def _approval_verdict(res: cedarpy.AuthzResult, allow: Verdict, ps: CedarPolicySet) -> Verdict:
    diag = res.diagnostics
    if diag.errors:
        reasons = [f"approval policy evaluation error (fail closed): {e}" for e in diag.errors]
        return Verdict("deny", reasons, list(diag.reasons), ps.digest)
    matched = set(diag.reasons)
    ids = [i for i in ps.rule_ids if i in matched]
    if res.decision != cedarpy.Decision.Allow or not ids:
        return allow
    best = max(ids, key=lambda i: (RISKS.index(ps.annotations[i]["risk"]), -ids.index(i)))
    ann = ps.annotations[best]
    requirement = ApprovalRequirement(gate=ann["gate"], risk=ann["risk"], reason=ann.get("reason", ""))  # type: ignore[arg-type]
    reasons = [f"approval required by {_rule_reason(i, ps)}" for i in ids] + allow.reasons
    return Verdict("require_approval", reasons, ids + allow.policy_ids, ps.digest, requirement)
