"""Typed audit records and their canonical, hashable form.

An :class:`AuditEvent` is what a caller submits; the store turns it into an :class:`AuditRecord` by
assigning the next sequence number and time and chaining it to the previous record:

* ``entry``      = canonical JSON of ``{"seq", "recorded_at", "event"}``
* ``leaf_hash``  = SHA-256(0x00 || entry)                (RFC 9162 leaf hash; the record id)
* ``chain_hash`` = SHA-256(prev_chain_hash || leaf_hash) (the hash chain; genesis prev = 32 zero bytes)

Records hold digests and metadata only, never raw document text or secrets.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from flytekitplugins.aios_core.context import ExecutionRef
from flytekitplugins.aios_core.errors import AiosError
from flytekitplugins.aios_core.visible import visible

GENESIS = "0" * 64

# Kinds written by the pack. Other kinds are allowed (extensions), these are the ones the CLI knows.
KINDS = (
    "task",  # a governed task execution (success or failure)
    "policy_decision",  # a policy gate decision (allow, deny, require_approval)
    "approval_request",  # an approval was requested
    "approval_decision",  # an authorized approve/reject was accepted
    "approval_refused",  # an approve/reject attempt was refused (wrong role, self-approval, replay, ...)
    "approval_verified",  # the step after a gate checked the decision
    "catalog",  # model catalog change (registered, stage change)
    "action",  # an action in a system of record
    "quarantine",  # a document was quarantined
    "evaluation",
    "drift",
    "dataset",  # training and held-out rows of one split, sealed by the step that drew them
    "trained",  # a model artifact and the rows it was trained on, sealed by the step that trained it
    "quality",  # a passed data quality validation of two batches (suite, rows' digests), sealed by check_quality
)


class ModelRef(BaseModel):
    """A model used by a step: catalog name, version and artifact digest."""

    model_config = ConfigDict(frozen=True)

    digest: str
    name: str
    version: str


def _sorted(value: Any) -> Any:
    """Dicts with their keys sorted, recursively (lists keep their order)."""
    if isinstance(value, dict):
        return {k: _sorted(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    return value


class AuditEvent(BaseModel):
    """What happened, submitted by a plugin or task. Serialized canonically for hashing.

    Fields are declared in alphabetical order and nested dicts are key-sorted on validation, so pydantic's
    own compact JSON of an event is already canonical (sorted keys at every level): see :func:`entry_bytes`.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    actor: str
    approvals: list[dict[str, Any]] = Field(default_factory=list)
    attributes: dict[str, Any] = Field(default_factory=dict, description="non-sensitive metadata")
    code_version: str = ""
    ended_at: dt.datetime | None = None
    execution: ExecutionRef | None = None
    inputs: dict[str, str] = Field(default_factory=dict, description="input name -> content digest")
    kind: str
    models: list[ModelRef] = Field(default_factory=list)
    outputs: dict[str, str] = Field(default_factory=dict, description="output name -> content digest")
    parents: list[str] = Field(default_factory=list, description="record ids (leaf hashes) this derives from")
    policy_decisions: list[dict[str, Any]] = Field(default_factory=list)
    started_at: dt.datetime | None = None
    status: str = ""
    subject: str = Field(default="", description="what the event is about: a document digest, request id, model id")

    @field_validator("approvals", "attributes", "inputs", "outputs", "policy_decisions")
    @classmethod
    def _sort_keys(cls, value: Any) -> Any:
        return _sorted(value) if value else value


class AuditRecord(BaseModel):
    """A stored, chained record."""

    model_config = ConfigDict(frozen=True)

    seq: int
    recorded_at: dt.datetime
    event: AuditEvent
    leaf_hash: str
    prev_hash: str
    chain_hash: str

    @property
    def record_id(self) -> str:
        """Stable id of the record: its RFC 9162 leaf hash (hex)."""
        return self.leaf_hash


