"""The governed part of the pipeline: model catalog checks, policy decisions, approval requests, action rows.

A decision is built from typed fields only (document type, confidence, amount, currency, data class):
no document text reaches a policy or an approval request, so instructions written into a document
cannot change what happens to it. Every step is recorded in the audit trail by the plugin that owns it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flytekitplugins.aios_approvals.acting import REVIEW_GATE, REVIEW_REASON, request_summary
from flytekitplugins.aios_core.errors import GovernanceDenied
from flytekitplugins.aios_core.settings import Settings

log = logging.getLogger(__name__)

PAYMENT_ACTIONS = {"invoice": "pay_invoice", "claim": "settle_claim"}
OTHER_ACTIONS = {"contract": "register_contract", "correspondence": "file_correspondence"}
# The policy set's document vocabulary (config/policies/documents.cedar).
POLICY_DOC_TYPE = {
    "invoice": "invoice",
    "claim": "payment_instruction",
    "contract": "contract",
    "correspondence": "letter",
}
TRAINER = "service:retraining"  # the principal allowed to write the model catalog (role catalog-writer)


@dataclass(frozen=True)
class Decision:
    """What the pipeline decided for one document (before the action is posted)."""

    action: str
    effect: str
    gate: str = ""
    request_id: str = ""
    policy_record: str = ""
    reason: str = ""

    def digest(self, doc_digest: str, fields: dict[str, Any]) -> str:
        """Digest of the decision content (part of the system-of-record idempotency key), as the acting point
        computes it again from the sealed decision record (``acting.decision_digest``)."""
        from flytekitplugins.aios_approvals.acting import decision_digest

        amount = fields["amount"]
        money = None if amount is None or amount != amount else float(amount)
        return decision_digest(doc_digest, self.action, self.effect, fields["label"], money, fields["currency"])


def ensure_catalogued(
    folder: Path, names: list[str], settings: Settings, metrics: dict[str, float] | None = None
) -> None:
    """Register the document models in the catalog (once) and refuse models whose digest differs.

    Raises:
        GovernanceDenied: the catalog holds another digest for the same name and version (fail closed).
    """
    from flytekitplugins.aios_catalog import ModelEntry, catalog
    from tasks.ml.classifier import ModelCard, artifact_digest

    cat = catalog(settings)
    for name in names:
        card = ModelCard.model_validate_json((folder / name / "aios_model.json").read_text(encoding="utf-8"))
        digest = artifact_digest(folder / name)
        found = cat.find(card.name, card.version)
        if found is None:
            entry = ModelEntry(
                name=card.name,
                version=card.version,
                digest=digest,
                training_data_digests=card.training_data_digests,
                metrics=metrics or card.metrics,
                allowed_data_classes=["public", "internal"],
                owner="team:document-automation",
                artifact_uri=str(folder / name),
                description=f"document-type head on frozen all-MiniLM-L6-v2 ({card.params.get('features', '')})",
            )
            cat.register(entry, actor=TRAINER)
        elif found.digest != digest:
            msg = (
                f"model {card.name}@{card.version} in {folder / name} has digest {digest}; the catalog pins "
                f"{found.digest}: retrain under a new version or restore the catalogued artifact"
            )
            raise GovernanceDenied(msg, reason_code="model_digest_mismatch")


def check_model_use(principal: str, model_ids: list[tuple[str, str]], settings: Settings) -> list[dict[str, Any]]:
    """Policy ``use_model`` for redacted text (data class ``internal``); deny raises GovernanceDenied."""
    from flytekitplugins.aios_catalog import catalog
    from flytekitplugins.aios_policy import PolicyRequest, enforce

    out = []
    for name, version in model_ids:
        entry = catalog(settings).get(name, version)
        resource = {"type": "Model", "id": entry.model_id, "approved_data_classes": list(entry.allowed_data_classes)}
        req = PolicyRequest(
            principal=principal, action="use_model", resource=resource, context={"data_class": "internal"}
        )
        out.append(enforce(req, subject=entry.model_id, settings=settings).model_dump(mode="json"))
    return out


def policy_context(
    label: str, confidence: float, amount: float | None, currency: str, personal: bool
) -> dict[str, Any]:
    """Typed context of ``act_on_document``: the amount the document carries, whatever its label, so the sign-off
    rules apply to every document carrying an amount and an invoice read as a contract or a letter cannot avoid them
    (it was 0 for every label but invoice and claim, and a 95,000 EUR invoice classified as a contract was allowed and
    posted with its amount: review of 2026-12-07); 0 and ``EUR`` when it carries none (the policy set needs a
    currency)."""
    carries = amount is not None and amount == amount  # not NaN
    return {
        "amount": float(amount) if carries and amount is not None else 0.0,
        "currency": currency if carries and currency else "EUR",
        "data_class": "personal" if personal else "internal",
        "doc_type": POLICY_DOC_TYPE.get(label, "other"),
        "confidence": round(float(confidence), 4),
    }


def _policy_request(row: dict[str, Any], principal: str) -> tuple[str, dict[str, Any], Any] | None:
    """(action, context, request) for a row, or None when a payment lacks an amount or currency."""
    from flytekitplugins.aios_policy import PolicyRequest

    label = row["label"]
    action = PAYMENT_ACTIONS.get(label) or OTHER_ACTIONS.get(label, "")
    if label in PAYMENT_ACTIONS and (row["amount"] is None or not row["currency"]):
        return None
    ctx = policy_context(label, row["confidence"], row["amount"], row["currency"], bool(row["personal"]))
    req = PolicyRequest(
        principal=principal, action="act_on_document", resource={"type": "Document", "id": row["digest"]}, context=ctx
    )
    return action, ctx, req


def _sealed(
    row: dict[str, Any], action: str, ctx: dict[str, Any], models: dict[str, dict[str, str]], launcher: str
) -> dict[str, Any]:
    """What the policy decision record seals for the acting point: the route, the policy context (which
    re-digests to the decision's request digest), the exact action, amount and currency that may be posted, and the
    run's launcher (with the rest, it makes the content key of the request this step opens: the acting point takes
    no other)."""
    amount = row["amount"]
    money = None if amount is None or amount != amount else float(amount)
    return {
        "route": row["route"],
        "context": ctx,
        "posted": {"action": action, "amount": money, "currency": row["currency"]},
        "lineage": _lineage(row, models),
        "launcher": launcher,
    }


def _lineage(row: dict[str, Any], models: dict[str, dict[str, str]]) -> dict[str, Any]:
    """The typed lineage edges the decision seals (see flytekitplugins.aios_audit.edges): the classification
    (model name, version, digest, route, confidence), the protected text and the source document."""
    from tasks.documents.models import FAST, STRONG

    used = [models[FAST if row["route"] == "fast" else STRONG]] if models else []
    return {
        "classification": {
            "label": row["label"],
            "confidence": round(float(row["confidence"]), 4),
            "route": row["route"],
            "models": [m for m in used if m],
            "record": str(row.get("sealed_by") or ""),  # the documents_classified seal it was decided on
        },
        "protected_text": row.get("text_digest", ""),
        "source": {"document": row["digest"], "name": row["name"], "doc_id": row["doc_id"]},
    }


def _classifier_models(settings: Settings) -> dict[str, dict[str, str]]:
    """name -> {name, version, digest} of the document-type models in use, as the catalog pins them."""
    import json

    from flytekitplugins.aios_catalog import catalog
    from tasks.documents.models import FAST, STRONG, models_dir

    out: dict[str, dict[str, str]] = {}
    for name in (FAST, STRONG):
        try:
            card = json.loads((models_dir(settings) / name / "aios_model.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        entry = catalog(settings).find(str(card["name"]), str(card["version"]))
        out[name] = {
            "name": str(card["name"]),
            "version": str(card["version"]),
            "digest": entry.digest if entry else "",
        }
    return out


def decide_many(rows: list[dict[str, Any]], principal: str, timeout_s: float, settings: Settings) -> list[Decision]:
    """Decide a chunk: one policy evaluation and ONE durable audit transaction for every decision,
    then an approval request (non-blocking) per document that needs a human.

    If the decisions cannot be recorded, every document of the chunk is denied (fail closed).
    """
    from flytekitplugins.aios_approvals.evaluate import Env
    from flytekitplugins.aios_policy import enforce_many

    built = [_policy_request(r, principal) for r in rows]
    todo = [(i, b) for i, b in enumerate(built) if b is not None]
    out = [Decision(action="", effect="none", reason="missing_amount") for _ in rows]
    if not todo:
        return out
    from flytekitplugins.aios_approvals.service import run_launcher

    models = _classifier_models(settings)
    launcher = run_launcher(settings)  # what open_request names as the launcher of this run's requests
    try:
        decisions = enforce_many(
            [b[2] for _, b in todo],
            subjects=[rows[i]["digest"] for i, _ in todo],
            attributes=[_sealed(rows[i], b[0], b[1], models, launcher) for i, b in todo],
            settings=settings,
        )
    except GovernanceDenied as e:
        for i, b in todo:
            out[i] = Decision(action=b[0], effect="deny", reason=e.reason_code)
        return out
    env = Env.load(settings)
    for (i, (action, ctx, _req)), d in zip(todo, decisions, strict=True):
        out[i] = _after_policy(rows[i], action, ctx, d, principal, timeout_s, env)
    return out


def _after_policy(
    row: dict[str, Any], action: str, ctx: dict[str, Any], d: Any, principal: str, timeout_s: float, env: Any
) -> Decision:
    from flytekitplugins.aios_approvals import open_request

    if d.effect == "deny":
        return Decision(action=action, effect="deny", policy_record=d.audit_record_id, reason="policy_deny")
    gate, risk, why = "", "low", ""
    if d.effect == "require_approval" and d.approval is not None:
        gate, risk, why = d.approval.gate, d.approval.risk, d.approval.reason or "; ".join(d.reasons)
    elif row["route"] == "review":
        gate, why = REVIEW_GATE, REVIEW_REASON
    if not gate:
        return Decision(action=action, effect="allow", policy_record=d.audit_record_id)
    summary = request_summary(ctx, action, row["route"], bool(row["injection"]))
    rid = open_request(
        gate=gate,
        risk=risk,
        subject=row["digest"],
        summary=summary,
        evidence={"document": row["digest"], "policy_decision": d.audit_record_id},
        requester=principal,
        reason=why,
        timeout_s=timeout_s,
        env=env,
    )
    return Decision(
        action=action, effect="require_approval", gate=gate, request_id=rid, policy_record=d.audit_record_id
    )


def quarantine_events(rows: list[dict[str, Any]], actor: str, settings: Settings) -> None:
    """One ``quarantine`` audit record per quarantined document (reason code and digests only)."""
    from flytekitplugins.aios_audit import AuditEvent, audit_log, current_audit
    from flytekitplugins.aios_audit.recorder import execution_ref

    if not rows:
        return
    scope = current_audit()
    execution = execution_ref(scope.task_name if scope is not None else "tasks.documents.stages.parse_protect")
    events = [
        AuditEvent(
            kind="quarantine",
            actor=actor,
            status=r["reason"],
            subject=r["digest"],
            execution=execution,
            inputs={"document": r["digest"]},
            attributes={"reason": r["reason"], "format": r.get("fmt", ""), "doc_id": r["doc_id"]},
        )
        for r in rows
    ]
    audit_log(settings).append_many(events)
