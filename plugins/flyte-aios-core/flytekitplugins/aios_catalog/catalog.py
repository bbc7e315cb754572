"""The model catalog: reads fold the audit trail, writes are governed audit records.

Every change is an ``AuditEvent(kind="catalog")`` appended durably (or the change did not happen):
``register`` needs policy ``write_catalog`` to allow the actor; ``promote`` needs policy
``promote_model`` to allow it, or, where the policy asks for approval, a verified approved request of
the policy's gate for exactly this model. Nothing here edits a file.
"""

from __future__ import annotations

import decimal
import math
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from flytekitplugins.aios_audit import AuditEvent, AuditStore, ModelRef, audit_log
from flytekitplugins.aios_audit.stores import CLAIMS_ATTR, ClaimTaken, claim
from flytekitplugins.aios_catalog.entries import CatalogChange, ModelEntry, Stage
from flytekitplugins.aios_catalog.errors import ApprovalRequired, CatalogError, read_seed
from flytekitplugins.aios_catalog.fold import (
    CatalogState,
    indexed,
    indexed_names,
    indexed_state,
    name_entries,
    seed_applied,
)
from flytekitplugins.aios_catalog.governance import CheckApproval, Decide, approval_outcome, policy_decision
from flytekitplugins.aios_core.context import code_version, current_execution
from flytekitplugins.aios_core.digest import digest_value
from flytekitplugins.aios_core.errors import GovernanceDenied
from flytekitplugins.aios_core.settings import Settings
from flytekitplugins.aios_core.types import PolicyDecision

_Entries = list[ModelEntry]
_Changes = list[CatalogChange]
_Records = list[dict[str, Any]]


