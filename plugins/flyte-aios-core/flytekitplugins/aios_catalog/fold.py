"""The catalog's state as a fold over kind="catalog" audit records.

Record shapes (``AuditEvent.attributes``; ``status`` repeats ``op``, ``subject`` is ``name@version``):

* ``{"op": "seed", "source": path, "source_digest": d, "entries": [ModelEntry...]}``: entries of
  config/models.yaml. A seed entry never replaces a known entry, and a seeded champion only counts for a
  name without a champion, so editing the file cannot promote a model.
* ``{"op": "register", "entry": ModelEntry}``: a new version, always as ``candidate``.
* ``{"op": "promote", "name", "version", "previous": version | None, "evidence": {...}}``: the version
  becomes champion; the previous champion of the name is retired in the same record.
* ``{"op": "retire", "name", "version", "reason"}``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from flytekitplugins.aios_audit.records import AuditRecord
from flytekitplugins.aios_catalog.entries import CatalogChange, ModelEntry, Stage


@dataclass
class CatalogState:
    """Entries by (name, version), their changes, and the seeds already applied.

    ``keep_changes=False`` folds the entries only (a listing: the changes, with their decisions and approvals, are
    most of the memory).
    """

    entries: dict[tuple[str, str], ModelEntry] = field(default_factory=dict)
    changes: list[CatalogChange] = field(default_factory=list)
    seed_digests: set[str] = field(default_factory=set)
    last_seq: int = 0
    keep_changes: bool = True

    def champion(self, name: str) -> ModelEntry | None:
        """The champion of ``name``, if any."""
        for e in self.entries.values():
            if e.name == name and e.stage == "champion":
                return e
        return None

    def apply(self, record: AuditRecord) -> None:
        """Fold one record in (records of other kinds only advance ``last_seq``)."""
        self.last_seq = record.seq
        ev = record.event
        if ev.kind != "catalog":
            return
        attrs = ev.attributes
        op = attrs.get("op")
        if op == "seed":
            self._seed(record, attrs)
        elif op == "register":
            entry = ModelEntry.model_validate(attrs["entry"])
            self.entries[(entry.name, entry.version)] = entry
            self._change(record, "register", entry.model_id, None, entry.stage)
        elif op == "promote":
            self._promote(record, attrs)
        elif op == "retire":
            self._set_stage(record, "retire", attrs["name"], attrs["version"], "retired", str(attrs.get("reason", "")))

    def _seed(self, record: AuditRecord, attrs: dict[str, Any]) -> None:
        self.seed_digests.add(str(attrs.get("source_digest", "")))
        for raw in attrs.get("entries", []):
            entry = ModelEntry.model_validate(raw)
            if (entry.name, entry.version) in self.entries:
                continue
            if entry.stage == "champion" and self.champion(entry.name) is not None:
                entry = entry.with_stage("candidate")
            self.entries[(entry.name, entry.version)] = entry
            self._change(record, "seed", entry.model_id, None, entry.stage, f"seeded from {attrs.get('source', '')}")

    def _promote(self, record: AuditRecord, attrs: dict[str, Any]) -> None:
        name, version = str(attrs["name"]), str(attrs["version"])
        previous = self.champion(name)
        if previous is not None and previous.version != version:
            self._set_stage(record, "promote", name, previous.version, "retired", f"replaced by {name}@{version}")
        self._set_stage(record, "promote", name, version, "champion", str(attrs.get("reason", "")))

    def _set_stage(self, record: AuditRecord, op: str, name: str, version: str, stage: Stage, reason: str) -> None:
        entry = self.entries.get((name, version))
        if entry is None:  # a record about an unknown model: keep it in history, change nothing
            self._change(record, op, f"{name}@{version}", None, None, reason)
            return
        self.entries[(name, version)] = entry.with_stage(stage)
        self._change(record, op, entry.model_id, entry.stage, stage, reason)

    def _change(
        self,
        record: AuditRecord,
        op: str,
        model_id: str,
        from_stage: Stage | None,
        to_stage: Stage | None,
        reason: str = "",
    ) -> None:
        if not self.keep_changes:
            return
        ev = record.event
        self.changes.append(
            CatalogChange(
                seq=record.seq,
                record_id=record.record_id,
                recorded_at=record.recorded_at,
                actor=ev.actor,
                op=op,  # type: ignore[arg-type]
                model_id=model_id,
                from_stage=from_stage,
                to_stage=to_stage,
                reason=reason or str(ev.attributes.get("reason", "")),
                evidence=dict(ev.attributes.get("evidence", {})),
                policy_decisions=list(ev.policy_decisions),
                approvals=list(ev.approvals),
            )
        )


def indexed(store: Any) -> bool:
    """True when reads go through the store's projection tables (complete); else the log is folded."""
    from flytekitplugins.aios_audit import projections as pj

    return pj.available(store)


