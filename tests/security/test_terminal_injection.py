"""Text someone else chose never reaches a reviewer's screen as control codes.

The attacker: anyone who can start a governed run (launch rights) chooses what its documents say, and so a vendor
name in an approval request's summary, its subject and reason; anyone with write access to the store chooses an
entry's text. ``aios approvals list`` printed such text raw: an escape sequence in a vendor name could clear the
approver's screen and print "APPROVED BY SECURITY", move the cursor over lines or write a hidden link; a right-to-left
override reverses what follows it, in the terminal and on the approval Deck the reviewer reads in the Flyte console.
Every table cell, every error line and every line ``aios audit verify`` prints, and every Deck cell, shows them as
escapes (``\\x1b``, ``\\u202e``): what a person reads is what the record holds."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from flytekitplugins.aios_approvals import open_request
from flytekitplugins.aios_approvals.evaluate import Env
from flytekitplugins.aios_audit import AuditEvent, audit_log
from flytekitplugins.aios_core.cli import cli
from flytekitplugins.aios_core.settings import get_settings
from flytekitplugins.aios_core.visible import visible

ESC = "\x1b[2J\x1b[H\x1b[32mAPPROVED BY SECURITY\x1b[0m"
LINK = "\x1b]8;;http://attacker.example/\x1b\\details\x1b]8;;\x1b\\"
RLO = "\u202e"  # right-to-left override: "ACME\u202e00.005" displays as "ACME500.00"
RAW = ("\x1b", "\u202e", "\x07", "\x9b")


def _clean(text: str) -> None:
    for ch in RAW:
        assert ch not in text, f"raw {ch!r} reached the output: {text!r}"


def _request() -> str:
    return open_request(
        "payment-signoff",
        "low",
        subject="sha256:" + "ab" * 32 + ESC,
        summary={"vendor": "ACME" + ESC + LINK, "amount": "ACME" + RLO + "00.005", "note": "\x07\x9b2J"},
        requester="service:document-pipeline",
        reason="policy says" + ESC,
        env=Env.load(get_settings()),
    )


def test_visible_escapes_control_codes_and_direction_marks_and_keeps_other_text() -> None:
    assert visible("ACME\x1b[2J\u202eabc\n\tzoë 中文") == "ACME\\x1b[2J\\u202eabc\\x0a\\x09zoë 中文"
    assert visible("plain text, 12,500.00 EUR") == "plain text, 12,500.00 EUR"
    for code in [*range(0x20), *range(0x7F, 0xA0), 0x061C, 0x200E, 0x200F, 0x2028, 0x202A, 0x202E, 0x2066, 0x2069]:
        assert chr(code) not in visible(f"a{chr(code)}b")


def test_approvals_list_shows_a_requests_control_codes_as_escapes(aios_env: Path) -> None:
    rid = _request()
    res = CliRunner().invoke(cli, ["approvals", "list"], env={"COLUMNS": "400"})
    assert res.exit_code == 0, res.output
    assert rid in res.output and "vendor=ACME\\x1b[2J\\x1b[H\\x1b[32mAPPROVED BY SECURITY" in res.output
    assert "amount=ACME\\u202e00.005" in res.output
    _clean(res.output)


def test_audit_show_shows_a_records_control_codes_as_escapes(aios_env: Path) -> None:
    audit_log(get_settings()).append(AuditEvent(kind="task", actor="service:x", status="doc" + ESC + RLO))
    res = CliRunner().invoke(cli, ["audit", "show", "--limit", "5"], env={"COLUMNS": "400"})
    assert res.exit_code == 0, res.output
    assert "doc\\x1b[2J" in res.output
    _clean(res.output)


def test_an_error_line_shows_control_codes_as_escapes_whatever_the_message_quotes(aios_env: Path) -> None:
    audit_log(get_settings()).append(AuditEvent(kind="task", actor="service:x"))
    res = CliRunner().invoke(cli, ["lineage", "trace", "apr-" + ESC])
    assert res.exit_code == 2
    assert "\\x1b[2J" in res.stderr
    _clean(res.stderr)


def test_the_approval_deck_shows_control_codes_and_direction_marks_as_escapes(aios_env: Path) -> None:
    from flytekitplugins.aios_approvals import outcome
    from flytekitplugins.aios_approvals.deck import render_deck

    rid = _request()
    env = Env.load(get_settings())
    page = render_deck("payment-signoff", [outcome(rid, env=env)], env)
    assert "ACME\\u202e00.005" in page and "\\x1b[2J" in page
    _clean(page)


@pytest.mark.parametrize("line", ["FAILED: x" + ESC, "seq 3\n\nOK: 0 records"])
def test_a_verify_line_cannot_add_or_redraw_lines(line: str) -> None:
    shown = visible(line)
    assert "\n" not in shown and "\x1b" not in shown


def test_the_document_decks_tables_show_a_documents_control_codes_as_escapes() -> None:
    """The batch Deck's tables (results, quarantine) hold what documents say: a vendor name is its sender's text."""
    import pandas as pd

    from tasks.documents.html_tables import table_html

    page = table_html(pd.DataFrame({"vendor": ["ACME" + RLO + "00.005<b>"], "amount": [500.0]}), 10)
    assert "ACME\\u202e00.005&lt;b&gt;" in page
    _clean(page)
