"""Sealed records: the hot path's shortcut around pydantic builds the same record ``model_construct`` builds."""

from __future__ import annotations

import datetime as dt

import pytest

from flytekitplugins.aios_audit.records import AuditEvent, AuditRecord, entry_bytes, record_from_entry, seal_many


def _events() -> list[AuditEvent]:
    return [
        AuditEvent(kind="task", actor="service:x", status="succeeded", inputs={"b": "2", "a": "1"}),
        AuditEvent(kind="policy_decision", actor="user:bob", subject='Ünïcode "quoted"', attributes={"z": [1, 2]}),
    ]


def test_sealed_records_equal_what_model_construct_and_validation_build() -> None:
    now = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)
    sealed = seal_many(7, "00" * 32, _events(), now)
    assert [r.seq for r, _ in sealed] == [8, 9]
    for rec, entry in sealed:
        fields = {name: getattr(rec, name) for name in AuditRecord.model_fields}
        built = AuditRecord.model_construct(**fields)
        assert rec == built
        assert rec.__pydantic_fields_set__ == built.__pydantic_fields_set__ == set(AuditRecord.model_fields)
        assert rec.__pydantic_extra__ is None and rec.__pydantic_private__ is None
        assert rec.model_dump() == built.model_dump() == AuditRecord.model_validate(fields).model_dump()
        assert rec.model_dump_json() == AuditRecord.model_validate(fields).model_dump_json()
        assert entry == entry_bytes(rec.seq, rec.recorded_at, rec.event)
        assert record_from_entry(entry, rec.leaf_hash, rec.prev_hash, rec.chain_hash) == rec
        with pytest.raises(Exception, match="frozen"):
            rec.seq = 1  # type: ignore[misc]
    assert sealed[1][0].prev_hash == sealed[0][0].chain_hash


def test_an_unvalidated_event_is_validated_before_sealing() -> None:
    now = dt.datetime(2026, 11, 30, tzinfo=dt.UTC)
    ((rec, _),) = seal_many(0, "00" * 32, [{"kind": "task", "actor": "a"}], now)  # type: ignore[list-item]
    assert type(rec.event) is AuditEvent
    with pytest.raises(ValueError, match="actor"):
        seal_many(0, "00" * 32, [{"kind": "task"}], now)  # type: ignore[list-item]
