"""The place that acts verifies: re-establish from the audit trail what stands behind an action, then claim it.

A row handed to an acting task or connector (pay USD 250,000 for document D) is a claim, not proof: anyone with
launch rights can hand in any row, and an ``ApprovalOutcome`` typed by hand says ``approved`` as easily as a real
one. Before any side effect, :func:`authorize` establishes for every row, from the audit trail alone:

1. the policy decision record the row names exists, is intact (its entry re-hashes to its record id), is a
   decision of ``act_on_document`` for exactly this document, action and principal (the row must name the
   principal; a served call's rows must name the caller's established identity), with effect ``allow`` or
   ``require_approval``; the policy context it sealed re-digests to the request digest the engine decided on, and
   the amount and currency it sealed for posting equal the row's, exactly; the document type is the label the
   decision sealed, and the decision digest is the one its sealed content gives (:func:`decision_digest`); the
   classification seal the decision names (:data:`CLASSIFICATION_SEAL`) is intact and holds this document with the
   label, route, confidence, data class and protected text the decision was made on (``unsealed_classification``);
2. the decision was made under the policy set in force now (its sealed ``policy_set_digest`` is the digest of the
   policies and roles this acting point would decide with): a decision the policy has since been changed under is
   refused (``policy_changed``: decide again), and so is every row when the policy in force cannot be read;
3. where the decision required approval (or sent the document to review), the row names the approval request
   opened for exactly that decision and document, its verified outcome (signatures, roles, separation of
   duties, quorum, expiry, all re-checked by ``evaluate``) is ``approved``, and this is a run of the launcher that
   opened it (served, the execution that opened it; else this process's launcher): an approver cannot act on it
   from a run of his own (``launcher_mismatch``, as ``verify_requests`` refuses to use it);
4. the action key is the digest of the document and the decision digest (the system of record's idempotency key).

It then claims, atomically and in the same transaction as an ``action_authorized`` record, ``act:<policy record>``,
``post:<document>:<action>``, ``doc:<document>`` (one action a document, whatever its label: the same document
classified again under raised thresholds as a claim once was paid as an invoice and then settled as a claim),
``text:<content key>`` (one action a text: the content key the classification seal names, :func:`content_key`, so the
same invoice in a second file with CRLF line endings is not paid twice) and, for approved requests,
``approval-act:<request id>``, all held by the action key AT its destination (the system of record's table and
database); a document acted on before ``doc:`` claims existed holds ``post:<document>:<action>`` only, so those of
every :data:`DOCUMENT_ACTIONS` are looked up too. A second, different action on the same decision, approval, document
or text (a second decision for a document already acted on among them) is refused (``already_used``),
and so is the same action sent to another table or database, while a retry of the same action to the same
destination finds its own claims and goes on (the system of record's insert is idempotent). Anything else is
refused with a reason code, audited as ``action_refused``, and must not be acted on.

Out of scope (docs/security.md): someone who can append arbitrary records to the audit store can forge a policy
decision record; the trail then shows it, but nothing here can tell it from a real one.
"""

from __future__ import annotations

import logging
import math
import numbers
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from flytekitplugins.aios_approvals.evaluate import Env, evaluate
from flytekitplugins.aios_approvals.models import ApprovalRequest, content_key_of
from flytekitplugins.aios_approvals.service import _execution_key, launcher_problem, run_launcher
from flytekitplugins.aios_approvals.state import RequestState, act_claim, projection, requests_naming
from flytekitplugins.aios_audit.records import AuditEvent, AuditRecord, intact
from flytekitplugins.aios_audit.stores import CLAIMS_ATTR, ClaimTaken, claim
from flytekitplugins.aios_core.context import ExecutionRef, current_execution
from flytekitplugins.aios_core.digest import digest_value
from flytekitplugins.aios_core.errors import GovernanceDenied
from flytekitplugins.aios_core.visible import bounded

log = logging.getLogger(__name__)
POLICY_ACTION = "act_on_document"
DOCUMENT_ACTIONS = ("pay_invoice", "settle_claim", "register_contract", "file_correspondence")
"""Every action the document pipeline takes on a document (``tasks.documents.governance``'s maps name these): a
document acted on before the per-document claim (``doc:``) existed holds only ``post:<document>:<action>``, so the
acting point looks each of them up (:func:`_find`)."""
CLASSIFICATION_SEAL = "documents_classified"
"""The kind of record in which the document pipeline's classify step seals, per chunk, each document's protected
text digest, flags, label, confidence and route (``tasks.documents.seals``); a decision names the one it was made
on (``lineage.classification.record``)."""


