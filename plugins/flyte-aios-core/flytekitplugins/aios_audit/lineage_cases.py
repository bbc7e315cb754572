"""The reviewer's view of a trace: one *case* per document (source, classification, policy, approvals, action)
and one summary per model version (training data, training, evaluation, drift trigger, promotions and approvers).

Everything here is read from the records a trace reached; approval signatures are re-checked with the approvals
key when it is available (``signature``: ``verified``, the reason it does not count, or ``unchecked``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flytekitplugins.aios_audit.edge_rules import is_record
from flytekitplugins.aios_audit.edges import document_of
from flytekitplugins.aios_audit.lineage import Trace, Tracer
from flytekitplugins.aios_audit.records import AuditRecord
from flytekitplugins.aios_core.settings import Settings


def _ref(rec: AuditRecord) -> dict[str, Any]:
    ex = rec.event.execution
    return {"seq": rec.seq, "record_id": rec.record_id, "execution": ex.execution_key if ex else ""}


def _policy(rec: AuditRecord) -> dict[str, Any]:
    ev = rec.event
    pd = ev.policy_decisions[0] if ev.policy_decisions else {}
    return {
        **_ref(rec),
        "effect": ev.status,
        "action": pd.get("action", ev.attributes.get("action", "")),
        "principal": ev.actor,
        "policy_ids": list(pd.get("policy_ids", [])),
        "reasons": list(pd.get("reasons", [])),
        "policy_set_digest": pd.get("policy_set_digest", ""),
        "request_digest": pd.get("request_digest", ""),
        "route": ev.attributes.get("route", ""),
    }


def _classification(rec: AuditRecord) -> dict[str, Any]:
    attrs = rec.event.attributes
    lineage: dict[str, Any] = attrs["lineage"] if isinstance(attrs.get("lineage"), dict) else {}
    found = dict(lineage.get("classification", {}))
    ctx: dict[str, Any] = attrs["context"] if isinstance(attrs.get("context"), dict) else {}
    found.setdefault("confidence", ctx.get("confidence"))
    found.setdefault("doc_type", ctx.get("doc_type"))
    found.setdefault("route", attrs.get("route", ""))
    return found


def _request(rec: AuditRecord) -> dict[str, Any]:
    req = rec.event.attributes.get("request", {})
    keys = ("gate", "risk", "quorum", "reason", "requester", "launcher", "execution", "expires_at")
    return {**_ref(rec), "request_id": rec.event.subject, **{k: req.get(k) for k in keys}}


class _Signatures:
    """Re-checks approval decisions with the approvals key (once loaded); ``unchecked`` when it is unavailable."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.env: Any = None
        self.error = ""
        self.requests: dict[str, Any] = {}

    def check(self, decision: dict[str, Any], request: dict[str, Any] | None) -> str:
        if request is None:
            return "unchecked: the request is not in the trace"
        if self.error:
            return f"unchecked ({self.error})"
        try:
            from flytekitplugins.aios_approvals.evaluate import Env, decision_problem
            from flytekitplugins.aios_approvals.models import ApprovalDecision, ApprovalRequest

            self.env = self.env or Env.load(self.settings)
        except Exception as e:  # no key, no roles file: say so, never fail the trace
            self.error = type(e).__name__
            return f"unchecked ({self.error})"
        try:
            key = str(request.get("request_id", ""))
            if key not in self.requests:
                self.requests = {key: ApprovalRequest.model_validate(request)}  # decisions follow their request
            problem = decision_problem(ApprovalDecision.model_validate(decision), self.requests[key], self.env)
        except Exception as e:  # a malformed record counts for nothing: say why
            return f"unchecked ({type(e).__name__})"
        return "verified" if problem is None else problem


def _approval(rec: AuditRecord, request: AuditRecord | None, sigs: _Signatures) -> dict[str, Any]:
    d = rec.event.attributes.get("decision", {})
    req = request.event.attributes.get("request") if request is not None else None
    return {
        **_ref(rec),
        "request_id": rec.event.subject,
        "approver": d.get("approver", rec.event.actor),
        "roles": list(d.get("roles", [])),
        "decision": d.get("action", ""),
        "reason": d.get("reason", ""),
        "decided_at": d.get("decided_at", ""),
        "signature": sigs.check(d, req),
    }


def _action(rec: AuditRecord) -> dict[str, Any]:
    ev, a = rec.event, rec.event.attributes
    keys = ("action", "amount", "currency", "system_of_record", "action_key", "request_id", "reason")
    out = {**_ref(rec), "kind": ev.kind, "status": ev.status, "actor": ev.actor, **{k: a.get(k) for k in keys}}
    out["action_key"] = out["action_key"] or ev.outputs.get("action_key", "")
    return out


def _outcome(case: dict[str, Any]) -> str:
    if any(a["kind"] == "action" for a in case["actions"]):
        return "posted"
    if case["quarantine"]:
        return "quarantined"
    if rejected := [a["approver"] for a in case["approvals"] if a["decision"] == "reject"]:
        return f"rejected by {', '.join(rejected)}: nothing was posted"
    if any(p["effect"] == "deny" for p in case["policy_decisions"]):
        return "denied by policy: nothing was posted"
    if refused := [a for a in case["actions"] if a["kind"] == "action_refused"]:
        return f"action refused ({refused[0]['status']}): nothing was posted"
    if case["approval_requests"]:
        return "waiting for approval or not acted on: nothing was posted"
    return "decided, no action recorded"