class Catalog:
    """Model catalog over one audit store (see module docstring).

    Args:
        settings: the caller's settings: audit store, models.yaml seed, policies, approval keys, actor.
        decide: policy hook (default: the pack's policy engine with ``settings``).
        check_approval: approval hook (default: the pack's verified outcome with ``settings``).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        decide: Decide | None = None,
        check_approval: CheckApproval | None = None,
    ) -> None:
        from flytekitplugins.aios_audit.api import resolve_store_url

        self.settings = settings
        self.store_url = resolve_store_url(settings)
        self.models_file = Path(settings.models_file)
        self._decide: Decide = decide or (lambda a, who, res, ctx: policy_decision(a, who, res, ctx, settings=settings))
        self._check_approval: CheckApproval = check_approval or (lambda rid: approval_outcome(rid, settings=settings))
        self._state = CatalogState()
        self._lock = threading.RLock()
        self._seed_checked = False

    @property
    def store(self) -> AuditStore:
        return audit_log(self.settings, url=self.store_url)

    def _refresh(self) -> CatalogState:
        with self._lock:
            store = self.store
            if store.size() < self._state.last_seq:  # a different log at the same URL: start over
                self._state, self._seed_checked = CatalogState(), False
            for record in store.scan_kinds(("catalog",), self._state.last_seq + 1):
                self._state.apply(record)
            if not self._seed_checked:
                self._seed_checked = True
                self._seed_if_new()
            return self._state

    def _view(self, name: str) -> CatalogState:
        """What reads of ``name`` see: the indexed projection when complete, else the fold."""
        with self._lock:
            state = indexed_state(self.store, name)
            if state is None:
                return self._refresh()
            if not self._seed_checked:
                self._seeded()
                state = indexed_state(self.store, name) or state
            return state

    def _seed_if_new(self) -> None:
        entries = read_seed(self.models_file)
        source_digest = digest_value([e.model_dump(mode="json") for e in entries])
        applied = seed_applied(self.store, source_digest)
        if not entries or (source_digest in self._state.seed_digests if applied is None else applied):
            return
        attrs = {
            "op": "seed",
            "source": str(self.models_file),
            "source_digest": source_digest,
            "entries": [e.model_dump(mode="json") for e in entries],
        }
        self._append(self.settings.actor, "seed", f"seed:{source_digest}", attrs, [])

    def _append(
        self,
        actor: str,
        op: str,
        subject: str,
        attrs: dict[str, Any],
        models: list[ModelRef],
        decisions: list[PolicyDecision] | None = None,
        approvals: list[dict[str, Any]] | None = None,
    ) -> str:
        event = AuditEvent(
            kind="catalog",
            actor=actor,
            status=op,
            subject=subject,
            execution=current_execution(),
            code_version=code_version(self.settings.code_version),
            models=models,
            attributes=attrs,
            policy_decisions=[d.model_dump(mode="json") for d in decisions or []],
            approvals=approvals or [],
            parents=[d.audit_record_id for d in decisions or [] if d.audit_record_id],
        )
        try:
            record = self.store.append(event)  # raises AuditWriteError: then nothing changed
        except ClaimTaken as e:
            msg = f"{op} {subject}: the approval it names was already used ({e.holder}); an approval is used once"
            raise GovernanceDenied(msg, reason_code="already_used") from e
        with self._lock:
            if not indexed(self.store):  # folding the log (no complete projection): catch up
                for r in self.store.scan_kinds(("catalog",), self._state.last_seq + 1):
                    self._state.apply(r)
        return record.record_id

    # ---- reads -------------------------------------------------------------------------------
    def find(self, name: str, version: str) -> ModelEntry | None:
        """The entry ``name@version``, or None."""
        return self._view(name).entries.get((name, version))

    def get(self, name: str, version: str) -> ModelEntry:
        """The entry ``name@version``; raises CatalogError naming the known versions if absent."""
        entry = self.find(name, version)
        if entry is None:
            known = [e.version for e in self.list(name)]
            msg = f"model {name}@{version} is not in the catalog (known versions of {name!r}: {known or 'none'})"
            raise CatalogError(msg)
        return entry

    def champion(self, name: str) -> ModelEntry | None:
        """The current champion of ``name``, or None."""
        return self._view(name).champion(name)

    def list(self, name: str | None = None, stage: Stage | None = None) -> _Entries:
        """Entries, optionally of one name and/or stage, sorted by name then registration order."""
        return list(self.entries(name, stage))

    def entries(self, name: str | None = None, stage: Stage | None = None) -> Iterator[ModelEntry]:
        """Like :meth:`list`, streamed one name at a time: with complete projections the memory is one name's
        versions and the time is the names read (stop early to read a page), not the trail's catalog."""
        if not indexed(self.store):  # no complete projection: fold the whole log (it holds every name)
            entries = sorted(self._refresh().entries.values(), key=lambda e: e.name)  # stable: registration order
            yield from (e for e in entries if name in (None, e.name) and stage in (None, e.stage))
            return
        self._seeded()
        for n in (indexed_names(self.store) or ()) if name is None else (name,):
            yield from (e for e in name_entries(self.store, n) if stage in (None, e.stage))

    def names(self) -> Iterator[str]:
        """Every model name, in order (streamed from the projection's index when the store has one)."""
        if not indexed(self.store):
            return iter(sorted({e.name for e in self._refresh().entries.values()}))
        self._seeded()
        return indexed_names(self.store) or iter(())

    def _seeded(self) -> None:
        """Apply config/models.yaml's seed once per reader (indexed stores; the fold checks in :meth:`_refresh`)."""
        with self._lock:
            if not self._seed_checked and indexed(self.store):
                self._seed_checked = True
                self._seed_if_new()

    def history(self, name: str, version: str | None = None) -> _Changes:
        """Every recorded change of ``name`` (or of ``name@version``), oldest first."""
        changes = self._view(name).changes
        if version is not None:
            return [c for c in changes if c.model_id == f"{name}@{version}"]
        return [c for c in changes if c.model_id.split("@", 1)[0] == name]

    # ---- governed writes ---------------------------------------------------------------------
    def _require_allow(self, action: str, actor: str, entry: ModelEntry, context: dict[str, Any]) -> PolicyDecision:
        decision = self._decide(action, actor, {"type": "Model", "id": entry.model_id}, context)
        if decision.effect != "allow":
            reasons = "; ".join(decision.reasons) or "no reason"
            msg = f"{action} on {entry.model_id} by {actor}: {decision.effect} ({reasons})"
            raise GovernanceDenied(msg, reason_code=decision.effect, record_id=decision.audit_record_id or None)
        return decision

    def register(self, entry: ModelEntry, actor: str) -> ModelEntry:
        """Add a new model version as ``candidate`` (policy ``write_catalog`` must allow ``actor``).

        Args:
            entry: the version to add; its stage is forced to ``candidate``.
            actor: principal registering it, e.g. ``service:retraining``.

        Raises:
            CatalogError: ``name@version`` is already registered.
            GovernanceDenied: policy denied, or the audit write failed (nothing registered).
        """
        entry = entry.with_stage("candidate")
        if self.find(entry.name, entry.version) is not None:
            msg = f"model {entry.model_id} is already registered; register a new version instead"
            raise CatalogError(msg)
        decision = self._require_allow("write_catalog", actor, entry, {"op": "register"})
        ref = ModelRef(name=entry.name, version=entry.version, digest=entry.digest)
        self._append(
            actor,
            "register",
            entry.model_id,
            {"op": "register", "entry": entry.model_dump(mode="json")},
            [ref],
            [decision],
        )
        return self.get(entry.name, entry.version)

    def promote(
        self, name: str, version: str, *, actor: str, evidence: dict[str, Any], approval_request_id: str | None = None
    ) -> ModelEntry:
        """Make ``name@version`` the champion, under policy ``promote_model`` (and its approval).

        Args:
            name: model name.
            version: candidate version to promote.
            actor: who asks, e.g. ``service:retraining``.
            evidence: the figures the policy reads (``accuracy_delta``, ``macro_f1_delta``, ``significant``,
                ``drift_passed``, ``evaluation_record``, ...); kept in the catalog record. When it names an
                ``evaluation_record`` the figures are read from that record instead (``aios_catalog.evidence``):
                it must be the evaluation of exactly this entry's artifact against the current champion, and any
                figure handed in must equal the recorded one. Without one, the figures are the caller's own
                statement (``aios models promote --evidence``), recorded under the caller's name.
            approval_request_id: an approved request of the gate the policy named, when it asked for one.

        Returns:
            The promoted entry (stage ``champion``); the previous champion is retired in the same record.

        Raises:
            ApprovalRequired: the policy asks for approval and none (approved, for this model) was given.
            GovernanceDenied: policy denied, the approval is not valid, or the audit write failed.
        """
        entry = self.get(name, version)
        if entry.stage != "candidate":
            msg = f"only a candidate can be promoted; {entry.model_id} is {entry.stage}"
            raise CatalogError(msg)
        if evidence.get("evaluation_record"):
            evidence = self.promotion_evidence(entry, evidence)
        decision = self._decide("promote_model", actor, {"type": "Model", "id": entry.model_id}, _for_policy(evidence))
        approvals = self._check_promotion(entry, decision, approval_request_id, evidence)
        previous = self.champion(name)
        attrs: dict[str, Any] = {
            "op": "promote",
            "name": name,
            "version": version,
            "evidence": dict(evidence),
            "previous": previous.version if previous else None,
        }
        if approvals and approval_request_id:  # the approval is used once: a second promotion on it is refused
            attrs[CLAIMS_ATTR] = [claim(f"approval-act:{approval_request_id}", f"promote:{entry.model_id}")]
        ref = ModelRef(name=name, version=version, digest=entry.digest)
        self._append(actor, "promote", entry.model_id, attrs, [ref], [decision], approvals)
        return self.get(name, version)

    def promotion_evidence(self, entry: ModelEntry, evidence: dict[str, Any]) -> dict[str, Any]:
        """The evidence for promoting ``entry`` as its ``evaluation_record`` recorded it (``aios_catalog.evidence``):
        the evaluation of exactly this artifact against the current champion, agreeing with every figure in
        ``evidence`` (what the caller handed in).

        Raises:
            GovernanceDenied: no such evaluation record, or one about another artifact, champion or figures.
        """
        from flytekitplugins.aios_catalog.evidence import check_evidence, recorded_evaluation

        recorded = recorded_evaluation(self.store, str(evidence.get("evaluation_record") or ""))
        current = self.champion(entry.name)
        held = current.digest if current is not None else None
        return check_evidence(recorded, entry.model_id, entry.digest, held, evidence)

    def _check_promotion(
        self, entry: ModelEntry, decision: PolicyDecision, request_id: str | None, evidence: dict[str, Any]
    ) -> _Records:
        if decision.effect == "allow":
            return []
        if decision.effect != "require_approval" or decision.approval is None:
            msg = f"promote_model {entry.model_id}: {decision.effect} ({'; '.join(decision.reasons) or 'no reason'})"
            raise GovernanceDenied(msg, reason_code="denied", record_id=decision.audit_record_id or None)
        gate = decision.approval.gate
        if request_id is None:
            msg = f"promote_model {entry.model_id} needs an approved '{gate}' request ({decision.approval.risk} risk)"
            raise ApprovalRequired(msg, decision)
        out = self._check_approval(request_id)
        ok = out is not None and bool(getattr(out, "approved", False))
        ok = ok and getattr(out, "gate", gate) == gate and getattr(out, "subject", "") == entry.model_id
        if not ok:
            status = getattr(out, "status", "unreadable")
            why = str(getattr(out, "reason", "") or "") if status == "refused" else ""
            msg = f"approval {request_id} does not approve '{gate}' for {entry.model_id} (status: {status})"
            msg += f": {why}" if why else ""
            raise GovernanceDenied(msg, reason_code="approval_invalid")
        risk, want = getattr(out, "risk", ""), decision.approval.risk
        if risk != want:  # a medium sign-off (quorum 1) does not stand in for the high one the policy asks for
            msg = f"approval {request_id} was asked at {risk or 'unknown'} risk; the policy asks for {want} risk"
            raise GovernanceDenied(msg, reason_code="approval_risk_mismatch")
        evaluation = str(evidence.get("evaluation_record") or "")
        asked_on = str((getattr(out, "evidence", None) or {}).get("evaluation", "") or "")
        # a request names its evaluation in evidence its opener writes: one naming none, or showing its approvers
        # other figures than the evaluation recorded, stood for a promotion decided on the real one (review of
        # 2026-12-07: a launcher's own request, its summary made up, approved and used)
        if asked_on != evaluation:
            msg = f"approval {request_id} was asked on evaluation {asked_on or 'none'}, not on {evaluation or 'none'}"
            raise GovernanceDenied(msg, reason_code="approval_for_other_evidence")
        if evaluation and not self._asked_by_evaluation(out, evaluation, evidence):
            msg = (
                f"approval {request_id} is not the request the run of evaluation {evaluation} opened: it shows its "
                "approvers other figures or was opened elsewhere"
            )
            raise GovernanceDenied(msg, reason_code="approval_for_other_evidence")
        if evaluation and (rejected := self._rejected_promotion(entry.model_id, evaluation)):
            msg = (
                f"a request to promote {entry.model_id} was rejected ({rejected}): a rejection stands for the model "
                "version, whichever evaluation a later request is asked on; train and register a new version to ask "
                "again"
            )
            raise GovernanceDenied(msg, reason_code="approval_rejected")
        dump = getattr(out, "model_dump", None)
        return [dump(mode="json") if callable(dump) else {"request_id": request_id, "status": "approved"}]

    def _asked_by_evaluation(self, out: Any, evaluation: str, evidence: dict[str, Any]) -> bool:
        """Whether approved request ``out`` is one the evaluation's run opened, asking what it asks: in the execution
        and by the actor that recorded evaluation ``evaluation``, naming it and its policy decision and nothing else,
        showing its approvers exactly the promotion ``evidence`` the trail gives (canonical JSON: ``True`` is not
        ``1``). Other content is another request, so a second request for the same promotion (one evidence key added,
        figures retyped) once stood in for one an approver had rejected, or showed made-up figures (reviews of
        2026-12-07). A retry of the run's promotion step asks again under a new policy decision, and its request
        counts unless a request for the model version was rejected (:meth:`_rejected_promotion`)."""
        rec = self.store.get(evaluation)
        if rec is None:
            return False
        from flytekitplugins.aios_core.digest import digest_value

        made = rec.event.execution.execution_key if rec.event.execution is not None else ""
        asked = getattr(out, "evidence", None) or {}
        shown = getattr(out, "summary", None)
        return (
            isinstance(shown, dict)
            and digest_value(shown) == digest_value(dict(evidence))  # canonical: True and 1 are other figures
            and set(asked) == {"evaluation", "policy_decision"}
            and getattr(out, "execution", None) == made
            and getattr(out, "requester", None) == rec.event.actor
        )

    def _rejected_promotion(self, model_id: str, evaluation: str) -> str:
        """The id of a rejected request asked on ``evaluation`` or on any other evaluation of ``model_id`` ("" when
        none): an approver's rejection stands for the model version. Other content is another request, and a second
        request for the same evaluation (reviews of 2026-12-07), or the same candidate evaluated again and asked again,
        once stood in for the one an approver had rejected, a second approver's yes promoting it."""
        from flytekitplugins.aios_approvals.state import evaluations_of, requests_naming

        for ev in dict.fromkeys([evaluation, *evaluations_of(self.store, model_id)]):
            for rid in requests_naming(self.store, ev):
                out = self._check_approval(rid)
                if getattr(out, "status", "") == "rejected" and getattr(out, "subject", "") == model_id:
                    return rid
        return ""

    def retire(self, name: str, version: str, *, actor: str, reason: str) -> ModelEntry:
        """Retire ``name@version`` (policy ``write_catalog`` must allow ``actor``).

        Args:
            name: model name.
            version: version to retire.
            actor: who asks.
            reason: why, kept in the audit record.
        """
        entry = self.get(name, version)
        decision = self._require_allow("write_catalog", actor, entry, {"op": "retire"})
        ref = ModelRef(name=name, version=version, digest=entry.digest)
        attrs = {"op": "retire", "name": name, "version": version, "reason": reason}
        self._append(actor, "retire", entry.model_id, attrs, [ref], [decision])
        return self.get(name, version)


def _for_policy(evidence: dict[str, Any]) -> dict[str, Any]:
    """The evidence as the policy reads it: a measured ``accuracy_delta`` and ``no_skill_delta`` floored to the 4
    decimal places a Cedar decimal holds (the policy refuses more; flooring never rounds in the candidate's
    favour)."""
    out = dict(evidence)
    for key in ("accuracy_delta", "no_skill_delta"):
        delta = out.get(key)
        # no real delta is near 1e6: one that large goes to the policy as given (it refuses it), where quantizing
        # 1e300 raised decimal.InvalidOperation
        if isinstance(delta, float) and math.isfinite(delta) and abs(delta) < 1e6:
            out[key] = float(decimal.Decimal(repr(delta)).quantize(decimal.Decimal("0.0001"), decimal.ROUND_FLOOR))
    return out


_catalogs: dict[str, Catalog] = {}
_catalogs_lock = threading.Lock()


def catalog(settings: Settings) -> Catalog:
    """The catalog of ``settings``' audit store, seeded from their models.yaml (one per process and settings)."""
    key = settings.model_dump_json()
    with _catalogs_lock:
        if key not in _catalogs:
            _catalogs[key] = Catalog(settings)
        return _catalogs[key]
