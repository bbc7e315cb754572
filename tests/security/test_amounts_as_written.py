"""An amount is read whole, as it is written, or not at all.

Before, the extractor took the first digits it could read: ``EUR 12.500,00`` (German and most of Europe) was 12 EUR,
``EUR 1.234.567,89`` 1 EUR, ``EUR 12 500,00`` (French) 12 EUR and ``EUR 12.5k`` 12 EUR. A payment instruction for
1.2 million was then acted on automatically, as 1 EUR, without the high-risk sign-off an amount over 50,000 needs:
whoever writes a document chose whether a human saw it. Now an amount is read with its grouping and decimal marks,
and one that cannot be read one way only (``12.500``: 12.5 in English, 12,500 in German) is no amount: the payment
is not acted on (``missing_amount``), never acted on as the next smaller number in the document.
"""

from __future__ import annotations

from typing import Any

import pytest

from flytekitplugins.aios_core.settings import get_settings
from flytekitplugins.aios_policy import PolicyRequest, evaluate
from tasks.documents.extract import extract
from tasks.documents.governance import _policy_request, policy_context

INVOICE = "Invoice INV-20931\nIssued by: Northwind GmbH\nBill to: Contoso Ltd\n{line}\nPlease transfer the amount due."


@pytest.mark.parametrize(
    ("written", "value"),
    [
        ("EUR 12.500,00", 12_500.0),
        ("12.500,00 EUR", 12_500.0),
        ("€ 1.234.567,89", 1_234_567.89),
        ("EUR 12 500,00", 12_500.0),
        ("12\u202f500,00 EUR", 12_500.0),  # a narrow no-break space groups thousands in French typography
        ("CHF 12'500.00", 12_500.0),
        ("EUR 12,500.00", 12_500.0),
        ("EUR 12,50", 12.5),
        ("EUR 12500.000", 12_500.0),
        ("USD 1,000", 1_000.0),
        ("EUR 0.99", 0.99),
    ],
)
def test_an_amount_is_read_whole_with_its_grouping_and_decimal_marks(written: str, value: float) -> None:
    fields = extract(INVOICE.format(line=f"Total amount due: {written}"))
    assert fields.amount == pytest.approx(value, abs=1e-9) and fields.currency in {"EUR", "USD", "CHF"}


@pytest.mark.parametrize(
    "written",
    ["EUR 12.500", "EUR 12.5k", "EUR 1,23,456.00", "EUR 1.234,567.8", "EUR 12,500,00", "EUR 5m"],
)
def test_an_amount_that_cannot_be_read_one_way_is_no_amount_and_the_payment_is_not_acted_on(written: str) -> None:
    text = INVOICE.format(line=f"Shipping: EUR 25.00\nTotal amount due: {written}")
    fields = extract(text)
    assert fields.amount is None, fields  # not 12, 1, 5 or the shipping's 25
    row = {"label": "invoice", "amount": fields.amount, "currency": fields.currency, "digest": "sha256:ab"}
    assert _policy_request({**row, "confidence": 0.97, "personal": False}, "service:document-pipeline") is None


def _decide(fields: Any) -> Any:
    """The policy's decision on paying an invoice with these fields, as the pipeline asks it."""
    ctx: dict[str, Any] = policy_context("invoice", 0.97, fields.amount, fields.currency or "", False)
    req = PolicyRequest(
        principal="service:document-pipeline",
        action="act_on_document",
        resource={"type": "Document", "id": "sha256:ab"},
        context=ctx,
    )
    return evaluate(req, settings=get_settings())


@pytest.mark.parametrize(("written", "risk"), [("EUR 12.500,00", "medium"), ("EUR 1.234.567,89", "high")])
def test_a_large_amount_written_the_european_way_needs_its_sign_off(written: str, risk: str) -> None:
    fields = extract(INVOICE.format(line=f"Total amount due: {written}"))
    decision = _decide(fields)
    assert decision.effect == "require_approval", decision
    assert decision.approval is not None and decision.approval.gate == "payment-signoff"
    assert decision.approval.risk == risk


def test_the_reader_itself() -> None:
    from flytekitplugins.aios_core.amounts import read_amount

    assert read_amount("1.234.567") == 1_234_567.0  # two dot groups cannot be a decimal mark
    assert read_amount("12.500") is None and read_amount("12,500") == 12_500.0
    assert read_amount("12500,5") == 12_500.5
    assert read_amount("1 234 567,8") == 1_234_567.8
    assert read_amount("1,234 567") is None  # two grouping characters


def test_a_number_a_float_cannot_hold_is_no_amount() -> None:
    """``float`` made 10000.0000000000001 10000.0, under the sign-off over 10,000 (review of 2026-12-06 from 20:55
    UTC): an amount is read exactly or not at all; the policy refuses one past four places, never a rounding."""
    from flytekitplugins.aios_core.amounts import read_amount, read_written

    assert read_written("10000.0000000000001") is None and read_amount("100000000000000000001") is None
    assert read_written("10000.00004") == 10000.00004 and read_written("1200.50") == 1200.5
    assert extract(INVOICE.format(line="Amount due: EUR 10000.0000000000001")).amount is None


@pytest.mark.parametrize("written", ["CA$ 500.00", "AU$500", "HK$ 500.00", "R$ 500,00"])
def test_another_countrys_dollar_is_not_read_as_usd_and_is_denied(written: str) -> None:
    """``CA$ 500.00`` was read as USD 500 and paid automatically in a currency the document never named."""
    fields = extract(INVOICE.format(line=f"Total amount due: {written}"))
    assert fields.amount == 500.0 and fields.currency == written.split("$")[0] + "$", fields
    decision = _decide(fields)
    assert decision.effect == "deny" and "doc-known-currency" in decision.policy_ids, decision


def test_a_plain_or_us_dollar_sign_is_usd() -> None:
    assert (extract("Total: $ 500.00").currency, extract("Total: US$ 500.00").currency) == ("USD", "USD")


@pytest.mark.parametrize(
    ("line", "value"),
    [
        ("Due 2024 EUR 60,000.00", None),  # the year was the amount: 2,024 EUR, acted on without the sign-off
        ("Qty 3 EUR 500.00", None),  # a number on each side of the currency: which one is the amount is not known
        ("Total due: 03/04/2024 EUR 500.00", 500.0),  # a date's digits are not an amount
        ("Total: 12.500,00 €", 12_500.0),  # the sign after the amount, as French and German invoices write it
        ("Lines: EUR 500.00 EUR 600.00", 600.0),  # a column: each number belongs to its own currency
        ("Lines: 500.00 EUR 600.00 EUR", 600.0),
        ("Ref INV-2031 EUR 10.00, paper A4 EUR 5.00", 10.0),
    ],
)
def test_a_number_belongs_to_its_currency_or_the_amount_is_not_known(line: str, value: float | None) -> None:
    fields = extract(INVOICE.format(line=line))
    assert fields.amount == value and fields.currency == "EUR", fields


@pytest.mark.parametrize(
    "line",
    ["Credit: -EUR 500.00", "Credit: \u2212EUR 500.00", "Credit: \u2212500,00 \u20ac", "Credit: EUR \u2212500.00"],
)
def test_a_minus_sign_is_never_dropped_to_make_a_credit_a_payment(line: str) -> None:
    """``-EUR 500.00`` and ``−500,00 €`` (a credit, with a hyphen or the minus sign U+2212) were read as a payment of
    500 EUR; this reader does not take signs, so the amount is not known and the document goes to review."""
    fields = extract(INVOICE.format(line=line))
    assert fields.amount is None, fields
