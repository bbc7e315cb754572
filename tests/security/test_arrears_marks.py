"""On SQLite, a mark row in the lineage parent index no longer hides a rejected request (review of 2026-12-07, R5).

Attacker: write access to the SQLite audit store, without dropping a trigger (``audit_lineage_parents`` refuses only
UPDATE and DELETE). The acting point finds the other requests for a document, one of which may hold a rejection,
through that index, which writers fill in batches after each append and mark as filled up to a sequence number. A
writer inserted marks for the next 5,000 sequence numbers: the requests appended after them were then never copied
into the index and never read from the lineage table either, so bob's rejection counted for nothing and the payment
carol approved on a second request was posted. Now an approval request's parent rows are written with the request
(``sqlite_parents.write_now``), so a mark cannot leave them out. Real flytekit local execution of the
system-of-record connector task, the pack's Cedar policy and signed approvals.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pandas as pd

from flytekitplugins.aios_audit import AuditEvent, audit_log
from flytekitplugins.aios_core.settings import get_settings
from tests.security.test_record_id_table import _db, _posted, _rejected_then_asked_again, post


def test_marks_planted_ahead_hide_no_rejection(sor: Path) -> None:
    store = audit_log(get_settings())
    store.append(AuditEvent(kind="task", actor="svc"))  # the store exists
    with sqlite3.connect(_db(), isolation_level=None) as conn:  # inserts only: both triggers stay
        conn.executemany("INSERT INTO audit_lineage_parents VALUES ('', ?, -1, '')", [(n,) for n in range(2, 5002)])
    row, _rejected, _record = _rejected_then_asked_again()
    store.append_many([AuditEvent(kind="task", actor="svc") for _ in range(300)])
    out = post(actions=pd.DataFrame([row]))
    assert (out.posted, out.refused) == (0, 1), "the rejection did not stand"
    assert _posted(sor) == []
    refusals = [r.event.status for r in audit_log(get_settings()).scan_kinds(("action_refused",))]
    assert refusals == ["approval_rejected"]