@dataclass(frozen=True)
class ActionClaim:
    """What a caller asks the acting point to do. Nothing in it is trusted."""

    action_key: str
    subject: str
    action: str
    amount: float | None
    currency: str
    policy_record: str
    decision_digest: str
    request_id: str = ""
    principal: str = ""
    doc_type: str = ""

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> ActionClaim:
        """Read a system-of-record row (``aios_connectors.system_of_record.COLUMNS`` plus ``policy_record``).

        Raises:
            ValueError: the row's amount is not a number (text such as ``"9_000"`` or full-width digits read as the
                sealed 9000.0 and was stored as written: a processor summing the table read 9).
        """
        amount = row.get("amount")
        if amount is not None and (isinstance(amount, bool) or not isinstance(amount, numbers.Real)):
            raise ValueError(f"a row's amount is a {type(amount).__name__}, not a number: hand in numeric amounts")
        return cls(
            action_key=str(row.get("action_key") or ""),
            subject=str(row.get("doc_digest") or ""),
            action=str(row.get("action") or ""),
            amount=None if amount is None or math.isnan(float(amount)) else float(amount),
            currency=str(row.get("currency") or ""),
            policy_record=str(row.get("policy_record") or ""),
            decision_digest=str(row.get("decision_digest") or ""),
            request_id=str(row.get("request_id") or ""),
            principal=str(row.get("principal") or ""),
            doc_type=str(row.get("doc_type") or ""),
        )


@dataclass(frozen=True)
class Verdict:
    """What the acting point found for one claim."""

    action_key: str
    allowed: bool
    code: str
    reason: str
    principal: str = ""
    record_id: str = ""


@dataclass(frozen=True)
class _Found:
    problem: tuple[str, str] | None
    keys: tuple[str, ...] = ()
    principal: str = ""
    parents: tuple[str, ...] = ()
    held_elsewhere: tuple[str, ...] = ()  # looked up, not claimed: held by anyone, the action is refused


_UNSEEN = frozenset("\u115f\u1160\u3164\uffa0\u2800")  # fillers and a blank pattern: letters that show nothing
_UNSEEN_KINDS = frozenset({"Mn", "Me", "Cf"})  # marks and format characters
_NOT_ASCII = re.compile(r"[^\x00-\x7f]+")


def content_key(text: str) -> str:
    """The key of what a protected text says, whatever file it came in: the digest of the text in Unicode NFKC,
    case-folded, without the marks, format characters and fillers no reader sees (U+034F, a variation selector,
    U+3164), every run of blanks and line breaks one space. CRLF line endings, other spacing, case or an invisible
    mark give one key; every other character counts (``$950.00`` and ``£950.00``, ``-500.00`` and ``500.00``, lines in
    another order are other texts). It is taken of the text after redaction, which the trail already names by its
    digest: a key of the text before it would let whoever reads the trail and the protected text try every PIN in
    place of ``[SECRET]`` (a review of the change recovered one in 0.2 s). So two texts that differ only where
    redaction wrote a placeholder are one text, and the second is held back (``already_used``) for a person to look at:
    the trail cannot tell them apart (an invoice resent with another bank account is one of those). ``parse_protect``
    seals it, ``classify`` carries it into its seal, and the acting point claims it (``text:<key>``)."""
    import unicodedata

    def seen(run: re.Match[str]) -> str:  # only characters outside ASCII can be unseen: read those one by one
        return "".join(c for c in run.group() if c not in _UNSEEN and unicodedata.category(c) not in _UNSEEN_KINDS)

    folded = unicodedata.normalize("NFKC", text).casefold()
    return digest_value({"text": " ".join(_NOT_ASCII.sub(seen, folded).split())})


def decision_digest(doc: str, action: str, effect: str, label: str, amount: float | None, currency: str) -> str:
    """Digest of a document decision's content: with the document's digest, the system of record's idempotency key
    (``action_key = digest({"doc": ..., "decision": this})``). ``effect`` is ``allow``, or ``require_approval`` for a
    decision a person had to sign off (the policy's, or the review route's); the pipeline computes it when it
    decides, the acting point again from the sealed decision record."""
    fields = {"label": label, "amount": amount, "currency": currency}
    return digest_value({"doc": doc, "action": action, "effect": effect, "fields": fields})