def cases(records: Iterable[AuditRecord], settings: Settings) -> list[dict[str, Any]]:
    """One case per document among ``records`` (given in sequence order), in order of first appearance.

    ``settings`` name the roles and approval keys that decisions' signatures are re-checked with."""
    by_alias: dict[str, AuditRecord] = {}
    by_id: dict[str, AuditRecord] = {}
    out: dict[str, dict[str, Any]] = {}
    sigs = _Signatures(settings)
    for rec in records:
        kind = rec.event.kind
        if kind == "approval_request":
            by_alias.setdefault(rec.event.subject, rec)
            by_id[rec.record_id] = rec
        request = None
        if kind in ("approval_decision", "approval_refused", "approval_verified"):
            parent = rec.event.parents[0] if rec.event.parents else ""
            request = by_id.get(parent) or by_alias.get(rec.event.subject)
        doc = document_of(request if request is not None else rec)
        if doc:
            case = out.get(doc)
            if case is None:
                case = out[doc] = _empty_case(doc)
            _add(case, rec, request, sigs)
    for case in out.values():
        case["outcome"] = _outcome(case)
    return list(out.values())


def _add(case: dict[str, Any], rec: AuditRecord, request: AuditRecord | None, sigs: _Signatures) -> None:
    kind = rec.event.kind
    if kind == "policy_decision" and rec.event.attributes.get("action") == "act_on_document":
        case["policy_decisions"].append(_policy(rec))
        lineage = rec.event.attributes.get("lineage")
        if isinstance(lineage, dict):
            case["source"] = lineage.get("source", {})
            case["protected_text"] = lineage.get("protected_text", "")
        case["classification"] = _classification(rec)
    elif kind == "approval_request":
        case["approval_requests"].append(_request(rec))
    elif kind == "approval_decision":
        case["approvals"].append(_approval(rec, request, sigs))
    elif kind == "approval_refused":
        case["refusals"].append({**_ref(rec), "who": rec.event.actor, "code": rec.event.status})
    elif kind in ("action", "action_refused"):
        case["actions"].append(_action(rec))
    elif kind == "quarantine":
        case["quarantine"].append({**_ref(rec), "reason": rec.event.status})


def _empty_case(doc: str) -> dict[str, Any]:
    lists = ("policy_decisions", "approval_requests", "approvals", "refusals", "actions", "quarantine")
    return {"document": doc, "source": {}, "protected_text": "", "classification": {}, **{k: [] for k in lists}}


def models(tracer: Tracer, tr: Trace) -> list[dict[str, Any]]:
    """A lineage summary of every model version the trace reached."""
    return [model_summary(tracer, n) for n in tr.nodes() if n.startswith("model:")]


def model_summary(tracer: Tracer, node: str) -> dict[str, Any]:
    """Training data, training record, evaluations, drift triggers, registration and promotions of a model node."""
    out: dict[str, Any] = {"model": node.removeprefix("model:"), "digest": "", "training_data": []}
    for key in ("training", "evaluations", "drift_triggers", "registered", "promotions", "retired"):
        out[key] = []
    for parent, rel, _seq in tracer.index.parents(node):
        if rel == "trained_on":
            out["training_data"].append(parent)
            continue
        rec = tracer.record(parent) if is_record(parent) else None
        if rec is None:
            continue
        if rel == "trained_by":
            out["training"].append(
                {**_ref(rec), "inputs": dict(rec.event.inputs), "trigger": rec.event.attributes.get("trigger", "")}
            )
            out["digest"] = out["digest"] or rec.event.outputs.get("model", "")
            out["drift_triggers"] += [_drift(tracer, p) for p in rec.event.parents]
        elif rel == "evaluated_by":
            out["evaluations"].append({**_ref(rec), "comparison": rec.event.attributes.get("comparison", {})})
            out["drift_triggers"] += [_drift(tracer, p) for p in rec.event.parents]
        elif rel == "registered_by":
            out["registered"].append({**_ref(rec), "actor": rec.event.actor, "op": rec.event.status})
            out["digest"] = out["digest"] or _entry_digest(rec, out["model"])
        elif rel in ("promoted_by", "retired_by"):
            out["promotions" if rel == "promoted_by" else "retired"].append(promotion(rec))
    out["drift_triggers"] = list({d["record_id"]: d for d in out["drift_triggers"] if d}.values())
    return out


def _drift(tracer: Tracer, rid: str) -> dict[str, Any]:
    rec = tracer.record(rid)
    if rec is None or rec.event.kind != "drift":
        return {}
    return {**_ref(rec), "status": rec.event.status, "subject": rec.event.subject}


def _entry_digest(rec: AuditRecord, model: str) -> str:
    attrs = rec.event.attributes
    for e in attrs.get("entries", []) if attrs.get("op") == "seed" else [attrs.get("entry", {})]:
        if f"{e.get('name')}@{e.get('version')}" == model:
            return str(e.get("digest", ""))
    return ""


def promotion(rec: AuditRecord) -> dict[str, Any]:
    """Who changed a model's stage and why: the actor, the policy decision and every approver with role and reason."""
    ev = rec.event
    approvers = [
        {"approver": d.get("approver", ""), "roles": d.get("roles", []), "decision": d.get("action", ""),
         "reason": d.get("reason", ""), "request_id": a.get("request_id", "")}
        for a in ev.approvals
        for d in a.get("decisions", [])
    ]  # fmt: skip
    pd = ev.policy_decisions[0] if ev.policy_decisions else {}
    return {
        **_ref(rec),
        "actor": ev.actor,
        "op": ev.status,
        "reason": ev.attributes.get("reason", ""),
        "evidence": ev.attributes.get("evidence", {}),
        "policy": {
            "effect": pd.get("effect", ""),
            "policy_ids": pd.get("policy_ids", []),
            "reasons": pd.get("reasons", []),
        },
        "approvers": approvers,
    }
