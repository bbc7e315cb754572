"""A record whose stored entry someone with write access to the store replaced by bytes that are no record (not
UTF-8, not JSON, JSON nested past the parser's depth): the read commands name the record and say to run
`aios audit verify`, exit 2, where they ended in "unexpected RecursionError / UnicodeDecodeError" or told the
operator to "fix the file or the value"; `aios audit verify` fails at that record."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from flytekitplugins.aios_audit import AuditEvent, audit_log
from flytekitplugins.aios_audit.records import UnreadableEntry, record_from_entry
from flytekitplugins.aios_core.cli import cli
from flytekitplugins.aios_core.settings import get_settings

BAD = {
    "nested": b"[" * 200_000 + b"]" * 200_000,
    "not_utf8": b'{"event":\xff\xfe}',
    "not_json": b"hello",
    "no_event": b'{"recorded_at":"2026-01-01T00:00:00+00:00","seq":3}',
}


def _tampered(state: Path, blob: bytes) -> str:
    log = audit_log(get_settings())
    ids = [log.append(AuditEvent(kind="task", actor="svc:x", subject=f"d{i}")).record_id for i in range(5)]
    db = sqlite3.connect(state / "audit.db")
    try:  # what an attacker with the file does: drop the append-only trigger, rewrite an entry
        db.execute("DROP TRIGGER audit_log_no_update")
        db.execute("UPDATE audit_log SET entry = ? WHERE seq = 3", (blob,))
        db.commit()
    finally:
        db.close()
    return ids[2]


@pytest.mark.parametrize("kind", sorted(BAD))
def test_read_commands_name_the_unreadable_record(aios_env: Path, kind: str) -> None:
    rid = _tampered(aios_env, BAD[kind])
    runner = CliRunner()
    for args in (["audit", "show"], ["lineage", "trace", "#3"]):
        res = runner.invoke(cli, args)
        assert res.exit_code == 2, (args, res.output)
        assert f"the audit record {rid[:16]} in the store is not a readable entry" in res.output, res.output
        assert "run `aios audit verify`" in res.output and "unexpected" not in res.output, res.output
    res = runner.invoke(cli, ["audit", "verify"])
    assert res.exit_code == 1 and res.output.startswith("FAILED at seq 3"), res.output


@pytest.mark.parametrize("kind", sorted(BAD))
def test_record_from_entry_raises_one_error_that_is_a_value_error(kind: str) -> None:
    with pytest.raises(UnreadableEntry, match="is not a readable entry") as err:
        record_from_entry(BAD[kind], "ab" * 32, "", "")
    assert isinstance(err.value, ValueError)  # the approval folds pass over what they cannot read (ValueError)
