"""Records parsed for reading only: orjson into plain objects, no validation (many times faster than the
validated parse). For derived views (the edge index, the review report); verification never uses them, and
``recorded_at`` stays the ISO string of the entry."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any, cast

import orjson

from flytekitplugins.aios_audit.records import AuditRecord
from flytekitplugins.aios_audit.stores import AuditStore


def execution_key_of(execution: dict[str, Any]) -> str:
    """``project/domain/name`` of an execution's parsed JSON, with ``ExecutionRef``'s defaults."""
    get = execution.get
    return f"{get('project', 'local')}/{get('domain', 'development')}/{get('name', 'local')}"


class _LiteExecution(SimpleNamespace):
    @property
    def execution_key(self) -> str:
        return execution_key_of(self.__dict__)


_EVENT_DEFAULTS: dict[str, Any] = {
    "subject": "", "status": "", "actor": "", "attributes": {}, "parents": [], "inputs": {}, "outputs": {},
    "policy_decisions": [], "approvals": [], "models": [], "execution": None, "kind": "",
}  # fmt: skip


def lite_record(entry: bytes, leaf: str) -> AuditRecord:
    """``entry`` (canonical bytes) with id ``leaf`` as a read-only, duck-typed :class:`AuditRecord`."""
    d = orjson.loads(entry)
    return lite_from_event(d["event"], leaf, d["seq"], d["recorded_at"])


def lite_from_event(event: dict[str, Any], leaf: str, seq: int = 0, recorded_at: str = "") -> AuditRecord:
    """An event's parsed JSON as a read-only, duck-typed :class:`AuditRecord` (``seq`` and time as given)."""
    ev = {**_EVENT_DEFAULTS, **event}
    ex = ev["execution"]
    ev["execution"] = _LiteExecution(**{"task_name": "", **ex}) if ex else None
    ev["models"] = [SimpleNamespace(**m) for m in ev["models"]]
    rec = SimpleNamespace(seq=seq, recorded_at=recorded_at, event=SimpleNamespace(**ev), record_id=leaf)
    return cast(AuditRecord, rec)


def scan_lite(store: AuditStore, start: int = 1, end: int | None = None) -> Iterator[AuditRecord]:
    """Records ``start``..``end`` of ``store`` parsed with :func:`lite_record`."""
    for _seq, entry, leaf, _prev, _chain in store.scan_raw(start, end):
        yield lite_record(entry, leaf)
