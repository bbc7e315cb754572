"""What ``aios audit verify`` reports about approvals: decision records that count for nothing.

Anyone with write access to the store can append an ``approval_decision`` record. Such a record is ignored by
every fold (``evaluate.decision_stands``: its signature must verify against the approvals key, over the digest of
the request it names), but it should not go unnoticed: the verifier lists every decision record that does not
stand, with the reason, so a reviewer sees the attempt.

The full walk does this as it goes (:class:`DecisionCheck` is given each batch of records once their hashes are
checked, in whichever of the two walking processes walks them, and :func:`merge` joins the two halves), instead
of reading the whole log a third time in one process after the walk: that pass took minutes of a ten-million-record
verification. :func:`junk_decisions` is the same check over the whole log in one pass.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import ValidationError

from flytekitplugins.aios_approvals import signing
from flytekitplugins.aios_approvals.evaluate import Env
from flytekitplugins.aios_approvals.models import ApprovalDecision, ApprovalRequest
from flytekitplugins.aios_audit.records import record_from_entry

KINDS = ("approval_request", "approval_decision")
NEEDLES = tuple(b'"kind":"%s"' % k.encode() for k in KINDS)
"""In the sealed bytes of every record of these kinds (canonical JSON): the filter ``scan_kinds`` applies."""

IGNORED_REQUEST = "request"
"""How a line about a request record that no ``open_request`` made begins, after its record id (a decision's line
says ``decision by``): a store writer's planted request, its id or content key not its content's
(``ApprovalRequest.integrity_problem``), which every fold ignores."""


def line_kind(line: str) -> str:
    """``request`` or ``decision``: what a line of :func:`junk_decisions` is about."""
    return "request" if line.partition(": ")[2].startswith(IGNORED_REQUEST + " ") else "decision"


Pending = tuple[int, str, str, str, str, bool]
"""A decision whose request is not in its part before it: ``(seq, record id, request id, approver, the request
digest it names, whether its signature verifies)``."""


@dataclasses.dataclass
class DecisionsPart:
    """What one part of the log (records ``first..``) says about decisions; picklable (a walking child returns it)."""

    first: int
    kid: str
    """The approvals key's id (in the lines of unsigned decisions)."""
    lines: list[tuple[int, str]] = dataclasses.field(default_factory=list)
    """``(seq, line)`` of the decisions that do not stand, judged by a request of this part."""
    digests: dict[str, str] = dataclasses.field(default_factory=dict)
    """Request id -> digest of its first request in this part (the first part's only, once finished: see
    :meth:`DecisionCheck.finish`)."""
    used: set[str] = dataclasses.field(default_factory=set)
    """Request ids whose request in this part judged a decision (only a part after the first keeps them)."""
    pending: list[Pending] = dataclasses.field(default_factory=list)


class DecisionCheck:
    """The check of :func:`junk_decisions`, record by record, over the part of the log from ``first`` on.

    By the fold's rules (``state.Projection``): the first request of an id wins, a decision counts toward the request
    it is recorded for and names, a malformed record is passed over. A decision of a part after the first whose
    request is not in its part before it is kept as :data:`Pending` (its signature checked here) for :func:`merge`.
    Only each request's digest is kept, not the fold of every request (420 MB at a million records).

    ``selection``: the records seen are a selection someone made (an evidence bundle), not a part of the log: a
    decision with no request before it is kept as :data:`Pending` in the first part too (its signature checked), as
    its request may have been left out, instead of being passed over as one that counts toward nothing.
    """

    def __init__(self, public_key: Ed25519PublicKey | None, first: int = 1, *, selection: bool = False) -> None:
        self.key = public_key  # None: no key to check signatures with (an evidence bundle that ships none)
        self.selection = selection
        self.part = DecisionsPart(first, signing.key_id(public_key) if public_key is not None else "")

    def add(self, batch: Sequence[Sequence[Any]]) -> None:
        """The walk's feed: rows ``(seq, entry, leaf || prev || chain hex, ...)`` whose hashes it has checked."""
        for row in batch:
            entry = row[1]
            if _candidate(entry):
                hashes = row[2]
                self.see(int(row[0]), entry, hashes[:64], hashes[64:128], hashes[128:])

    def finish(self) -> DecisionsPart:
        """The part. A part after the first has judged its decisions by its own requests already and is the last
        (the walk has two parts): its request digests, which nothing after it reads, are left out (350,000 of them
        at ten million records, about 100 MB sent to the first process and held there)."""
        if self.part.first != 1:
            self.part.digests = {}
        return self.part

    def see(self, seq: int, entry: bytes, leaf: str, prev: str, chain: str) -> None:
        """One sealed record (any kind: others are passed over)."""
        part = self.part
        try:
            rec = record_from_entry(entry, leaf, prev, chain)
        except (ValueError, KeyError, TypeError, ValidationError):
            return  # not a record the folds can read either
        ev = rec.event
        if ev.kind == "approval_request":
            try:
                req = ApprovalRequest.model_validate(ev.attributes["request"])
            except (KeyError, TypeError, ValidationError) as e:  # counts for nothing in the fold either (which logs it)
                unread = f"record {rec.record_id}: {IGNORED_REQUEST} {ev.subject[:80]}: {unreadable(e)}"
                part.lines.append((seq, unread))
                return
            if why := req.integrity_problem():  # the fold counts it for nothing, and decisions on it with it
                part.lines.append((seq, f"record {rec.record_id}: {IGNORED_REQUEST} {req.request_id}: {why}"))
            elif req.request_id not in part.digests:
                part.digests[req.request_id] = req.digest()
            return
        if ev.kind != "approval_decision":
            return
        try:
            d = ApprovalDecision.model_validate(ev.attributes["decision"])
        except (KeyError, TypeError, ValidationError) as e:
            # counts for nothing in the fold either (which logs it), and is shown: readers print its record's actor
            # ("approve by user:carol"), and it went unreported until 2026-12-07
            who, why = ev.actor[:80] or "(no actor)", f"on {ev.subject[:80]} {unreadable(e)}"
            part.lines.append((seq, f"record {rec.record_id}: decision by {who} {why}"))
            return
        # a decision naming another request than it is recorded for counts for nothing, and is shown: readers print
        # its record's actor and status ("approve by user:carol"), and it went unreported (re-review of 2026-12-07)
        if d.request_id != ev.subject:
            why = f"names request {d.request_id}, but is recorded for {ev.subject}"
            part.lines.append((seq, f"record {rec.record_id}: decision by {d.approver} {why}"))
            return
        # a signed decision re-recorded under another actor or status (bob's signed reject appended as "approve by
        # user:carol") counts only as what it signs, once, and readers print its record's actor and status: shown
        # (re-review R3 of 2026-12-07)
        if ev.actor != d.approver or ev.status != d.action:
            said = f"{ev.status[:20]!r} by {ev.actor[:80]!r}"
            why = f"is recorded as {said}, but its signed decision is {d.action!r} by {d.approver!r}"
            part.lines.append((seq, f"record {rec.record_id}: decision by {d.approver} on {ev.subject} {why}"))
            return
        digest = part.digests.get(ev.subject)
        if digest is None and part.first == 1 and not self.selection:
            return  # no request of that id before it in the log: counts toward nothing
        if digest is None:  # its request, if any, is in an earlier part (or was left out of the selection)
            part.pending.append((seq, rec.record_id, ev.subject, d.approver, d.request_digest, self._signed(d)))
            return
        if part.first != 1:
            part.used.add(ev.subject)
        signed = functools.partial(self._signed, d)
        if line := _judged(rec.record_id, d.approver, ev.subject, d.request_digest, digest, signed, part.kid):
            part.lines.append((seq, line))

    def _signed(self, d: ApprovalDecision) -> bool:
        return self.key is not None and signing.verify(self.key, d.signed_payload(), d.signature)