def _needs_approval(ev: AuditEvent) -> bool:
    return ev.status == "require_approval" or ev.attributes.get("route") == "review"


REVIEW_GATE = "document-review"
"""The gate, at ``low`` risk, of a decision the policy allowed but routed to review (both document-type models unsure):
what the pipeline's decide step opens for it, and the only request the acting point takes for it."""
REVIEW_REASON = "both document-type models are unsure"
"""The reason the decide step gives the approvers of a review request."""


def request_summary(ctx: dict[str, Any], action: str, route: object, injection: bool) -> dict[str, Any]:
    """What a document's approval request shows its approvers: the policy context, the action, the route and the
    injection flag. The decide step opens its request with it, and :func:`asked_request` rebuilds it from the seal."""
    return {**ctx, "action": action, "route": route, "injection_flag": injection}


def asked_request(ev: AuditEvent, action: str, injection: bool) -> dict[str, Any] | None:
    """What the pipeline's decide step asks its approvers for sealed policy decision ``ev`` on ``action`` (the
    document's ``injection`` flag as its classification sealed it): the request's gate, risk, summary, evidence,
    requester and reason; None when the decision names no gate. The decide step opens exactly this request
    (``tasks.documents.governance``), and the acting point takes no other."""
    pd = ev.policy_decisions[0] if ev.policy_decisions else {}
    approval = pd.get("approval") if ev.status == "require_approval" else None
    route, ctx = ev.attributes.get("route"), ev.attributes.get("context")
    if isinstance(approval, dict) and approval.get("gate"):
        listed = pd.get("reasons")
        reasons: list[Any] = listed if isinstance(listed, list) else []
        gate, risk = str(approval["gate"]), str(approval.get("risk") or "")
        reason = str(approval.get("reason") or "; ".join(str(r) for r in reasons))  # as the decide step words it
    elif route == "review":
        gate, risk, reason = REVIEW_GATE, "low", REVIEW_REASON
    else:
        return None
    summary = request_summary(ctx if isinstance(ctx, dict) else {}, action, route, injection)
    evidence = {"document": ev.subject, "policy_decision": ""}  # the decision's record id: the caller's to fill
    launcher = ev.attributes.get("launcher")  # sealed by the decide step since 2026-12-07; None before
    return {
        "gate": gate,
        "risk": risk,
        "summary": summary,
        "evidence": evidence,
        "requester": ev.actor,
        "reason": reason,
        "launcher": launcher if isinstance(launcher, str) else None,
    }


def _asked_problem(
    req: ApprovalRequest, rec: AuditRecord, c: ActionClaim, seal: SealEntries | None
) -> tuple[str, str] | None:
    """Whether request ``req`` is the one the decide step opened for sealed policy decision ``rec``: opened in the
    execution that made the decision, at the gate and risk it named (so the roles and quorum of that rule), asking
    exactly what it asks (:func:`asked_request`: the sealed context, action, route and injection flag; the evidence,
    requester and reason).

    A request names its decision in evidence its opener writes. Reviews of 2026-12-07 reproduced: a request of the
    launcher's own on the review gate at low risk, its summary showing 950, approved by one ops analyst, paid 95,000
    that the policy sent to two finance approvers; second requests that differed by one evidence key, by ``20000``
    written for ``20000.0``, or by their launcher alone (each other content, so a new request) were approved by
    another approver and paid what a first one had rejected; and one showing the approvers a made-up note and a
    cleared injection flag was paid. The decide step seals its run's launcher, so the request's whole content key is
    the decision's: asking again gives this same request (its rejection stands), or a new round only after it timed
    out or was used. A decision sealed before the launcher was (2026-12-07) binds everything but the launcher."""
    ev = rec.event
    entry = (seal or {}).get(c.subject, {})
    asked = asked_request(ev, c.action, bool(entry.get("injection")))
    if asked is None:
        return "approval_unspecified", f"policy decision {c.policy_record} names no gate to approve it at"
    asked["evidence"]["policy_decision"] = rec.record_id
    if (req.gate, req.risk) != (asked["gate"], asked["risk"]):
        why = (
            f"request {c.request_id} asks '{req.gate}' at {req.risk} risk; policy decision {c.policy_record} asks "
            f"'{asked['gate']}' at {asked['risk']} risk"
        )
        return "approval_for_other_gate", why
    made = ev.execution.execution_key if ev.execution is not None else ""
    fields = ("summary", "evidence", "requester", "reason")
    # compared as canonical JSON, as request ids are made: 20000 and 20000.0, or 0 and False, are other content
    same = digest_value({k: getattr(req, k) for k in fields}) == digest_value({k: asked[k] for k in fields})
    if asked["launcher"] is not None:  # the whole content key, launcher included: asking again is this request
        content = [asked[k] for k in ("summary", "evidence", "requester", "launcher")]
        same = same and req.content_key == content_key_of(asked["gate"], asked["risk"], c.subject, *content)
    if not same or req.execution != made:
        why = (
            f"request {c.request_id} is not the one the decision's run opened for policy decision {c.policy_record}: "
            "it shows its approvers other facts, or was opened elsewhere"
        )
        return "approval_for_other_facts", why
    return None


