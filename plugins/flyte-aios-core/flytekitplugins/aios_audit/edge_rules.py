"""The edge rules of the evidence model: which sealed fields of each kind of record name which parents.

See :mod:`flytekitplugins.aios_audit.edges` for the model and the index these rules fill.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, Protocol

from flytekitplugins.aios_audit.records import AuditRecord

Edge = tuple[str, str, str]
PARENT_REL = {
    "policy_decision": "policy_decision",
    "approval_request": "approval_request",
    "approval_decision": "approval_decision",
    "action_authorized": "authorized_by",
    "drift": "triggered_by",
    "evaluation": "evaluated_by",
    "training": "trained_by",
}
"""The relation of a record to a parent record, by the parent's kind (``parent`` for other kinds)."""
HUBS = ("model:", "policy:", "principal:")  # shared by many decisions: walked downstream only from a trace start
_HEX = re.compile(r"^[0-9a-f]+$")


def is_record(node: str) -> bool:
    """True for a record id node (64 hex)."""
    return len(node) == 64 and bool(_HEX.match(node))


class Index(Protocol):
    """What the rules look up in the index: earlier records' kinds, request aliases and children."""

    def kind(self, rid: str) -> str: ...

    def alias(self, name: str) -> str: ...

    def children(self, node: str) -> list[tuple[str, str, int]]: ...


def execution_of(rec: AuditRecord) -> str:
    """``project/domain/name`` of the execution a record belongs to (the one it acts on, for CLI decisions)."""
    acted = rec.event.attributes.get("execution")
    if isinstance(acted, str) and acted:
        return acted
    ex = rec.event.execution
    return ex.execution_key if ex else ""


def document_of(rec: AuditRecord) -> str:
    """The document digest a record is about ("" when it is about none)."""
    ev = rec.event
    if ev.kind == "approval_request":
        evidence = ev.attributes.get("request", {}).get("evidence", {})
        return str(evidence.get("document", "")) if isinstance(evidence, dict) else ""
    if ev.kind in ("policy_decision", "action", "action_authorized", "action_refused", "quarantine"):
        return ev.subject if ev.subject.startswith("sha256:") else ""
    return ""


def record_edges(index: Index, rec: AuditRecord) -> Iterator[Edge]:
    """The typed edges sealed in ``rec`` (``index`` answers the look-ups of earlier records the rules make)."""
    ev, rid = rec.event, rec.record_id
    for parent in ev.parents:
        rel = "decides" if ev.kind == "approval_decision" else PARENT_REL.get(index.kind(parent), "parent")
        yield rid, parent, rel
    for name, digest in ev.inputs.items():
        if not (ev.kind == "action" and name == "decision"):  # the decision's content digest, not data
            yield rid, digest, "document" if name == "document" else f"input:{name}"
    for digest in ev.outputs.values():
        yield digest, rid, "output_of"
    yield from kind_edges(index, rec)


def kind_edges(index: Index, rec: AuditRecord) -> Iterator[Edge]:
    ev, rid, attrs = rec.event, rec.record_id, rec.event.attributes
    doc = document_of(rec)
    if doc and "document" not in ev.inputs:
        yield rid, doc, "document"
    if ev.kind == "policy_decision":
        yield from _policy_edges(rid, ev.subject, ev.policy_decisions, attrs)
    elif ev.kind == "approval_decision":
        approver = str(attrs.get("decision", {}).get("approver", "") or ev.actor)
        yield rid, f"principal:{approver}", "decided_by"
    elif ev.kind in ("approval_refused", "approval_verified") and (req := index.alias(ev.subject)):
        yield rid, req, "refused_for" if ev.kind == "approval_refused" else "verifies"
    elif ev.kind == "action_authorized":
        for parent in ev.parents:  # the decisions that approved the request it acts on (sealed before it)
            if index.kind(parent) == "approval_request":
                yield from ((rid, c, "approved_by") for c, rel, _ in index.children(parent) if rel == "decides")
    elif ev.kind == "task":
        yield from ((rid, f"model:{m.name}@{m.version}", "used_model") for m in ev.models)
    elif ev.kind in ("training", "evaluation") and ev.models:
        m = ev.models[0]
        yield f"model:{m.name}@{m.version}", rid, "trained_by" if ev.kind == "training" else "evaluated_by"
    elif ev.kind == "catalog":
        yield from _catalog_edges(index, rid, attrs, ev.approvals)


def _policy_edges(rid: str, subject: str, decisions: list[dict[str, Any]], attrs: dict[str, Any]) -> Iterator[Edge]:
    for pd in decisions:
        for pid in pd.get("policy_ids", []) or []:
            yield rid, f"policy:{pid}", "determined_by"
    if attrs.get("resource_type") == "Model" or (not subject.startswith("sha256:") and "@" in subject):
        yield rid, f"model:{subject.split('::')[-1]}", "model_use"
    lineage = attrs.get("lineage")
    if not isinstance(lineage, dict):
        return
    for m in lineage.get("classification", {}).get("models", []) or []:
        yield rid, f"model:{m.get('name')}@{m.get('version')}", "classified_by"
    text = str(lineage.get("protected_text", ""))
    if text.startswith("sha256:"):
        yield rid, text, "protected_text"
        if subject.startswith("sha256:"):
            yield text, subject, "redacted_from"


def _catalog_edges(index: Index, rid: str, attrs: dict[str, Any], approvals: list[dict[str, Any]]) -> Iterator[Edge]:
    op = attrs.get("op")
    entries = attrs.get("entries", []) if op == "seed" else [attrs.get("entry", {})] if op == "register" else []
    for e in entries:
        model = f"model:{e.get('name')}@{e.get('version')}"
        yield model, rid, "registered_by"
        yield from ((model, d, "trained_on") for d in e.get("training_data_digests", []) or [])
    if op in ("promote", "retire"):
        yield (
            f"model:{attrs.get('name')}@{attrs.get('version')}",
            rid,
            "promoted_by" if op == "promote" else "retired_by",
        )
    evaluation = attrs.get("evidence", {}).get("evaluation_record") if isinstance(attrs.get("evidence"), dict) else None
    if evaluation:
        yield rid, str(evaluation), "evaluation"
    for a in approvals:
        req = index.alias(str(a.get("request_id", "")))
        if req:
            yield rid, req, "approval_request"