def entry_bytes(seq: int, recorded_at: dt.datetime, event: AuditEvent) -> bytes:
    """Canonical bytes of one log entry (what the leaf hash covers): sorted keys, compact, UTF-8.

    ``{"event":<event>,"recorded_at":"<iso>","seq":<n>}`` where ``<event>`` is pydantic's compact JSON of
    the event (Rust, no intermediate dict): canonical because :class:`AuditEvent` and its nested models
    declare their fields alphabetically and key-sort nested dicts. Stores keep these bytes as hashed, so
    verification never depends on re-serializing.
    """
    return _ENTRY % (_to_json(event), _json_time(recorded_at), seq)


def intact(rec: AuditRecord) -> bool:
    """True when the record's entry re-hashes to its id (nothing in it was edited since it was sealed)."""
    return hashlib.sha256(b"\x00" + entry_bytes(rec.seq, rec.recorded_at, rec.event)).hexdigest() == rec.leaf_hash


_ENTRY = b'{"event":%b,"recorded_at":%b,"seq":%d}'
_to_json = AuditEvent.__pydantic_serializer__.to_json
_dumps = json.JSONEncoder(ensure_ascii=False).encode


def _json_time(t: dt.datetime) -> bytes:
    return _dumps(t.isoformat()).encode()


_RECORD_FIELDS = frozenset(AuditRecord.model_fields)
_new_instance = object.__new__
_set = object.__setattr__


def _record(
    seq: int, recorded_at: dt.datetime, event: AuditEvent, leaf_hash: str, prev_hash: str, chain_hash: str
) -> AuditRecord:
    """``AuditRecord.model_construct`` for exactly these six fields, without its per-field loop (5.5 -> 1.7 us).

    Sets what ``model_construct`` sets on a model without extras, private attributes or ``model_post_init``: the
    field values, the fields set (all of them) and empty extra/private slots (pydantic's documented instance
    attributes). ``tests/audit/test_records.py`` checks the result equals ``model_construct``'s, field set included.
    """
    rec = _new_instance(AuditRecord)
    values = {
        "seq": seq,
        "recorded_at": recorded_at,
        "event": event,
        "leaf_hash": leaf_hash,
        "prev_hash": prev_hash,
        "chain_hash": chain_hash,
    }
    _set(rec, "__dict__", values)
    _set(rec, "__pydantic_fields_set__", set(_RECORD_FIELDS))
    _set(rec, "__pydantic_extra__", None)
    _set(rec, "__pydantic_private__", None)
    return rec


def seal_many(
    seq: int, prev: str, events: Sequence[AuditEvent], recorded_at: dt.datetime
) -> list[tuple[AuditRecord, bytes]]:
    """Chain ``events`` after record ``seq`` whose chain hash is ``prev``: each record and its entry bytes.

    ``leaf_hash = SHA-256(0x00 || entry)`` and ``chain_hash = SHA-256(prev || leaf)`` over raw 32-byte values;
    the hashes stay bytes from one link to the next (this is the hot path of batched appends).
    """
    sha = hashlib.sha256
    when = _json_time(recorded_at)
    prev_b = bytes.fromhex(prev)
    out: list[tuple[AuditRecord, bytes]] = []
    for event in events:
        if type(event) is not AuditEvent:  # what model_construct takes unchecked must be a validated event
            event = AuditEvent.model_validate(event)
        seq += 1
        entry = _ENTRY % (_to_json(event), when, seq)
        leaf_b = sha(b"\x00" + entry).digest()
        chain_b = sha(prev_b + leaf_b).digest()
        chain = chain_b.hex()
        record = _record(seq, recorded_at, event, leaf_b.hex(), prev, chain)  # every field built right here
        out.append((record, entry))
        prev, prev_b = chain, chain_b
    return out


def seal(seq: int, recorded_at: dt.datetime, event: AuditEvent, prev: str) -> AuditRecord:
    """Build the chained record for ``event`` at position ``seq`` after ``prev``."""
    return seal_entry(seq, recorded_at, event, prev)[0]


def seal_entry(seq: int, recorded_at: dt.datetime, event: AuditEvent, prev: str) -> tuple[AuditRecord, bytes]:
    """Like :func:`seal`, also returning the canonical entry bytes that the leaf hash covers (what stores keep)."""
    return seal_many(seq - 1, prev, [event], recorded_at)[0]


