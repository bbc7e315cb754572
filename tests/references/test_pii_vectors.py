"""Published vectors for redaction: every IBAN registry example and the payment providers' test cards.

Each value is planted in every sentence context below, in several printed forms, and the redacted text must be
exactly the context with ``[IBAN]`` / ``[CARD]`` in place of the value: the value is gone (recall 1.00), and
nothing beside it was consumed ("BIC COBADEFFXXX", "EUR 500", "12/25", "ref 12" and the punctuation survive).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from stdnum import iban as stdnum_iban
from stdnum import luhn as stdnum_luhn

from tasks.documents.protect import redact

DATA = Path(__file__).parent / "data"


def _lines(name: str) -> list[str]:
    text = (DATA / name).read_text(encoding="utf-8")
    return [line for line in text.splitlines() if line and not line.startswith("#")]


IBANS = _lines("iban_registry_examples.txt")  # the SWIFT registry's examples (sources in the file)
CARD_LIST = [(brand, number) for brand, number in (line.split() for line in _lines("card_test_numbers.txt"))]

# {v}: the value. Everything else must come out unchanged.
CONTEXTS = [
    "IBAN {v} BIC COBADEFFXXX",  # followed by a BIC
    "Please pay to {v} SWIFT DEUTDEFF today.",  # by a SWIFT code
    "Account {v} EUR 500 due",  # by a currency and an amount
    "Transfer {v} 1,200.00 EUR",  # by an amount and a currency
    "Card {v} 12/25",  # by a date
    "Details: {v}.",  # by punctuation
    "({v}); thanks",  # inside brackets, by punctuation
    "{v}\nThank you",  # by a newline
    "ref 12 {v} paid",  # preceded by a number
    "Invoice 2024 {v} SORT CODE 60-16-13",  # between numbers and words
]


def _groups(value: str, sep: str = " ") -> str:
    return sep.join(value[i : i + 4] for i in range(0, len(value), 4))


def iban_forms(printed: str) -> list[str]:
    """As printed in the registry, compact, in groups of four, and lower-case (grouped and compact)."""
    compact = stdnum_iban.compact(printed)
    grouped = stdnum_iban.format(compact)
    return sorted({printed, compact, grouped, grouped.lower(), compact.lower()})


def card_forms(brand: str, number: str) -> list[str]:
    """Compact and in groups of four joined by spaces, dashes, dots or " - "; Amex also 4-6-5."""
    forms = {number, _groups(number), _groups(number, "-"), _groups(number, "."), _groups(number, " - ")}
    if brand == "amex":
        forms.add(f"{number[:4]} {number[4:10]} {number[10:]}")
    return sorted(forms)


def misses(value: str, placeholder: str) -> list[str]:
    """The contexts in which ``value`` was not redacted exactly (the value left, or a neighbour consumed)."""
    failures = []
    for context in CONTEXTS:
        out = redact(context.format(v=value)).text
        if out != context.format(v=placeholder):
            failures.append(f"{context!r}: {out!r}")
    return failures


def test_vector_files_are_complete() -> None:
    assert len(IBANS) == 194 and sum(" " in line for line in IBANS) == 116
    assert len({stdnum_iban.compact(line) for line in IBANS}) == 143
    assert all(stdnum_iban.is_valid(line) for line in IBANS)
    assert len(CARD_LIST) >= 25 and all(stdnum_luhn.is_valid(n) for _, n in CARD_LIST)


@pytest.mark.parametrize("printed", IBANS)
def test_iban_registry_examples_in_sentences(printed: str) -> None:
    assert [f"{form!r} in {f}" for form in iban_forms(printed) for f in misses(form, "[IBAN]")] == []


@pytest.mark.parametrize(("brand", "number"), CARD_LIST)
def test_published_test_cards_in_sentences(brand: str, number: str) -> None:
    assert [f"{form!r} in {f}" for form in card_forms(brand, number) for f in misses(form, "[CARD]")] == []


def test_eight_contexts_or_more() -> None:
    assert len(CONTEXTS) >= 8 and all(c.count("{v}") == 1 for c in CONTEXTS)