def _rejected_elsewhere(env: Env, c: ActionClaim) -> str:
    """A rejected request for ``c``'s document other than ``c``'s own ("" when none): the decide step run again on the
    same document makes a new decision and asks anew, and a second approver's yes once paid what a first had rejected
    (review of 2026-12-07). Requests name the document in their evidence, so the lineage index finds them."""
    others = [r for r in requests_naming(env.store, c.subject) if r != c.request_id]
    states = projection(env.store).get_many(others) if others else {}  # read together, as the chunk's own requests
    return next((rid for rid, state in states.items() if evaluate(state, env).status == "rejected"), "")


def policy_in_force(settings: Any) -> str:
    """The digest of the policy set (policies and roles) a decision made now would seal (``policy_set_digest``).

    Raises:
        Exception: whatever the engine raises when the policies cannot be read or validated (the caller refuses).
    """
    from flytekitplugins.aios_policy.decide import policy_source
    from flytekitplugins.aios_policy.engine import get_engine

    return str(get_engine(settings.policy_engine).policy_set_digest(policy_source(settings, None)))


def policy_changed_since(pd: Any, in_force: str) -> str | None:
    """Why a policy decision (``pd``: one of a record's ``policy_decisions``) no longer stands under the policy set
    in force (:func:`policy_in_force`), for a ``policy_changed`` refusal; None where it was made under that set. The
    one rule of every acting point that acts on an earlier decision (documents, retraining)."""
    made = pd.get("policy_set_digest") if isinstance(pd, dict) else None
    if made == in_force:
        return None
    return f"was made under policy set {made or '(none)'}; the policy in force is {in_force}"


def _policy_saw_posted(ctx: dict[str, Any], posted: dict[str, Any]) -> bool:
    """Whether the policy decided on the amount and currency the action posts: the sealed context holds the posted
    amount (0 where none is posted) and its currency (``EUR`` where none), as ``policy_context`` writes it. A
    contract decided before every document's amount reached the policy (amount 0 in its context, 95,000 posted)
    was still posted without the sign-off the policy now asks for: the policy set did not change with that fix, so
    ``policy_changed`` did not refuse it (re-review R8 of 2026-12-07)."""
    amount, currency = posted.get("amount"), str(posted.get("currency") or "")
    seen = 0.0 if amount is None else amount
    return _same_money(float(seen) if isinstance(seen, int | float) else None, ctx.get("amount")) and ctx.get(
        "currency"
    ) == (currency if amount is not None and currency else "EUR")