def indexed_state(store: Any, name: str | None) -> CatalogState | None:
    """The catalog as far as ``name`` is concerned (every name when None), from the projection tables.

    Folds only the catalog records that touch ``name`` (found by index; a model's stage depends only on records
    about its own name), each checked against the sealed log first (``projections.sealed_records``: an edited
    row raises ``ProjectionTampered``). Entries and changes of other names in the result are partial: read only
    ``name``'s. None when the store's projections are not complete (then fold the whole log).
    """
    from flytekitplugins.aios_audit import projections as pj

    if not pj.available(store):
        return None
    where, params = ("name = ?", [name]) if name is not None else ("1 = 1", [])
    return _fold_rows(store, CatalogState(), where, params)


NAMES_PAGE = 500
"""Names read a query when listing every name, and catalog rows folded a query."""


def _fold_rows(store: Any, state: CatalogState, where: str, params: list[Any], page: int | None = None) -> CatalogState:
    """Fold into ``state`` the records that the catalog rows matching ``where`` name, in log order, ``page`` rows a
    query (by ``(seq, pos)``), each record checked against the sealed log first (``projections.sealed_records``: an
    edited row raises ``ProjectionTampered``) and folded once (a seed's rows may straddle two pages)."""
    from flytekitplugins.aios_audit import projections as pj

    page = page or NAMES_PAGE
    after = (0, -1)
    keyset = f"({where}) AND (seq > ? OR (seq = ? AND pos > ?))"
    while True:
        rows = pj.select(store, pj.CATALOG, keyset, [*params, after[0], after[0], after[1]], "seq, pos", page)
        for record in pj.sealed_records(store, [(pj.CATALOG, rows)]):
            if record.seq > state.last_seq:
                state.apply(record)
        if len(rows) < page:
            return state
        after = (int(rows[-1][0]), int(rows[-1][1]))


def indexed_names(store: Any, page: int | None = None) -> Iterator[str] | None:
    """Every model name the catalog records touch, in order, read ``page`` at a time from the projection's
    ``(name, seq)`` index; None when the store's projections are not complete.

    A name here is a row's claim; what a name's records say is checked against the sealed log when they are folded
    (:func:`name_entries`), and a name no record supports yields nothing there.
    """
    from flytekitplugins.aios_audit import projections as pj

    if not pj.available(store):
        return None
    page = page or NAMES_PAGE

    def pages() -> Iterator[str]:
        after = ""
        while True:
            sql = f"SELECT DISTINCT name FROM {pj.CATALOG.name} WHERE name > ? ORDER BY name LIMIT {int(page)}"
            names = [str(r[0]) for r in store.read_sql(sql, [after])]
            yield from names
            if len(names) < page:
                return
            after = names[-1]

    return pages()


def name_entries(store: Any, name: str, page: int | None = None) -> Iterator[ModelEntry]:
    """The entries of ``name`` in registration order, folded from its catalog records ``page`` rows at a time
    (each record checked against the sealed log, as :func:`indexed_state`), keeping entries but not changes: the
    memory is one name's versions, not the trail's catalog. Call only when the projections are complete."""
    state = _fold_rows(store, CatalogState(keep_changes=False), "name = ?", [name], page)
    yield from (e for e in state.entries.values() if e.name == name)


def seed_applied(store: Any, source_digest: str) -> bool | None:
    """Whether a seed of ``source_digest`` is in the log (checked against its sealed record); None if not indexed."""
    from flytekitplugins.aios_audit import projections as pj

    if not pj.available(store):
        return None
    rows = pj.select(store, pj.CATALOG, "source_digest = ? AND op = ?", [source_digest, "seed"])
    return any(
        str(r.event.attributes.get("source_digest", "")) == source_digest
        for r in pj.sealed_records(store, [(pj.CATALOG, rows[:1])])
    )
