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
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from flytekitplugins.aios_audit import AuditEvent
from flytekitplugins.aios_audit.stores import open_store
from flytekitplugins.aios_audit.verify import verify_store
from flytekitplugins.aios_core.context import ExecutionRef

EX = ExecutionRef(project="aios", domain="production", name="local", task_name="post")


def _verified_after(tmp_path: Path, forge: Callable[[bytes], bytes]) -> Any:
    """What ``verify_store`` says of a log whose record 3 a writer replaced by ``forge(entry)``, chained and hashed as
    the pack would (SQLite, its triggers dropped: the file's writer; the PostgreSQL writer role inserts such rows)."""
    path = tmp_path / "audit.db"
    store = open_store(f"sqlite:///{path}")
    store.append_many(
        [AuditEvent(kind="task", actor="a", status="ok", subject=f"s{i}", execution=EX) for i in range(3)]
    )
    ((_seq, entry, _leaf, prev, _chain),) = list(store.scan_raw(3, 3))
    store.close()
    forged = forge(entry)
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
    try:
        return verify_store(store, workers=1)
    finally:
        store.close()


@pytest.mark.parametrize(
    "second",
    [b',"kind":"action"', b',"\\u006bind":"action"', b',"kind" :"action"', b',"kind"\n:"action"'],
    ids=["plain", "escaped (re-review R6)", "blank before the colon (R6)", "newline before the colon (R6)"],
)
def test_a_second_kind_key_is_reported(tmp_path: Path, second: bytes) -> None:
    def forge(entry: bytes) -> bytes:
        assert entry.count(b'"kind":"task"') == 1
        forged = entry.replace(b',"status":"ok"', second + b',"status":"ok"', 1)
        assert json.loads(forged)["event"]["kind"] == "action"  # what every parser reads
        return forged

    got = _verified_after(tmp_path, forge)
    assert not got.ok and got.first_bad_seq == 3 and got.problem == "edited", got.summary()
    assert "kind" in got.detail, got.detail


@pytest.mark.parametrize(
    "key", [b'"execution" :', b'"\\u0065xecution":'], ids=["blank before the colon", "escaped (re-review R7)"]
)
def test_a_second_execution_key_before_the_kind_is_reported(tmp_path: Path, key: bytes) -> None:
    """Re-review R7: the R6 fix searched for escapes and blank-spaced keys only after the kind, so a second
    ``execution`` key written that way between ``inputs`` and ``kind`` (which every parser reads instead of the first)
    passed with the first one's columns; ``aios audit show --task`` then lost the record."""
    other = b'{"domain":"production","name":"local","project":"other","task_name":"wire-funds"}'

    def forge(entry: bytes) -> bytes:
        forged = entry.replace(b',"kind":"task"', b"," + key + other + b',"kind":"task"', 1)
        assert json.loads(forged)["event"]["execution"]["task_name"] == "wire-funds"  # what every parser reads
        return forged

    got = _verified_after(tmp_path, forge)
    assert not got.ok and got.first_bad_seq == 3 and got.problem == "edited", got.summary()
