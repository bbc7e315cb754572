"""Approval state as a fold over the audit trail (event sourcing).

Requests, decisions, refusals and verifications are audit records (kinds ``approval_request``,
``approval_decision``, ``approval_refused``, ``approval_verified``); the state of a request is a
pure function of those records, so it is as tamper-evident as the hash-chained log, and shared across
pods when the store is PostgreSQL. The projection is refreshed incrementally (records after the last
seen sequence number), so polling costs one indexed range scan.

Fold rules: the first ``approval_request`` for an id wins (re-opening is idempotent). Every
``approval_decision`` for a request is kept, in log order: which of them count is decided by
``evaluate.evaluate`` with the approvals key (only decisions whose signature verifies count, and only the first
verified one per approver), so a junk record appended by anyone with write access to the store can neither
count nor block a real decision. A request is consumed by the ``approval_verified`` record that holds its unique
claim ``approval-use:<request id>`` (see ``verify.py``); a record without that claim consumes nothing.

Reads go through the store's projection tables (``aios_audit.projections``) when it has complete ones: the
rows of one request (or one content key, or the requests still open) are found by index, every record they
name is fetched by ``seq`` and re-hashed, each row is re-derived from its sealed record (an edited row is
refused with ``ProjectionTampered``), and those sealed records are folded by the same rules as below. A store
whose projections are not built yet (``aios audit rebuild-projections``) is folded from the whole log.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import weakref
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from flytekitplugins.aios_approvals.models import ApprovalDecision, ApprovalRequest
from flytekitplugins.aios_audit import projections as pj
from flytekitplugins.aios_audit.records import AuditRecord
from flytekitplugins.aios_audit.stores import AuditStore, claim_pairs

log = logging.getLogger(__name__)
KINDS = frozenset({"approval_request", "approval_decision", "approval_refused", "approval_verified"})


def use_claim(request_id: str) -> str:
    """The unique claim an execution takes when it uses an approved request (one execution per request)."""
    return f"approval-use:{request_id}"


def act_claim(request_id: str) -> str:
    """The unique claim the acting point takes when it acts on an approved request (one action per request)."""
    return f"approval-act:{request_id}"


@dataclass
class RequestState:
    """Everything the log says about one request."""

    request: ApprovalRequest
    record_id: str
    decisions: list[ApprovalDecision] = field(default_factory=list)
    decision_records: list[str] = field(default_factory=list)
    refusals: list[dict[str, str]] = field(default_factory=list)
    consumed_by: list[str] = field(default_factory=list)
    verified: list[str] = field(default_factory=list)


class Projection:
    """Incrementally folded view of every approval in one audit store."""

    def __init__(self) -> None:
        self.last_seq = 0
        self.requests: dict[str, RequestState] = {}
        self.by_content: dict[str, list[str]] = {}
        self._lock = threading.Lock()

    def refresh(self, store: AuditStore) -> Projection:
        """Fold the records of ``store`` appended since the last refresh."""
        with self._lock:
            self.fold(store.scan_kinds(KINDS, self.last_seq + 1))
        return self

    def fold(self, records: Iterable[AuditRecord]) -> None:
        """Apply records in log order."""
        for rec in records:
            try:
                self._apply(rec)
            except (KeyError, TypeError, ValidationError) as e:
                # a malformed approval record counts for nothing (fail closed) but must not block reads
                log.warning("ignoring malformed %s record %s: %s", rec.event.kind, rec.record_id, e)
            self.last_seq = rec.seq

    def _apply(self, rec: AuditRecord) -> None:
        ev = rec.event
        if ev.kind not in KINDS:
            return
        if ev.kind == "approval_request":
            req = ApprovalRequest.model_validate(ev.attributes["request"])
            if why := req.integrity_problem():  # a request no open_request made counts for nothing (fail closed)
                log.warning("ignoring approval request record %s (%s): %s", rec.record_id, req.request_id, why)
                return
            if req.request_id not in self.requests:
                self.requests[req.request_id] = RequestState(req, rec.record_id)
                self.by_content.setdefault(req.content_key, []).append(req.request_id)
            return
        st = self.requests.get(ev.subject)
        if st is None:
            return
        if ev.kind == "approval_decision":
            dec = ApprovalDecision.model_validate(ev.attributes["decision"])
            if dec.request_id == st.request.request_id:
                st.decisions.append(dec)
                st.decision_records.append(rec.record_id)
        elif ev.kind == "approval_refused":
            st.refusals.append({"actor": ev.actor, "code": ev.status, "reason": str(ev.attributes.get("reason", ""))})
        else:
            st.verified.append(ev.status)
            consumer = str(ev.attributes.get("consumed_by", ""))
            held = {key for key, _holder in claim_pairs(ev.attributes) or ()}  # malformed: claims nothing
            if consumer and use_claim(st.request.request_id) in held and consumer not in st.consumed_by:
                st.consumed_by.append(consumer)

    def get(self, request_id: str) -> RequestState | None:
        """State of one request (after :meth:`refresh`)."""
        return self.requests.get(request_id)

    def get_many(self, request_ids: Iterable[str]) -> dict[str, RequestState]:
        """States of the requests that exist among ``request_ids`` (after :meth:`refresh`)."""
        return {rid: st for rid in dict.fromkeys(request_ids) if (st := self.requests.get(rid)) is not None}

    def rounds_for(self, content_key: str) -> list[RequestState]:
        """Every round of requests with this content, in log order."""
        return [self.requests[rid] for rid in self.by_content.get(content_key, ())]

    def open_requests(self, now: dt.datetime) -> list[RequestState]:
        """Requests that have not expired at ``now`` (every pending one is among them), oldest first."""
        return [st for st in self.requests.values() if st.request.expires_at > now]


OPEN_CHUNK = 500
"""Open requests :meth:`IndexedProjection.open_requests` reads and folds together (three queries a chunk)."""


class IndexedProjection:
    """The same view as :class:`Projection`, read per request through the projection tables' indexes.

    Each read finds the rows it needs by index, checks them and the records they name against the sealed log
    (``projections.sealed_records``) and folds those records with :class:`Projection`'s rules.
    """

    def __init__(self, store: AuditStore) -> None:
        self.store = store

    def _fold(self, found: list[tuple[pj.Table, list[Any]]]) -> Projection:
        p = Projection()
        # read-only records: the fold keeps only the request and decisions it validates itself (ApprovalRequest,
        # ApprovalDecision), so validating every event as an AuditEvent first was a third of `aios approvals list`
        p.fold(pj.sealed_records(self.store, found, lite=True))
        return p

    def _rows(self, request_ids: list[str]) -> list[tuple[pj.Table, list[Any]]]:
        found: list[tuple[pj.Table, list[Any]]] = []
        for i in range(0, len(request_ids), 500):
            part = request_ids[i : i + 500]
            where = f"request_id IN ({','.join('?' * len(part))})"
            found += [
                (t, pj.select(self.store, t, where, part)) for t in (pj.REQUESTS, pj.DECISIONS, pj.APPROVAL_EVENTS)
            ]
        return found

    def get(self, request_id: str) -> RequestState | None:
        """State of one request: its request, decision, refusal and verification records only."""
        return self._fold(self._rows([request_id])).get(request_id)

    def get_many(self, request_ids: Iterable[str]) -> dict[str, RequestState]:
        """:meth:`get` of each request that exists among ``request_ids``, read together (the acting point's chunk
        of actions: three queries per 500 requests, not three each)."""
        ids = list(dict.fromkeys(request_ids))
        return self._fold(self._rows(ids)).get_many(ids) if ids else {}

    def rounds_for(self, content_key: str) -> list[RequestState]:
        """Every round of requests with this content, in log order, each with its decisions and uses."""
        rows = pj.select(self.store, pj.REQUESTS, "content_key = ?", [content_key])
        ids = list(dict.fromkeys(str(r[1]) for r in rows))
        if not ids:
            return []
        return self._fold(self._rows(ids)).rounds_for(content_key)

    def open_requests(self, now: dt.datetime, unused: bool = False) -> Iterator[RequestState]:
        """Requests that have not expired at ``now``, found through the expiry index, oldest first, read and folded
        :data:`OPEN_CHUNK` at a time as the caller iterates: memory follows one chunk's records, not every open
        request's (12,445 unexpired requests, after a burst of governance calls on a ten-million-record trail, held
        393 MB at once in ``aios approvals list``), and a caller that keeps only some of them (the pending ones)
        holds those alone. Each request's state depends on its own records only, so chunks fold as the whole did.

        With ``unused``, only those whose approval no execution has used and no action has acted on (neither
        :func:`use_claim` nor :func:`act_claim` is held in the store's claims table): see :func:`pending_candidates`.
        """
        # ordered by the expiry index itself, then by seq here: ordered by seq in SQL, SQLite read the whole table in
        # seq order instead (every request ever opened: 2.5 s from a cold cache at ten million records, none open)
        where = "expires_at > ?"
        if unused:  # one look-up of the claims' primary key per claim and request, in the same query
            where += "".join(
                f" AND NOT EXISTS (SELECT 1 FROM audit_claims c WHERE c.claim = '{prefix}' || request_id)"
                for prefix in (use_claim(""), act_claim(""))
            )
        rows = pj.select(self.store, pj.REQUESTS, where, [pj.utc_text(now)], order="expires_at, seq")
        ids = list(dict.fromkeys(str(r[1]) for r in sorted(rows, key=lambda r: int(r[0]))))
        del rows
        for i in range(0, len(ids), OPEN_CHUNK):
            p = self._fold(self._rows(ids[i : i + OPEN_CHUNK]))
            yield from (st for st in p.requests.values() if st.request.expires_at > now)

    @property
    def requests(self) -> dict[str, RequestState]:
        """Every request (reads every approval row: for listings of all requests)."""
        found = [(t, pj.select(self.store, t, "1 = 1", [])) for t in (pj.REQUESTS, pj.DECISIONS, pj.APPROVAL_EVENTS)]
        return self._fold(found).requests


_lock = threading.Lock()
_projections: weakref.WeakKeyDictionary[AuditStore, Projection] = weakref.WeakKeyDictionary()


def pending_candidates(store: AuditStore, now: dt.datetime) -> Iterator[RequestState]:
    """The requests of ``store`` that may be pending at ``now``, oldest first: those that have not expired and whose
    approval no execution has used and no action has acted on (neither :func:`use_claim` nor :func:`act_claim` is
    held). Every pending request is among them; the caller still evaluates each (``evaluate.evaluate``).

    A claim is taken only by an execution or an action that has just verified the request ``approved``
    (``verify.verify_requests``, ``acting.authorize``), and once taken no other can take it: a request whose claim
    is held can never be used again, whatever its decisions. So the approvers' listing need not read and verify its
    records: with most unexpired requests approved and used (a day of the pipeline's invoices), reading them all
    cost about 0.28 ms a request (3.5 s for 12,445 at ten million records). A claim taken by someone else without an
    approved request (an attacker who may append) blocks the request's use as it did before, and takes it off this
    listing; ``aios approvals list --all`` still shows it with its verified status. A claims row written into the
    database by hand does the same, and ``aios audit verify`` reports it (``claim_extra``), as a deleted request row.
    """
    view = projection(store)
    if isinstance(view, IndexedProjection):
        yield from view.open_requests(now, unused=True)
        return
    states = view.open_requests(now)
    for i in range(0, len(states), OPEN_CHUNK):
        part = states[i : i + OPEN_CHUNK]
        keys = [(use_claim(st.request.request_id), act_claim(st.request.request_id)) for st in part]
        held = store.claim_holders([k for pair in keys for k in pair])
        yield from (st for st, pair in zip(part, keys, strict=True) if not held.keys() & set(pair))


def projection(store: AuditStore) -> Projection | IndexedProjection:
    """The approvals view of ``store``: indexed when its projection tables are complete, else the refreshed fold."""
    if pj.available(store):
        return IndexedProjection(store)
    return folded(store)


def folded(store: AuditStore) -> Projection:
    """The fold of the whole log (one per store object in this process, refreshed incrementally): the old path."""
    with _lock:
        p = _projections.get(store)
        if p is None:
            p = Projection()
            _projections[store] = p
    return p.refresh(store)


def evaluations_of(store: AuditStore, model_id: str) -> list[str]:
    """The record ids of the ``evaluation`` records of model ``model_id`` (``name@version``, the candidate they
    evaluated), in log order: through the lineage projection's ``model:`` edges (``evaluated_by``), or, for a store
    without the projection, by scanning its evaluations. A rejected promotion of a model version stands against a
    request asked on another evaluation of it (review of 2026-12-07: the same candidate evaluated again, asked again,
    approved by a second approver, promoted what the first had rejected)."""
    from flytekitplugins.aios_audit.edge_store import StoreEdges

    if pj.available(store, pj.LINEAGE_GROUP):
        found = StoreEdges(store).parents(f"model:{model_id}")
        return [rid for rid, rel, _seq in sorted(found, key=lambda e: e[2]) if rel == "evaluated_by"]
    return [
        rec.record_id
        for rec in store.scan_kinds(("evaluation",))
        if rec.event.models and f"{rec.event.models[0].name}@{rec.event.models[0].version}" == model_id
    ]


def requests_naming(store: AuditStore, record_id: str) -> list[str]:
    """The request ids of the ``approval_request`` records that name ``record_id`` (an evaluation record, a
    document's digest) in their evidence, in log order: read through the lineage projection's parent index (a request
    names its evidence as parents and inputs), or, for a store without the projection, by scanning its requests. A
    rejection stands against every other request for the same evaluation or document: other content is a new request,
    and one with an evidence key added, ``True`` written ``1``, or asked again by a second run of the deciding step
    stood in for the one an approver had rejected (reviews of 2026-12-07)."""
    from flytekitplugins.aios_audit.edge_store import StoreEdges
    from flytekitplugins.aios_audit.lite import lite_record

    if pj.available(store, pj.LINEAGE_GROUP):
        edges = StoreEdges(store)
        # the records stating the edges, read by position and re-hashed (a row naming a record the log lacks, or one
        # that does not hash, raises ProjectionTampered: fail closed), never looked up by id: a look-up by id goes
        # through SQLite's record-id table, and a store writer who deleted the rejected request's row there made the
        # request unreadable, so the rejection counted for nothing and the payment was posted (review of 2026-12-07)
        seqs = [seq for child, _rel, seq in edges.children(record_id) if child == edges.id_of_seq(seq)]
        found = pj.sealed_entries(store, seqs)
        records = (lite_record(found[seq][0], found[seq][1]) for seq in sorted(found))
        return [rec.event.subject for rec in records if rec.event.kind == "approval_request"]
    return [
        rec.event.subject
        for rec in store.scan_kinds(("approval_request",))
        if record_id in rec.event.parents or record_id in rec.event.inputs.values()
    ]