class UnreadableEntry(AiosError, ValueError):
    """A stored entry that does not parse back into a record: the store was altered or damaged. A ``ValueError`` too,
    so that readers which pass over records they cannot read (the approval folds) still do."""


_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def holds_lone_surrogate(entry: bytes) -> bool:
    """Whether a stored entry's JSON holds a lone UTF-16 surrogate (an escape such as ``\\ud800`` with no partner).

    Such text has no UTF-8 form: the pack never seals it (its serializer refuses it), and a reader that decodes it can
    neither print nor re-serialize it. Only a hand-made entry holds one, so the verifier reports it and the readers
    refuse it by name. Costs one byte search (memchr) unless the entry holds a backslash at all.
    """
    if b"\\" not in entry or b"\\u" not in entry or not _SURROGATE_ESCAPE.search(entry):
        return False
    try:
        json.dumps(json.loads(entry), ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    except (ValueError, RecursionError):  # not JSON at all: the reader's own parse says so
        return False
    return False


def record_from_entry(entry: bytes, leaf: str, prev: str, chain: str) -> AuditRecord:
    """Parse a stored entry back into a record (no verification: ``aios audit verify`` does that).

    Raises:
        UnreadableEntry: the entry is no record's (not UTF-8 JSON, nested past the parser's depth, fields missing or
            of the wrong type): one error naming the record and what to run, never the parser's own exception.
    """
    try:
        data = json.loads(entry)
        if holds_lone_surrogate(entry):
            raise UnicodeError("text that is not Unicode: a lone surrogate")  # named below as any unreadable entry
        return AuditRecord(
            seq=data["seq"],
            recorded_at=dt.datetime.fromisoformat(data["recorded_at"]),
            event=AuditEvent.model_validate(data["event"]),
            leaf_hash=leaf,
            prev_hash=prev,
            chain_hash=chain,
        )
    except (ValueError, KeyError, TypeError, RecursionError) as e:
        what = f"the audit record {visible(leaf[:16])}" if leaf else "an audit record"
        msg = (
            f"{what} in the store is not a readable entry ({type(e).__name__}): the store was altered or damaged; "
            "run `aios audit verify` to find the first record that fails and what changed"
        )
        raise UnreadableEntry(msg) from None


def chain_link(prev: str, leaf: bytes) -> str:
    """``SHA-256(prev || leaf)`` as hex, the chain hash a record with predecessor hash ``prev`` and leaf hash ``leaf``
    must carry; "" when ``prev`` is not hex (a stored row, read back to be checked)."""
    try:
        return hashlib.sha256(bytes.fromhex(prev) + leaf).hexdigest()
    except (ValueError, TypeError):
        return ""


def entry_seq_suffix(seq: int) -> bytes:
    """The bytes a canonical entry of ``seq`` ends with (keys are sorted, so ``seq`` comes last)."""
    return b',"seq":%d}' % seq


ENTRY_HEAD = b'{"event":'
"""The bytes every sealed entry starts with (``_ENTRY``: the event is its first key)."""
_ENTRY_TAIL = re.compile(
    rb'\},"recorded_at":"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{6})?\+00:00","seq":([0-9]{1,19})\}'
)
_TAIL_MAX = 72  # the longest tail above: 16 + 34 + 7 + 19 + 1 bytes (seq of 19 digits), and one more


def entry_framed(entry: bytes, seq: int) -> bool:
    """Whether ``entry`` is framed exactly as the stores seal record ``seq`` (``records.seal_many``, the PostgreSQL
    integrators, SQLite alike): ``{"event":<event>,"recorded_at":"<UTC time as _json_time writes it>","seq":<seq>}``.

    The time is the only byte string the stores splice in besides the event; one that is no plain quoted time (review
    R2: ``"<time>","event":{forged}`` handed to the server's integrator) sealed a second ``event`` key that every
    parser here reads instead of the first. A regular expression over the last :data:`_TAIL_MAX` bytes, no parse."""
    if not entry.startswith(ENTRY_HEAD):
        return False
    found = _ENTRY_TAIL.search(entry, max(0, len(entry) - _TAIL_MAX))
    return found is not None and found.end() == len(entry) and found.group(1) == b"%d" % seq
