"""Synthetic decision trails in the exact record shapes the pack writes (for scale tests and the benchmark).

Each document gets: a ``policy_decision`` sealing its lineage (classification by a catalogued model, protected
text, source), an ``approval_request`` opened for it, one or two ``approval_decision`` records, and either an
``action_authorized`` + ``action`` (approved) or nothing (rejected). A model version is registered with its
training data, trained after a drift record, evaluated and promoted with an approver. The approval records hold the
fields readers show (gate, risk, approver, action), not a whole request or signed decision: every fold counts them for
nothing, and ``aios audit verify`` and ``aios evidence verify`` list each as an ignored request or decision that does
not parse.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from flytekitplugins.aios_audit.records import AuditEvent, ModelRef
from flytekitplugins.aios_audit.stores import AuditStore
from flytekitplugins.aios_core.context import ExecutionRef

MODEL = ModelRef(name="doc-type-fast", version="3", digest="sha256:" + "ab" * 32)
TRAIN = "sha256:" + "cd" * 32
APPROVERS = (("user:alice", "finance-approver"), ("user:carol", "finance-manager"))


def _h(*parts: object) -> str:
    return "sha256:" + hashlib.sha256(repr(parts).encode()).hexdigest()


def _ex(name: str, task: str = "") -> ExecutionRef:
    return ExecutionRef(project="aios", domain="development", name=name, task_name=task)


def write_model(store: AuditStore) -> None:
    """Drift -> training -> catalog register -> evaluation -> promotion (approved by one person)."""
    ex = _ex("retrain-1")
    drift = store.append(
        AuditEvent(kind="drift", actor="service:monitor", status="drifted", subject="documents", execution=ex)
    )
    train = store.append(
        AuditEvent(
            kind="training",
            actor="service:retraining",
            status="trained",
            subject=f"{MODEL.name}@{MODEL.version}",
            execution=ex,
            models=[MODEL],
            inputs={"train": TRAIN},
            outputs={"model": MODEL.digest},
            parents=[drift.record_id],
            attributes={"trigger": "drift"},
        )
    )
    entry = {"name": MODEL.name, "version": MODEL.version, "digest": MODEL.digest, "training_data_digests": [TRAIN]}
    store.append(
        AuditEvent(
            kind="catalog",
            actor="service:retraining",
            status="register",
            subject=f"{MODEL.name}@{MODEL.version}",
            execution=ex,
            attributes={"op": "register", "entry": {**entry, "owner": "team:docs"}},
            parents=[train.record_id],
        )
    )
    ev = store.append(
        AuditEvent(
            kind="evaluation",
            actor="service:retraining",
            status="evaluated",
            subject=f"{MODEL.name}@3",
            execution=ex,
            models=[MODEL],
            parents=[drift.record_id],
        )
    )
    approval = {
        "request_id": "apr-model",
        "decisions": [
            {"approver": "user:dana", "roles": ["model-approver"], "action": "approve", "reason": "better F1"}
        ],
    }
    store.append(
        AuditEvent(
            kind="catalog",
            actor="service:retraining",
            status="promote",
            subject=f"{MODEL.name}@3",
            execution=ex,
            attributes={
                "op": "promote",
                "name": MODEL.name,
                "version": "3",
                "evidence": {"evaluation_record": ev.record_id},
            },
            approvals=[approval],
        )
    )


def _decision(doc: str, i: int, ex: ExecutionRef) -> AuditEvent:
    pd = {
        "effect": "require_approval",
        "action": "act_on_document",
        "policy_ids": ["payments-need-signoff", "base"],
        "reasons": ["amount above 10,000 needs sign-off"],
        "policy_set_digest": _h("policies"),
        "request_digest": _h(doc),
    }
    lineage = {
        "classification": {"label": "invoice", "confidence": 0.97, "route": "fast", "models": [MODEL.model_dump()]},
        "protected_text": _h("text", doc),
        "source": {"document": doc, "name": f"invoice-{i:06d}.pdf", "doc_id": f"d{i:08d}"},
    }
    attrs = {
        "action": "act_on_document",
        "route": "auto",
        "lineage": lineage,
        "posted": {"action": "pay_invoice", "amount": 12000.0 + i, "currency": "EUR"},
    }
    return AuditEvent(
        kind="policy_decision",
        actor="service:document-pipeline",
        status="require_approval",
        subject=doc,
        execution=ex,
        policy_decisions=[pd],
        attributes=attrs,
    )


def _request(rid: str, doc: str, pd: str, ex: ExecutionRef) -> AuditEvent:
    request = {
        "request_id": rid,
        "gate": "payment-signoff",
        "risk": "high",
        "quorum": 2,
        "requester": "service:document-pipeline",
        "execution": ex.execution_key,
        "evidence": {"document": doc, "policy_decision": pd},
    }
    return AuditEvent(
        kind="approval_request",
        actor="service:document-pipeline",
        status="pending",
        subject=rid,
        execution=ex,
        parents=[pd],
        attributes={"request": request},
    )


def _approval(i: int, rid: str, req: str, who: tuple[str, str], approve: bool, ex: ExecutionRef) -> AuditEvent:
    d = {"approver": who[0], "roles": [who[1]], "action": "approve" if approve else "reject", "reason": f"checked {i}"}
    return AuditEvent(
        kind="approval_decision",
        actor=who[0],
        status=str(d["action"]),
        subject=rid,
        parents=[req],
        execution=_ex("cli"),
        attributes={"decision": d, "execution": ex.execution_key},
    )


def _acts(i: int, doc: str, pd: str, rid: str, parent: str, ex: ExecutionRef, kind: str) -> AuditEvent:
    a: dict[str, Any] = {"action": "pay_invoice", "action_key": _h("key", i), "request_id": rid, "policy_record": pd}
    if kind == "action":
        a.update(system_of_record="document_actions", amount=12000.0 + i, currency="EUR")
    return AuditEvent(
        kind=kind,
        actor="service:document-pipeline",
        status="posted" if kind == "action" else "authorized",
        subject=doc,
        execution=ex,
        inputs={"document": doc},
        parents=[parent, pd],
        attributes=a,
    )


def write_documents(store: AuditStore, first: int, n: int, per_execution: int = 50) -> list[dict[str, Any]]:
    """Trails of documents ``first`` .. ``first + n - 1`` (every third rejected), five transactions in all."""
    docs = []
    for i in range(first, first + n):
        doc = _h("doc", i)
        ex = _ex(f"run-{i // per_execution}", "tasks.documents.stages.decide")
        rid = f"apr-{hashlib.sha256(doc.encode()).hexdigest()[:20]}"
        docs.append({"i": i, "document": doc, "request_id": rid, "ex": ex, "approve": i % 3 != 2})
    for d, r in zip(docs, store.append_many([_decision(d["document"], d["i"], d["ex"]) for d in docs]), strict=True):
        d["policy"] = r.record_id
    reqs = store.append_many([_request(d["request_id"], d["document"], d["policy"], d["ex"]) for d in docs])
    for d, r in zip(docs, reqs, strict=True):
        d["request"] = r.record_id
    store.append_many(
        [
            _approval(d["i"], d["request_id"], d["request"], who, d["approve"], d["ex"])
            for d in docs
            for who in (APPROVERS if d["approve"] else APPROVERS[:1])
        ]
    )
    ok = [d for d in docs if d["approve"]]
    auths = store.append_many(
        [
            _acts(d["i"], d["document"], d["policy"], d["request_id"], d["request"], d["ex"], "action_authorized")
            for d in ok
        ]
    )
    acts = store.append_many(
        [
            _acts(d["i"], d["document"], d["policy"], d["request_id"], a.record_id, d["ex"], "action")
            for d, a in zip(ok, auths, strict=True)
        ]
    )
    for d, a in zip(ok, acts, strict=True):
        d["action"] = a.record_id
    return [{k: v for k, v in d.items() if k != "ex"} for d in docs]


def write_trail(store: AuditStore, n_docs: int, per_execution: int = 50, chunk: int = 2000) -> list[dict[str, Any]]:
    """A model's lineage and ``n_docs`` document trails (every third one rejected): about 5 records a document."""
    write_model(store)
    out: list[dict[str, Any]] = []
    for first in range(0, n_docs, chunk):
        out += write_documents(store, first, min(chunk, n_docs - first), per_execution)
    return out


def exported_bundle(folder: Path) -> Path:
    """A small trail in this test's store (three documents, one execution ``run-0``) exported as an evidence bundle
    with ``aios evidence export``: the bundle a third party would receive."""
    from click.testing import CliRunner

    from flytekitplugins.aios_audit import audit_log
    from flytekitplugins.aios_core.cli import cli
    from flytekitplugins.aios_core.settings import get_settings

    write_trail(audit_log(get_settings(), emit=False), 3, per_execution=3)
    out = folder / "run-0.zip"
    res = CliRunner().invoke(cli, ["evidence", "export", "--execution", "run-0", "-o", str(out)])
    assert res.exit_code == 0, res.output
    return out
