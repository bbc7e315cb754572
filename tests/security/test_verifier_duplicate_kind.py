"""A record whose entry holds a second ``"kind"`` key is checked against what parsers read (re-review R4, 2026-12-07).

Attacker: write access to the audit store (the PostgreSQL writer role, which may insert its own log rows, or the
SQLite file). The verifier's fast column check read the kind after ``"inputs"`` and took a row as certain, so an entry
``{"event":{..."kind":"task",...,"kind":"action",...}}`` with ``kind = task`` in its column passed ``aios audit
verify``, although every JSON parser (and so every reader) takes it for an ``action``. Now such a row goes to the
parsed check, which reports the column as edited. Real SQLite store; the row is chained and hashed as a writer would.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import pytest

from flytekitplugins.aios_audit import AuditEvent
from flytekitplugins.aios_audit.stores import open_store
from flytekitplugins.aios_audit.verify import verify_store


@pytest.mark.parametrize(
    "second",
    [b',"kind":"action"', b',"\\u006bind":"action"', b',"kind" :"action"', b',"kind"\n:"action"'],
    ids=["plain", "escaped (re-review R6)", "blank before the colon (R6)", "newline before the colon (R6)"],
)
def test_a_second_kind_key_is_reported(tmp_path: Path, second: bytes) -> None:
    path = tmp_path / "audit.db"
    store = open_store(f"sqlite:///{path}")
    store.append_many([AuditEvent(kind="task", actor="a", status="ok", subject=f"s{i}") for i in range(3)])
    ((_seq, entry, _leaf, prev, _chain),) = list(store.scan_raw(3, 3))
    store.close()
    assert entry.count(b'"kind":"task"') == 1
    forged = entry.replace(b',"status":"ok"', second + b',"status":"ok"', 1)
    assert json.loads(forged)["event"]["kind"] == "action"  # what every parser reads
    leaf = hashlib.sha256(b"\x00" + forged).digest()
    chain = hashlib.sha256(bytes.fromhex(prev) + leaf).hexdigest()
    conn = sqlite3.connect(path)
    for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
        conn.execute(f"DROP TRIGGER {name}")
    conn.execute(
        "UPDATE audit_log SET entry = ?, leaf_hash = ?, chain_hash = ? WHERE seq = 3", (forged, leaf.hex(), chain)
    )
    conn.commit()
    conn.close()
    store = open_store(f"sqlite:///{path}")
    got = verify_store(store, workers=1)
    assert not got.ok and got.first_bad_seq == 3 and got.problem == "edited", got.summary()
    assert "kind" in got.detail, got.detail
    store.close()
