"""The lineage projection: each record's typed edges, derived from its sealed entry alone and written with it.

One pure function (:func:`event_rows`) turns ONE record into rows ``(pos, child, parent, rel)`` of
``audit_proj_lineage``, which the stores write in the record's own transaction like every projection row. The
edge rules (:mod:`.edge_rules`) sometimes look up earlier records; a row keeps the reference itself instead, and
readers (:class:`~.edge_store.StoreEdges`) resolve it through other rows when they read:

* ``""`` (child or parent) is the record itself: its id is its leaf hash, known only once sealed at its ``seq``;
* ``rel = "parent"``: a parent record whose kind decides the relation (``policy_decision``, ``authorized_by``, ...);
* ``apr:<request id>``: the approval request with that id (the first ``approval_request`` record whose row
  ``(apr:<id>, "", "alias")`` names it);
* ``execution:<project/domain/name>`` with ``rel = "in_execution"``: the execution a record belongs to;
* ``approved_by`` (an authorization back to the decisions that approved its request, sealed before it) is a join
  of ``decides`` and ``approval_request`` rows, made when read.

So a row depends on nothing but its record: ``aios audit verify`` re-derives every row record by record, a rebuild
fills them from the log in any order, and a row its record does not derive is tampering.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from flytekitplugins.aios_audit.edge_rules import execution_of, record_edges
from flytekitplugins.aios_audit.lite import lite_from_event, lite_record
from flytekitplugins.aios_audit.records import AuditRecord

SELF = "\x00self"
"""The record's own id while the rules run (``""`` in the rows); an edge that names ``""`` literally is dropped."""
ALIAS = "apr:"
EXECUTION = "execution:"
HIDDEN = frozenset({"alias", "in_execution"})
"""Rows that index records (by request id, by execution) rather than state lineage: never walked."""
LineageRow = tuple[int, str, str, str]


class _Unresolved:
    """The look-ups of the edge rules, answered with references resolved when read (see the module)."""

    def kind(self, rid: str) -> str:
        del rid
        return ""  # -> rel "parent", resolved by the parent's kind

    def alias(self, name: str) -> str:
        return ALIAS + name if name else ""

    def children(self, node: str) -> list[tuple[str, str, int]]:
        del node
        return []  # approved_by: joined when read


_UNRESOLVED = _Unresolved()


def record_rows(rec: AuditRecord) -> list[LineageRow]:
    """``(pos, child, parent, rel)`` of one record parsed with ``record_id == SELF``."""
    out: list[tuple[str, str, str]] = []
    for child, parent, rel in dict.fromkeys(record_edges(_UNRESOLVED, rec)):
        if child and parent:
            out.append(("" if child == SELF else child, "" if parent == SELF else parent, rel))
    ev = rec.event
    if ev.kind == "approval_request" and ev.subject:
        out.append((ALIAS + ev.subject, "", "alias"))
    execution = execution_of(rec)
    if execution:
        out.append(("", EXECUTION + execution, "in_execution"))
    return [(i, c, p, r) for i, (c, p, r) in enumerate(out)]


def entry_rows(entry: bytes) -> list[LineageRow]:
    """The rows of one sealed entry (none for an entry that does not parse: verification reports that one)."""
    try:
        return record_rows(lite_record(entry, SELF))
    except (ValueError, TypeError, KeyError, AttributeError):
        return []


def parsed_rows(record: dict[str, Any], event: dict[str, Any]) -> list[LineageRow]:
    """:func:`entry_rows` of an entry already parsed (``record``, its ``event`` object)."""
    try:
        return record_rows(lite_from_event(event, SELF, record["seq"], record["recorded_at"]))
    except (ValueError, TypeError, KeyError, AttributeError):
        return []


def event_rows(event_json: bytes) -> list[LineageRow]:
    """The rows of an event from its canonical bytes, before it is sealed (PostgreSQL's staged appends).

    The same as :func:`entry_rows` of the entry it becomes: no row depends on ``seq`` or ``recorded_at``.
    """
    return dict_rows(parse_event(event_json))


def parse_event(event_json: bytes) -> dict[str, Any] | None:
    """An event's canonical bytes as its JSON object (None for bytes that are no JSON object)."""
    try:
        event = orjson.loads(event_json)
    except ValueError:
        return None
    return event if isinstance(event, dict) else None


def dict_rows(event: dict[str, Any] | None) -> list[LineageRow]:
    """:func:`event_rows` of an event already parsed (:func:`parse_event`; the PostgreSQL integrator parses each
    staged event once)."""
    if event is None:
        return []
    try:
        return record_rows(lite_from_event(event, SELF))
    except (ValueError, TypeError, KeyError, AttributeError):
        return []


UNIT = "\x1f"
"""Separates the values of :func:`staged_text` (the server splits it with ``string_to_array(text, chr(31))``)."""


def staged_text(blobs: Sequence[bytes]) -> str | list[str]:
    """The rows of a staged call's events, five values a row (1-based event index first), flattened.

    As ONE text joined by :data:`UNIT` (one query parameter, whatever the number of rows), or as a list when a
    value contains that character (then passed as an array: nothing a value holds can split a row)."""
    out: list[str] = []
    for i, blob in enumerate(blobs, 1):
        for pos, child, parent, rel in event_rows(blob):
            out += [str(i), str(pos), child, parent, rel]
    joined = UNIT.join(out)
    return out if joined.count(UNIT) != max(len(out) - 1, 0) else joined


def as_rows(seq: int, rows: Sequence[LineageRow]) -> list[tuple[Any, ...]]:
    """Table rows ``(seq, pos, child, parent, rel)``."""
    return [(seq, *r) for r in rows]
