"""The review report in headless Chromium at 10 and 10,000 records: loads cleanly, search works, screenshots kept."""

from __future__ import annotations

import re
import shutil
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from flytekitplugins.aios_audit import AuditEvent, audit_log
from flytekitplugins.aios_core.cli import cli
from flytekitplugins.aios_core.settings import get_settings
from tests.lineage.chromium import open_page, screenshot
from tests.lineage.synthetic import write_documents, write_trail


def _report(tmp_path: Path, *extra: str) -> tuple[Path, str]:
    out = tmp_path / "report.html"
    res = CliRunner().invoke(cli, ["lineage", "report", "--out", str(out), *extra])
    return out, res.output


def _count(dom: str, element: str) -> str:
    m = re.search(rf'id="{element}">([^<]*)<', dom)
    assert m, f"{element} not rendered"
    return m.group(1)


def _offline(html: str) -> None:
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html), "the report must not load anything remote"


@pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz dot not installed (scripts/setup.sh installs it)")
def test_report_at_10_records(aios_env: Path, tmp_path: Path) -> None:
    store = audit_log(get_settings(), emit=False)
    docs = write_documents(store, 1, 2)  # one approved payment (6 records), one rejected (3)
    store.append(AuditEvent(kind="task", actor="service:x", status="succeeded"))
    assert store.size() == 10
    report, output = _report(tmp_path)
    assert "report: 10 records, verification OK" in output, output
    html = report.read_text(encoding="utf-8")
    _offline(html)
    assert html.count("<svg") >= 3  # the execution and both documents, laid out by dot
    dom, errors = open_page(report)
    assert errors == [] and 'id="js-errors" class="bad" hidden' in dom
    assert 'id="verification" class="ok"' in dom and "Verification: OK: 10 records" in dom
    assert _count(dom, "records-count").startswith("10 of 10 records")
    assert _count(dom, "documents-count") == "2 of 2 documents match"
    assert "rejected by user:alice: nothing was posted" in dom and "user:carol [finance-manager]" in dom
    assert "payment-signoff risk high quorum 2" in dom  # the records table says what each record is
    dom, errors = open_page(report, "q=invoice-000002.pdf")
    assert errors == [] and _count(dom, "documents-count") == "1 of 2 documents match"
    assert docs[1]["document"][:23] in dom
    screenshot(report, tmp_path / "report-10.png")


@pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz dot not installed (scripts/setup.sh installs it)")
def test_report_of_one_execution_reads_its_records_and_verifies_from_a_checkpoint(
    aios_env: Path, tmp_path: Path
) -> None:
    """--execution reads that execution's records through the index (not the last --limit records of the log), and
    --checkpoint verifies only what came after the checkpoint; a tampered record after it still fails the report."""
    store = audit_log(get_settings(), emit=False)
    write_documents(store, 0, 2, per_execution=2)  # execution aios/development/run-0: the oldest records
    old = store.size()
    cp = tmp_path / "checkpoint.json"
    res = CliRunner().invoke(cli, ["audit", "checkpoint", "--out", str(cp)])
    assert res.exit_code == 0, res.output
    write_documents(store, 2, 8, per_execution=2)  # four newer executions
    assert store.size() > old + 5
    report, output = _report(tmp_path, "--execution", "aios/development/run-0", "--limit", "5", "--checkpoint", str(cp))
    assert "report: 5 records, verification OK" in output, output  # the old path found none in the last 5
    html = report.read_text(encoding="utf-8")
    assert f"incremental: records {old + 1}..{store.size()} checked from the checkpoint" in html
    from flytekitplugins.aios_audit.edges import EdgeIndex

    index = EdgeIndex.for_store(store, get_settings().state_dir)
    mine = [seq for seq, _ in index.execution_records("aios/development/run-0")]
    index.close()
    assert len(mine) > 5 and mine[-1] < store.size() - 5  # none of them among the log's last five
    assert [int(m) for m in re.findall(r'\[(\d+),"[0-9a-f]{12}"', html)] == mine[-5:]  # exactly its last five
    with sqlite3.connect(str(store.path)) as db:  # an edit after the checkpoint: caught by the incremental check
        db.execute("DROP TRIGGER audit_log_no_update")
        db.execute(
            "UPDATE audit_log SET entry = CAST(replace(CAST(entry AS TEXT), 'user:alice', 'user:mallory') AS BLOB) "
            "WHERE seq = (SELECT MAX(seq) FROM audit_log WHERE instr(CAST(entry AS TEXT), 'user:alice') > 0)"
        )
        assert db.total_changes == 1
    _report_again, output = _report(tmp_path, "--execution", "aios/development/run-0", "--checkpoint", str(cp))
    assert "verification FAILED" in output, output


@pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz dot not installed (scripts/setup.sh installs it)")
def test_report_of_one_document_reads_its_lineage_not_the_end_of_the_log(aios_env: Path, tmp_path: Path) -> None:
    """--document reads the records of that document's lineage through the index, however old: the policy decision,
    the request, both approvers' decisions, the authorization and the action; no other document's records."""
    from flytekitplugins.aios_audit.edges import document_of

    store = audit_log(get_settings(), emit=False)
    (old, _rejected) = write_documents(store, 0, 2, per_execution=2)
    cp = tmp_path / "checkpoint.json"
    assert CliRunner().invoke(cli, ["audit", "checkpoint", "--out", str(cp)]).exit_code == 0
    write_documents(store, 2, 8, per_execution=2)
    records = {r.seq: r for r in store.scan()}
    own = {seq for seq, r in records.items() if document_of(r) == old["document"]}
    assert len(own) >= 3 and max(own) < store.size() - 20
    report, output = _report(tmp_path, "--document", old["document"], "--limit", "20", "--checkpoint", str(cp))
    assert "verification OK" in output, output
    shown = [int(m) for m in re.findall(r'\[(\d+),"[0-9a-f]{12}"', report.read_text(encoding="utf-8"))]
    assert own <= set(shown), "the document's own records are in its report"  # the old path showed the last 20
    assert {records[seq].event.kind for seq in shown} >= {
        "policy_decision",
        "approval_request",
        "approval_decision",
        "action_authorized",
        "action",
    }
    assert all(document_of(records[seq]) in ("", old["document"]) for seq in shown), "another document's record"
    assert all(old["request_id"] in records[seq].model_dump_json() or seq in own for seq in shown)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz dot not installed (scripts/setup.sh installs it)")
def test_report_at_10000_records_with_a_tampered_record(aios_env: Path, tmp_path: Path) -> None:
    store = audit_log(get_settings(), emit=False)
    docs = write_trail(store, 2000)
    assert store.size() >= 10000
    report, output = _report(tmp_path)
    assert f"report: {store.size()} records, verification OK" in output, output
    assert report.stat().st_size < 5_000_000
    dom, errors = open_page(report, f"q={docs[1234]['request_id']}")
    assert errors == []
    assert _count(dom, "records-count").startswith(
        f"5 of {store.size()} records match"
    )  # request, 2 decisions, authorization, action
    dom, errors = open_page(report, "q=invoice-001999.pdf")
    assert errors == [] and _count(dom, "documents-count") == "1 of 2000 documents match"
    screenshot(report, tmp_path / "report-10000.png", "q=invoice-001999.pdf")
    # edit one record behind the store's back: the report says FAILED and highlights that record in place
    store.close()
    conn = sqlite3.connect(aios_env / "audit.db")
    conn.execute("DROP TRIGGER audit_log_no_update")
    edit = 'UPDATE audit_log SET entry = CAST(replace(CAST(entry AS TEXT), \'"kind":"\', \'"kind":"X\') AS BLOB)'
    conn.execute(f"{edit} WHERE seq = 405")
    conn.commit()
    conn.close()
    report, output = _report(tmp_path)
    assert "verification FAILED" in output
    dom, errors = open_page(report, "bad")
    assert errors == [] and 'id="verification" class="bad"' in dom and "FAILED at seq" in dom
    bad = re.search(r"FAILED at seq (\d+)", dom)
    assert bad and f'id="seq-{bad.group(1)}" class="record badrow"' in dom
    screenshot(report, tmp_path / "report-10000-tampered.png")  # the FAILED banner, first thing on the page


@pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz dot not installed (scripts/setup.sh installs it)")
def test_hostile_text_in_records_stays_text(aios_env: Path, tmp_path: Path) -> None:
    """Reasons, names and actors are written by people and documents: the report must never run them."""
    store = audit_log(get_settings(), emit=False)
    write_documents(store, 1, 1)
    hostile = "</script><img src=x onerror=\"document.title='pwned'\"><!--<script>"
    store.append(
        AuditEvent(kind="task", actor=hostile, status=hostile, subject=hostile, attributes={"reason": hostile})
    )
    report, output = _report(tmp_path)
    assert "verification OK" in output, output
    dom, errors = open_page(report, "q=onerror")
    assert errors == [] and "pwned" not in dom.split("<body", 1)[0]
    assert "<img src=" not in dom and "&lt;img src=x" in dom
    assert _count(dom, "records-count").startswith("1 of 7 records match")


@pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz dot not installed (scripts/setup.sh installs it)")
def test_control_codes_and_direction_marks_in_records_are_shown_as_escapes(aios_env: Path, tmp_path: Path) -> None:
    """A right-to-left override in a record's text reversed what the compliance reader saw after it in the table
    (``ACME\\u202e00.005`` displayed as ``ACME500.00``); the page shows it, and every control character, as its escape,
    and the row is still found and filtered by its real value."""
    store = audit_log(get_settings(), emit=False)
    write_documents(store, 1, 1)
    rlo = "ACME\u202e00.005"
    store.append(AuditEvent(kind="task", actor="service:x", status=rlo + "\x1b[2J\u2066"))
    report, output = _report(tmp_path)
    assert "verification OK" in output, output
    dom, errors = open_page(report, "q=acme")
    assert errors == []
    body = dom.split('id="records-body"', 1)[1].split("</tbody>", 1)[0]
    assert "ACME\\u202e00.005\\x1b[2J\\u2066" in body, body[:2000]
    shown = re.sub(r'<script id="data".*?</script>', "", dom, flags=re.S)  # the data block is data, never drawn
    for raw in ("\u202e", "\x1b", "\u2066"):
        assert raw not in body
        assert raw not in shown  # nowhere on the page: not in the lineage graphs' labels either
    assert _count(dom, "records-count").startswith("1 of ")


def test_a_graph_label_shows_control_codes_as_escapes_and_keeps_its_lines() -> None:
    """A policy decision's action is the caller's text and is drawn in the report's lineage graphs."""
    from flytekitplugins.aios_audit.report_graph import _q

    label = _q('deny pay\u202e00.005\x1b[2J "x"\nsecond line')
    assert "\u202e" not in label and "\x1b" not in label
    assert label == '"deny pay\\\\u202e00.005\\\\x1b[2J \\"x\\"\\nsecond line"'
