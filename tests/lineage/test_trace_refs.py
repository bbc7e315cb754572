"""A record id prefix made only of digits names its record, not a sequence number past the log's end.

``lineage trace 8048630800`` answered "names nothing": a bare number was read as a sequence number only, and about
one record id in a hundred starts with ten decimal digits (the suite failed on such an id, 2026-12-05).
"""

from __future__ import annotations

import json

from click.testing import CliRunner

from flytekitplugins.aios_audit import AuditEvent
from flytekitplugins.aios_audit.stores import open_store
from flytekitplugins.aios_core.cli import cli
from flytekitplugins.aios_core.settings import get_settings


def test_a_prefix_of_digits_names_its_record_and_a_small_number_its_sequence_number() -> None:
    store = open_store(get_settings().audit_store)
    target = None
    for i in range(3000):  # (10/16)**8: about one id in 43 starts with eight decimal digits
        rec = store.append(AuditEvent(kind="task", actor="service:x", subject=f"d{i}"))
        if rec.record_id[:8].isdigit() and rec.record_id[:8].isascii():
            target = rec
            break
    assert target is not None
    prefix = next(target.record_id[:n] for n in range(10, 7, -1) if target.record_id[:n].isdigit())
    assert int(prefix) > store.size()  # no sequence number: a prefix
    res = CliRunner().invoke(cli, ["lineage", "trace", prefix, "--json"])
    assert res.exit_code == 0, res.output
    assert target.record_id in json.dumps(json.loads(res.output))
    by_seq = CliRunner().invoke(cli, ["lineage", "trace", str(target.seq), "--json"])
    assert by_seq.exit_code == 0 and target.record_id in by_seq.output  # a number within the log: its seq