def _same_money(a: float | None, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return isinstance(b, int | float) and float(b) == a


def _lineage_of(ev: AuditEvent) -> tuple[dict[str, Any], dict[str, Any]]:
    lineage = ev.attributes.get("lineage")
    lineage = lineage if isinstance(lineage, dict) else {}
    classification = lineage.get("classification")
    return lineage, classification if isinstance(classification, dict) else {}


def classification_record(ev: AuditEvent) -> str:
    """The id of the classification seal a document decision names ("" when it names none)."""
    return str(_lineage_of(ev)[1].get("record") or "")


SealEntries = Mapping[str, Mapping[str, Any]]
"""The documents an intact classification seal holds, by document digest."""


def seal_entries(records: Mapping[str, AuditRecord], kind: str = CLASSIFICATION_SEAL) -> dict[str, SealEntries]:
    """Record id -> the documents it seals, for each of ``records`` that is an intact seal of ``kind`` (each is
    re-hashed once, however many rows or decisions name it); the pipeline's steps read their seals with it too."""
    out: dict[str, SealEntries] = {}
    for rid, rec in records.items():
        docs = rec.event.attributes.get("documents")
        if rec.record_id == rid and rec.event.kind == kind and isinstance(docs, list) and intact(rec):
            out[rid] = {str(d.get("digest")): d for d in docs if isinstance(d, dict)}
    return out


def _unsealed(ev: AuditEvent, seal: SealEntries | None) -> str:
    """What is wrong with the classification a decision was made on ("" when a seal stands behind it): the seal it
    names (``seal``: its documents, from :func:`seal_entries`; None when it is no intact seal) must hold this
    document with the label, route, confidence, text digest and data class the decision sealed."""
    lineage, classification = _lineage_of(ev)
    rid = classification_record(ev)
    if seal is None:
        return f"no intact {CLASSIFICATION_SEAL} record {rid or '(none named)'} in the trail"
    entry = seal.get(ev.subject)
    ctx = ev.attributes.get("context")
    ctx = ctx if isinstance(ctx, dict) else {}
    if entry is None:
        return f"classification record {rid} does not hold document {ev.subject}"
    data_class = "personal" if entry.get("personal") else "internal"
    same = (
        entry.get("label") == classification.get("label")
        and entry.get("route") == classification.get("route") == ev.attributes.get("route")
        and entry.get("confidence") == classification.get("confidence") == ctx.get("confidence")
        and entry.get("text") == lineage.get("protected_text")
        and data_class == ctx.get("data_class")
    )
    return "" if same else f"classification record {rid} sealed another classification or text for {ev.subject}"


def _policy_problem(
    c: ActionClaim, rec: AuditRecord | None, in_force: str, seal: SealEntries | None = None
) -> tuple[str, str] | None:
    from flytekitplugins.aios_policy.request import PolicyRequest

    if rec is None:
        return "no_policy_decision", f"no policy decision record {c.policy_record or '(none given)'} in the trail"
    ev = rec.event
    if rec.record_id != c.policy_record or not intact(rec):
        return "policy_record_altered", f"record {c.policy_record} does not re-hash to its id"
    pd = ev.policy_decisions[0] if ev.kind == "policy_decision" and ev.policy_decisions else {}
    ctx, posted = ev.attributes.get("context"), ev.attributes.get("posted")
    if not isinstance(ctx, dict) or not isinstance(posted, dict):
        return "policy_record_mismatch", f"record {c.policy_record} seals no policy context for an action"
    if pd.get("action") != POLICY_ACTION or ev.subject != c.subject or posted.get("action") != c.action:
        return "policy_record_mismatch", f"record {c.policy_record} decided another action or document"
    if ev.status not in ("allow", "require_approval"):
        return "policy_denied", f"the policy decision {c.policy_record} is {ev.status!r}"
    resource = {"type": "Document", "id": c.subject}
    request = PolicyRequest(principal=ev.actor, action=POLICY_ACTION, resource=resource, context=ctx)
    if request.digest() != pd.get("request_digest"):
        return "policy_record_mismatch", f"the context sealed in {c.policy_record} is not what the policy decided on"
    if not _same_money(c.amount, posted.get("amount")) or c.currency != str(posted.get("currency") or ""):
        return "amount_mismatch", f"amount/currency differ from what policy decision {c.policy_record} allowed"
    if not _policy_saw_posted(ctx, posted):
        why = (
            f"the policy decided {c.policy_record} on another amount or currency than the one it posts (a decision "
            "made before every document's amount reached the policy): decide again"
        )
        return "policy_record_mismatch", why
    if not c.principal:  # an empty claim is no claim: it must not skip the check
        return "principal_missing", f"the row names no principal; policy decision {c.policy_record} was for one"
    if c.principal != ev.actor:
        return "principal_mismatch", f"{c.principal} is not the principal the policy decided for ({ev.actor})"
    label = str(_lineage_of(ev)[1].get("label") or "")
    if c.doc_type != label:
        return "policy_record_mismatch", f"document type {c.doc_type!r} is not the one {c.policy_record} sealed"
    effect = "require_approval" if _needs_approval(ev) else "allow"
    sealed_amount = posted.get("amount")
    money = float(sealed_amount) if isinstance(sealed_amount, int | float) else None
    expected = decision_digest(c.subject, c.action, effect, label, money, c.currency)
    if c.decision_digest != expected:
        return "decision_mismatch", f"the decision digest is not the one policy decision {c.policy_record} gives"
    unsealed = _unsealed(ev, seal)
    if unsealed:  # the decision was made on rows the pipeline's steps did not seal (a hand-made classification)
        return "unsealed_classification", unsealed
    changed = policy_changed_since(pd, in_force)
    if changed:
        return "policy_changed", f"policy decision {c.policy_record} {changed}: decide again"
    return None


def _find(
    env: Env,
    c: ActionClaim,
    rec: AuditRecord | None,
    requests: Mapping[str, RequestState],
    caller: str,
    in_force: str,
    seal: SealEntries | None = None,
) -> _Found:
    """What claim ``c`` may use, or its problem; ``rec`` is the trail's record of ``c.policy_record`` (None when the
    trail has none), ``requests`` the states of the claims' approval requests, read for all claims at once,
    ``caller`` the established identity the acting point serves (empty for an in-process local run) and
    ``in_force`` the digest of the policy set in force (:func:`policy_in_force`) and ``seal`` the documents of
    the classification seal the decision names (:func:`classification_record`, :func:`seal_entries`; None when the
    trail has no intact one)."""
    if c.action_key != digest_value({"doc": c.subject, "decision": c.decision_digest}):
        return _Found(("action_key_mismatch", "the action key is not the digest of the document and decision"))
    if caller and c.principal != caller:
        why = f"the row names {c.principal or 'no principal'}, not the caller's identity {caller}"
        return _Found(("identity_mismatch", why))
    problem = _policy_problem(c, rec, in_force, seal)
    if problem is not None or rec is None:
        return _Found(problem)
    ev, parents = rec.event, [rec.record_id]
    keys = [f"act:{c.policy_record}", post_claim(c.subject, c.action), f"doc:{c.subject}"]
    content = (seal or {}).get(c.subject, {}).get("content")
    if isinstance(content, str) and content:  # a seal written before content keys names none
        keys.append(f"text:{content}")
    before = tuple(post_claim(c.subject, a) for a in DOCUMENT_ACTIONS if a != c.action)
    if _needs_approval(ev):
        st = requests.get(c.request_id) if c.request_id else None
        if st is None:
            return _Found(("approval_missing", f"policy decision {c.policy_record} requires an approved request"))
        req = st.request
        if req.evidence.get("policy_decision") != c.policy_record or req.subject != c.subject:
            return _Found(("approval_for_other_action", f"request {c.request_id} was opened for another decision"))
        asked = _asked_problem(req, rec, c, seal)
        if asked is not None:
            return _Found(asked)
        out = evaluate(st, env)
        if out.status != "approved":
            return _Found((f"approval_{out.status}", f"request {c.request_id} is {out.status}: {out.reason}"))
        rejected = _rejected_elsewhere(env, c)
        if rejected:
            why = f"request {rejected} for document {c.subject} was rejected: a rejection stands for the document"
            return _Found(("approval_rejected", why))
        # served: the execution it acts for, not its launcher, is known (verify_requests' served rule)
        launcher = None if caller else run_launcher(env.settings)
        why = launcher_problem(req, launcher, _execution_key())
        if why:
            return _Found(("launcher_mismatch", why))
        keys.append(act_claim(c.request_id))
        parents.append(st.record_id)
    elif c.request_id:
        return _Found(("unexpected_request", f"policy decision {c.policy_record} needed no approval"))
    return _Found(None, tuple(keys), ev.actor, tuple(parents), before)


def _event(
    kind: str,
    actor: str,
    status: str,
    c: ActionClaim,
    execution: ExecutionRef,
    parents: Sequence[str] = (),
    **extra: Any,
) -> AuditEvent:
    # the caller's text bounded (review R31b: a launcher's rows of 4 MiB ids made each refused row a 4 MiB record, a
    # 3.6 KB input 945 MB of trail); an authorized row's values are the sealed decision's, short, kept whole
    attributes = {"action": bounded(c.action), "action_key": bounded(c.action_key), "request_id": bounded(c.request_id)}
    attributes |= {k: bounded(v, 1024) if isinstance(v, str) else v for k, v in extra.items()}
    subject = bounded(c.subject)
    return AuditEvent(
        kind=kind,
        actor=bounded(actor),
        status=status,
        subject=subject,
        execution=execution,
        inputs={"document": subject},
        attributes=attributes,
        parents=list(parents),
    )


def post_claim(document: str, action: str) -> str:
    """The claim an action on a document holds once authorized: ``post:<document>:<action>``."""
    return f"post:{document}:{action}"


def acted_on(holders: dict[str, tuple[str, int]], document: str, action: str, action_key: str, table: str) -> bool:
    """Whether the trail's claims (``holders``: :meth:`claim_holders` of :func:`post_claim` keys) show this action
    authorized at an acting point for ``table`` (of whichever database: a report knows the table it posts to, and
    the connector alone may know its URL): its document's post claim held by this action key there. An action taken
    to another table first holds its claim there, and the pipeline's own post of it was refused."""
    holder = holders.get(post_claim(document, action))
    return holder is not None and holder[0].startswith(f"{action_key}@{table}@")


def holder_of(action_key: str, destination: str) -> str:
    """Who holds an action's claims: the action at its destination (a table in a database), so that the same action
    sent anywhere else finds them held by another."""
    return f"{action_key}@{destination}"


def _one_pass(
    env: Env,
    claims: Sequence[ActionClaim],
    found: list[_Found],
    actor: str,
    destination: str,
    known: Collection[str] = (),
) -> tuple[list[Verdict], list[AuditEvent]]:
    """The verdicts on ``claims`` and the records to append; ``known``: the policy decision records the trail holds
    of those the claims name."""
    keys = [k for f in found for k in (*f.keys, *f.held_elsewhere)]
    holders = env.store.claim_holders(keys) if keys else {}
    verdicts: list[Verdict] = []
    events: list[AuditEvent] = []
    # refusals of one kind in one call: for the same decision, or naming none the trail holds (re-review R32a: a
    # launcher's 50,000 rows naming made-up decisions, each refused, wrote 260 MB of refusal records a call); the first
    # has its record, the rest are counted in one summary record (an honest call's rows each name a decision of their
    # own)
    repeats: dict[tuple[str, str], list[ActionClaim]] = {}
    execution = current_execution()  # the execution this call serves: the same for every record it writes
    for c, f in zip(claims, found, strict=True):
        problem, holder = f.problem, holder_of(c.action_key, destination)
        # held_elsewhere: another action on the document, taken before doc: claims existed
        taken = [k for k in (*f.keys, *f.held_elsewhere) if k in holders]
        if problem is None and any(holders[k][0] != holder for k in taken):
            other = next(holders[k][0] for k in taken if holders[k][0] != holder)
            why = f"already used by another action or destination ({other}); each is used exactly once, in one place"
            problem = ("already_used", why)
        if problem is not None:
            verdicts.append(Verdict(c.action_key, False, *problem))
            group = (problem[0], c.policy_record if c.policy_record in known else "")
            if group not in repeats:  # the first of its kind: a record of its own, with what the row asked for
                who, why = f.principal or actor, problem[1]
                events.append(_event("action_refused", who, problem[0], c, execution, reason=why, **_attempted(c)))
            repeats.setdefault(group, []).append(c)
            continue
        free = [k for k in f.keys if k not in holders]
        for k in free:  # the same key twice in one call: the first claim wins, the second row is a retry of it
            holders[k] = (holder, 0)
        code = "authorized" if free else "already_authorized"
        verdicts.append(Verdict(c.action_key, True, code, "", f.principal))
        if free:
            extra = {CLAIMS_ATTR: [claim(k, holder) for k in free], "policy_record": c.policy_record}
            extra["destination"] = destination
            events.append(_event("action_authorized", f.principal, "authorized", c, execution, f.parents, **extra))
    events += [_repeated(code, record, rows, actor, execution) for (code, record), rows in repeats.items() if rows[1:]]
    return verdicts, events


def _attempted(c: ActionClaim) -> dict[str, Any]:
    """The amount and currency a refused row asked for (re-review R35: an attempt of 250,000 where the decision said
    121 was in no record at all; a refusal's record names the row's document, action and request already)."""
    amount = c.amount if c.amount is not None and math.isfinite(c.amount) else None
    return {"amount": amount, "currency": bounded(c.currency)}


def _repeated(
    code: str, policy_record: str, rows: list[ActionClaim], actor: str, execution: ExecutionRef
) -> AuditEvent:
    """One record for the refusals of a kind after the first in one call (:func:`_one_pass`): how many, the digest of
    their action keys (bounded, in order), the first few keys and what those rows asked for."""
    rest = [bounded(c.action_key) for c in rows[1:]]
    first = [
        {"action_key": bounded(c.action_key), "document": bounded(c.subject), "action": bounded(c.action)}
        | {"request_id": bounded(c.request_id)}
        | _attempted(c)
        for c in rows[1:6]
    ]
    attributes = {
        "repeats_of": code,
        "rows": len(rest),
        "action_keys_digest": digest_value(rest),
        "first_action_keys": rest[:5],
        "first_rows": first,
    }
    if policy_record:
        attributes["policy_record"] = bounded(policy_record)
    return AuditEvent(
        kind="action_refused", actor=bounded(actor), status=code, execution=execution, attributes=attributes
    )


def authorize(
    claims: Sequence[ActionClaim], *, actor: str, env: Env, destination: str, caller: str = ""
) -> list[Verdict]:
    """Verify every claim against the audit trail and claim what it uses; one verdict per claim, in order.

    Args:
        claims: the actions asked for (rows handed to the acting task).
        actor: the acting service, named in refusal records that name no policy principal.
        env: settings, store, roles and keys of the acting point (``Env.load(settings)``).
        destination: where the actions go (the system of record's table and database, secrets masked): the claims
            are held by each action there, so the same action sent elsewhere is refused.
        caller: the identity established for the call (a served connector's propagated identity): every claim
            must name it, and so (through the principal check) must the policy decision it acts on. Empty for an
            in-process local run, where each claim is still bound to its own decision's principal.

    Raises:
        GovernanceDenied: the verdicts could not be recorded (fail closed: act on nothing).
    """
    # the chunk's policy decisions and approval requests, read together (one query, not one per action)
    decisions = env.store.get_many([c.policy_record for c in claims if c.policy_record])
    sealed = seal_entries(env.store.get_many({classification_record(r.event) for r in decisions.values()} - {""}))
    asked = [c.request_id for c in claims if c.request_id]
    requests = projection(env.store).get_many(asked) if asked else {}
    try:
        in_force = policy_in_force(env.settings)
    except Exception as e:  # no policy to compare with: no decision can be shown to stand (fail closed)
        why = f"the policy in force cannot be read ({type(e).__name__}): nothing is acted on until it can"
        found = [_Found(("policy_unavailable", why)) for _ in claims]
    else:
        found = []
        for c in claims:
            rec = decisions.get(c.policy_record)
            seal = sealed.get(classification_record(rec.event)) if rec is not None else None
            found.append(_find(env, c, rec, requests, caller, in_force, seal))
    for _attempt in range(8):
        # a decision the trail holds is a policy decision record: any other record id (a refusal's, which every
        # refused call hands back) grouped nothing, so each row naming one kept a record of its own (review R35)
        known = {k for k, r in decisions.items() if r.event.kind == "policy_decision"}
        verdicts, events = _one_pass(env, claims, found, actor, destination, known)
        try:
            records = env.store.append_many(events) if events else []
        except ClaimTaken as e:
            log.info("acting point raced on claim %s; reading the claims again", e.key)
            continue
        except Exception as e:
            msg = f"the acting point could not record its verdicts, so nothing is acted on: {type(e).__name__}"
            raise GovernanceDenied(msg, reason_code="audit_write_failed") from e
        by_key = {r.event.attributes.get("action_key"): r.record_id for r in records}
        return [
            Verdict(v.action_key, v.allowed, v.code, v.reason, v.principal, by_key.get(v.action_key, ""))
            for v in verdicts
        ]
    msg = "the acting point could not claim its actions after 8 attempts (constant races); nothing is acted on"
    raise GovernanceDenied(msg, reason_code="action_claim_contended")