UNREADABLE_DETAIL_MAX = 20
"""Up to this many validation errors, :func:`unreadable` names the first field; past it, only the count."""


def unreadable(e: Exception) -> str:
    """Why a request or decision record's payload cannot be read, in a few words naming the field, never its value
    (a store writer's text: a reader's screen shows the line)."""
    if isinstance(e, ValidationError):
        if e.error_count() > UNREADABLE_DETAIL_MAX:  # errors() builds a dict per error: a bloated payload's million
            return f"does not parse: {e.error_count():,} fields invalid"  # cost 470 MB for the first (re-review R3)
        first = e.errors(include_input=False, include_url=False)[0]
        field = ".".join(str(part) for part in first.get("loc", ())) or "(the payload)"
        more = f" and {e.error_count() - 1} more" if e.error_count() > 1 else ""
        return f"does not parse: field {field[:60]}: {str(first.get('type', 'invalid'))[:40]}{more}"
    if isinstance(e, KeyError):
        return "does not parse: its payload is missing"
    return "does not parse: its payload is not an object"


def _candidate(entry: bytes) -> bool:
    """True when the sealed bytes may be a request or a decision (:data:`NEEDLES`; the parse decides)."""
    return NEEDLES[0] in entry or NEEDLES[1] in entry


def _judged(
    record_id: str, approver: str, request_id: str, named: str, digest: str, signed: Callable[[], bool], kid: str
) -> str | None:
    """The line of a decision that names request digest ``named`` where its request's is ``digest`` (None when it
    stands); ``signed()`` is asked only when the digests agree."""
    if named != digest:
        why = "covers another request version"
    elif not signed():
        why = f"is not signed by approvals key {kid}"
    else:
        return None
    return f"record {record_id}: decision by {approver} on {request_id} {why}"


def merge(parts: Sequence[DecisionsPart]) -> list[str] | None:
    """The lines of :func:`junk_decisions` from the finished parts of the log in order (one, or the walk's two), or
    None when the second part judged a decision by a request whose id also has a request in the first part (that one
    is the first request of the id, so only :func:`junk_decisions` over the whole log can judge those decisions: a
    request id recorded twice, rare)."""
    if not parts or len(parts) > 2 or parts[0].first != 1:
        return None
    first = parts[0]
    lines = list(first.lines)
    if len(parts) == 2:
        second = parts[1]
        if not second.used.isdisjoint(first.digests):
            return None
        lines += second.lines
        for seq, record_id, request_id, approver, named, signed in second.pending:
            digest = first.digests.get(request_id)
            if digest is None:
                continue  # no request of that id before it in the log
            checked = functools.partial(bool, signed)  # its signature, checked in its part
            if line := _judged(record_id, approver, request_id, named, digest, checked, second.kid):
                lines.append((seq, line))
    return [line for _seq, line in sorted(lines)]


def junk_decisions(env: Env) -> list[str]:
    """One line per recorded decision that does not stand (bad signature, another request's digest), and per request
    record no ``open_request`` made (:func:`line_kind`), in log order:
    :class:`DecisionCheck` over the request and decision records of the whole sealed log, in one pass
    (verification never reads the projection tables)."""
    check = DecisionCheck(env.public_key)
    for seq, entry, leaf, prev, chain in env.store.scan_raw():
        if _candidate(entry):
            check.see(int(seq), entry, leaf, prev, chain)
    return [line for _seq, line in check.finish().lines]
