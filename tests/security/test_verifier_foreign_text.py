"""A record holding text that is not Unicode: a JSON escape of a lone UTF-16 surrogate (``\\ud800``), valid JSON and
valid UTF-8 bytes, which decodes to a string no record, table or terminal can hold. The pack never seals one (its
serializer refuses it), so only someone with write access to the store makes one: appended correctly chained, with
its plain columns matching its bytes.

Before, `aios audit verify` passed such a log as ``ok`` (or, when a column disagreed, stopped with ``unexpected
UnicodeEncodeError``, exit 4, naming no record), and `aios audit show`, `lineage trace` and `audit show --json` ended
in ``unexpected UnicodeEncodeError`` or ``invalid input: Error serializing to JSON``. Now the verifier fails at that
record and the readers name it and say to run the verifier.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from flytekitplugins.aios_audit import AuditEvent, audit_log
from flytekitplugins.aios_audit.records import _ENTRY, _json_time, _to_json
from flytekitplugins.aios_core.cli import cli
from flytekitplugins.aios_core.settings import get_settings


def _forged(actor: bytes) -> tuple[bytes, dt.datetime]:
    """An event's bytes as the pack would seal them, with ``actor`` (raw JSON string content) put in by hand."""
    blob = _to_json(AuditEvent(kind="task", actor="service:PLACEHOLDER", status="succeeded", subject="s"))
    return blob.replace(b"service:PLACEHOLDER", actor), dt.datetime.now(dt.UTC)


def _append_forged_sqlite(state: Path, actor: bytes) -> int:
    log = audit_log(get_settings())
    for i in range(3):
        log.append(AuditEvent(kind="task", actor="service:x", subject=f"d{i}"))
    db = sqlite3.connect(state / "audit.db")
    try:  # what an attacker with the file does: append one more row, chained, its columns agreeing with its bytes
        seq, chain, recorded = db.execute(
            "SELECT seq, chain_hash, recorded_at FROM audit_log ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        blob, _ = _forged(actor)
        seq += 1
        last = db.execute("SELECT entry FROM audit_log WHERE seq = ?", (seq - 1,)).fetchone()[0]
        when = json.dumps(json.loads(last)["recorded_at"]).encode()  # the same instant as the record before
        entry = _ENTRY % (blob, when, seq)
        leaf = hashlib.sha256(b"\x00" + entry).digest()
        row = (seq, recorded, "task", "s", "", "", entry, leaf.hex(), chain)
        db.execute("INSERT INTO audit_log VALUES (?,?,?,?,?,?,?,?,?,?)", (*row, _chain(chain, leaf)))
        db.commit()
    finally:
        db.close()
    return seq


def _chain(prev: str, leaf: bytes) -> str:
    return hashlib.sha256(bytes.fromhex(prev) + leaf).hexdigest()


def test_the_verifier_fails_at_a_chained_record_holding_a_lone_surrogate_and_the_readers_name_it(
    aios_env: Path,
) -> None:
    seq = _append_forged_sqlite(aios_env, b"user:\\ud800\\u001b[2J")
    runner = CliRunner()
    res = runner.invoke(cli, ["audit", "verify"])
    assert res.exit_code == 1, res.output
    assert res.output.startswith(f"FAILED at seq {seq}: edited") and "not Unicode" in res.output, res.output
    for args in (["audit", "show"], ["audit", "show", "--json"], ["lineage", "trace", f"#{seq}"]):
        res = runner.invoke(cli, args)
        assert res.exit_code == 2, (args, res.output)
        assert "is not a readable entry" in res.output and "run `aios audit verify`" in res.output, res.output
        assert "unexpected" not in res.output and "\x1b" not in res.output, res.output


@pytest.mark.parametrize(
    ("actor", "lone"),
    [
        (b"user:\\ud800", True),
        (b"user:\\uDCFF", True),  # upper-case hex is the same escape
        (b"user:\\ud83d\\ude00", False),  # a pair is one character (the pack writes it as UTF-8, but it is text)
        (b"user:\\\\ud800", False),  # an escaped backslash, then the letters 'ud800'
        (b"user:\\u00e9", False),
    ],
)
def test_lone_surrogates_are_told_from_pairs_and_from_escaped_backslashes(actor: bytes, lone: bool) -> None:
    from flytekitplugins.aios_audit.records import holds_lone_surrogate

    blob, now = _forged(actor)
    assert holds_lone_surrogate(_ENTRY % (blob, _json_time(now), 1)) is lone


def test_the_verifier_fails_at_such_a_record_on_postgresql(pg_url: str) -> None:
    import psycopg

    from flytekitplugins.aios_audit.stores import open_store
    from flytekitplugins.aios_audit.verify import verify_store

    store = open_store(pg_url)
    try:
        for i in range(3):
            store.append(AuditEvent(kind="task", actor="service:x", subject=f"d{i}"))
        with psycopg.connect(pg_url, autocommit=True) as conn:
            seq, chain, recorded = conn.execute(
                "SELECT seq, chain_hash, recorded_at FROM audit_log ORDER BY seq DESC LIMIT 1"
            ).fetchone()
            last = conn.execute("SELECT entry FROM audit_log WHERE seq = %s", (seq,)).fetchone()[0]
            blob, _ = _forged(b"user:\\udcff")
            when = json.dumps(json.loads(bytes(last))["recorded_at"]).encode()
            entry = _ENTRY % (blob, when, seq + 1)
            leaf = hashlib.sha256(b"\x00" + entry).digest()
            conn.execute(
                "INSERT INTO audit_log VALUES (%s,%s,'task','s','','',%s,%s,%s,%s)",
                (seq + 1, recorded, entry, leaf.hex(), chain, _chain(chain, leaf)),
            )
        result = verify_store(store)
        assert not result.ok and result.first_bad_seq == seq + 1, result.summary()
        assert "not Unicode" in result.summary(), result.summary()
    finally:
        store.close()
