"""Tables read at 80 and 120 columns; every command that prints a result has ``--json``."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from rich.console import Console

from flytekitplugins.aios_audit import AuditEvent, audit_log
from flytekitplugins.aios_core.cli import cli
from flytekitplugins.aios_core.cli_output import WORD, print_table

APPROVALS = ["id", "gate/risk", "what", "why", "who may decide", "approvals", "time left", "status"]
ROW = [
    "apr-28aafe3b5234dba93f57",
    "payment-signoff/high",
    "amount=12500.0, currency=EUR, doc_type=invoice, supplier=ACME Industrial Supplies",
    "policy payment-signoff-high: invoices above 10,000 EUR need a finance sign-off",
    "user:bob, user:carol, user:dave",
    "0/2",
    "59m12s",
    "pending",
]
HISTORY = ["seq", "at (UTC)", "actor", "op", "model", "stage", "approved by [role] reason", "reason", "record"]
HROW = [
    "12",
    "2026-11-21 10:02:13",
    "service:retraining",
    "promote",
    "doc-type-fast@1.0.0",
    "challenger -> champion",
    "user:carol [finance-manager] 'accuracy +4 points on the holdout'",
    "evaluation passed",
    "3f9a2c1b0d4e",
]


def _render(width: int, title: str, columns: list[str], rows: list[list[str]]) -> str:
    out = io.StringIO()
    print_table(title, columns, rows, console=Console(width=width, file=out, color_system=None))
    return out.getvalue()


@pytest.mark.parametrize("width", [80, 120])
@pytest.mark.parametrize(("columns", "row"), [(APPROVALS, ROW), (HISTORY, HROW)], ids=["approvals", "history"])
def test_no_word_is_cut_at_80_or_120_columns(width: int, columns: list[str], row: list[str]) -> None:
    text = _render(width, "t", columns, [row, row])
    assert max(len(line) for line in text.splitlines()) <= width
    words = {w for cell in [*columns, *row] for w in cell.split() if len(w) <= WORD}
    cut = sorted(w for w in words if w not in text)  # a word folded over two lines is not in the text whole
    assert not cut, f"cut at {width} columns: {cut}\n{text}"


def test_a_plain_rich_table_at_80_columns_cuts_words_and_ours_does_not() -> None:
    from rich.table import Table

    out = io.StringIO()
    table = Table()
    for c in APPROVALS:
        table.add_column(c, overflow="fold")
    table.add_row(*ROW)
    Console(width=80, file=out, color_system=None).print(table)
    assert "apr-28aafe3b5234dba93f57" not in out.getvalue()  # the squeeze this module avoids
    assert "apr-28aafe3b5234dba93f57" in _render(80, "t", APPROVALS, [ROW])


def test_a_table_that_fits_is_one_table() -> None:
    text = _render(120, "model catalog", ["name", "stage"], [["doc-type-fast", "champion"]])
    assert "┃ name" in text and text.count("doc-type-fast") == 1


def _json(args: list[str], code: int = 0) -> object:
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == code, res.output
    return json.loads(res.stdout)


def test_audit_commands_print_json(tmp_path: Path) -> None:
    ids = [audit_log().append(AuditEvent(kind="task", actor=f"a{i}")).record_id for i in range(5)]
    cp, proof = str(tmp_path / "cp.json"), str(tmp_path / "proof.json")
    doc = _json(["audit", "checkpoint", "--out", cp, "--json"])
    assert isinstance(doc, dict) and doc["tree_size"] == 5 and doc["out"] == cp
    doc = _json(["audit", "prove", ids[2], "--checkpoint", cp, "--out", proof, "--json"])
    assert isinstance(doc, dict) and doc["out"] == proof and "path" in doc["proof"]
    doc = _json(["audit", "verify-proof", proof, "--checkpoint", cp, "--json"])
    assert isinstance(doc, dict) and doc["ok"] is True
    audit_log().append(AuditEvent(kind="task", actor="later"))
    doc = _json(["audit", "consistency", "--from", cp, "--out", str(tmp_path / "c.json"), "--json"])
    assert isinstance(doc, dict) and doc["proof"]["new_size"] == 6


def test_policy_approvals_models_and_config_print_json(tmp_path: Path) -> None:
    req = tmp_path / "req.json"
    req.write_text(json.dumps({"principal": "user:bob", "action": "act_on_document", "resource": {}, "context": {}}))
    assert _json(["policy", "eval", "--request", str(req), "--json"], code=3)["effect"] == "deny"  # type: ignore[index]
    doc = _json(["policy", "test", "--json"])
    assert isinstance(doc, dict) and doc["ok"] is True and doc["passed"] == doc["total"] > 0
    assert _json(["policy", "validate", "--json"])["ok"] is True  # type: ignore[index]
    assert _json(["approvals", "list", "--json"]) == []
    doc = _json(["approvals", "approve", "apr-nope", "--as", "user:bob", "--json"], code=3)
    assert isinstance(doc, dict) and doc["accepted"] is False and doc["code"]
    assert isinstance(_json(["models", "list", "--json"]), list)
    assert "state_dir" in json.dumps(_json(["config", "show", "--json"]))


def test_progress_is_silent_off_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    from flytekitplugins.aios_core.cli_output import working

    with working("verifying", total=3) as advance:
        for _ in range(3):
            advance(1)
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""
