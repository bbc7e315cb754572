"""Typed field extraction from redacted text: amounts, currency, dates, parties, references.

Decisions downstream are made from these typed fields only, never from free text, so instructions
written inside a document cannot steer a decision. Prompt-injection phrases are detected and flagged
(for the reviewer and the audit trail), but the flag changes nothing either.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

from flytekitplugins.aios_core.amounts import WRITTEN, read_amount

_MINUS = "-\u2212\u2012\u2013\u2014"  # hyphen-minus, minus sign, figure dash, en dash, em dash
# a dollar sign with its country's letters is that country's dollar (CA$, AU$, HK$...): never read as USD
_CUR_TOKEN = re.compile(r"(?<![A-Za-z])(?:EUR|USD|GBP|CHF)(?![A-Za-z])|€|£|(?<![A-Za-z])(?:[A-Z]{1,3})?\$")
# a number as written, whole (flytekitplugins.aios_core.amounts), not the tail of a date, a reference or a decimal
# (nor what follows a minus sign: '−500,00 €' or '-EUR 500.00' is a credit, never a payment of 500)
_NUM_TOKEN = re.compile(rf"(?<![\d.,'/:{re.escape(_MINUS)}]){WRITTEN}")
_GAP = re.compile(r"\s?")
_SYMBOL = {"€": "EUR", "$": "USD", "US$": "USD", "£": "GBP"}
_TOTAL_HINT = re.compile(r"(?i)(total|amount due|claim amount|balance due|contract value|sum of|fees?)\W")
_MONTHS = {
    m: i + 1 for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"))
}
_DATE_RES = (
    (re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b"), "ymd"),
    (
        re.compile(
            r"\b(\d{1,2}) (January|February|March|April|May|June|July|August|September|October|November|December)"
            r",? (\d{4})\b",
            re.I,
        ),
        "dMy",
    ),
    (re.compile(r"\b(\d{2})/(\d{2})/(\d{4})\b"), "dmy"),
)
_PARTY_RE = re.compile(
    r"\b((?:[A-Z][A-Za-z&]+ ){1,3}(?:Ltd|GmbH|Inc|LLC|plc|B\.V\.|S\.A\.|AG|Corp|Limited|SE)\.?)(?=\W|$)"
)
_PARTY_LINE = re.compile(
    r"(?im)^(?:issued by|bill to|claimant|insurer|from|to|between|supplier|customer)\s*:\s*(.{2,80})$"
)
_REF_RE = re.compile(r"\b(?:INV|BILL|RE|CLM|PO|REF)-\d{3,10}\b")
_INJECTION_RE = re.compile(
    r"(?i)\b(ignore|disregard|forget|override)\b.{0,40}\b(previous|prior|above|earlier|all|system)\b.{0,20}"
    r"\b(instructions?|prompts?|rules?|polic(y|ies))\b"
    r"|\byou are now\b|\bsystem prompt\b|\bact as (an? )?(admin|administrator|approver)\b"
    r"|\b(auto-?)?approve (this|the) (payment|invoice|claim|request)\b|\bdo not (flag|escalate|review)\b"
)


@dataclass
class Fields:
    """Typed fields of one document."""

    amount: float | None = None
    currency: str | None = None
    dates: list[str] = field(default_factory=list)
    parties: list[str] = field(default_factory=list)
    references: list[str] = field(default_factory=list)
    injection: bool = False


def _amounts(text: str) -> list[tuple[float | None, str, int]]:
    """Every amount next to a currency, before it (``EUR 500.00``, ``$500``) or after it (``500,00 €``):
    (value, currency, offset of the currency).

    The value is None when the number cannot be read one way only (:func:`read_amount`), runs on into a letter or
    digit (``EUR 12.5k``), or when a number stands on each side of the currency and neither belongs to another
    currency (``Due 2024 EUR 60,000.00``: the year was read as the amount, 2,024 EUR, acted on without the sign-off).
    In a column of amounts (``EUR 500.00 EUR 600.00``, ``500.00 EUR 600.00 EUR``) each number belongs to its own
    currency.
    """
    items = sorted(
        [(m.start(), m.end(), True, m.group()) for m in _CUR_TOKEN.finditer(text)]
        + [(m.start(), m.end(), False, m.group()) for m in _NUM_TOKEN.finditer(text)]
    )
    cur_ends = {i[1] for i in items if i[2]}
    # a number glued to a word is no amount (A4, INV2031), unless the word is a currency (EUR500)
    items = [i for i in items if i[2] or i[0] == 0 or not text[i[0] - 1].isalpha() or i[0] in cur_ends]

    def next_to(a: tuple[int, int, bool, str], b: tuple[int, int, bool, str]) -> bool:
        return _GAP.fullmatch(text, a[1], b[0]) is not None

    def number(k: int) -> tuple[int, int, bool, str] | None:
        return items[k] if 0 <= k < len(items) and not items[k][2] else None

    def currency(k: int) -> bool:
        return 0 <= k < len(items) and items[k][2]

    found: list[tuple[float | None, str, int]] = []
    for k, item in enumerate(items):
        if not item[2]:
            continue
        left, right = number(k - 1), number(k + 1)
        left = left if left and next_to(left, item) else None
        right = right if right and next_to(item, right) else None
        if left and right:
            left_owned = currency(k - 2) and next_to(items[k - 2], left)
            right_owned = currency(k + 2) and next_to(right, items[k + 2])
            if left_owned and not right_owned:
                left = None
            elif right_owned and not left_owned:
                right = None
        signed = item[0] > 0 and text[item[0] - 1] in _MINUS
        if left and right:
            value = None  # a number on each side, neither another currency's: which one is the amount?
        elif signed:
            value = None  # '-EUR 500.00': a credit, whose sign this reader does not take
        elif right:
            runs_on = right[1] < len(text) and text[right[1]].isalnum()
            value = None if runs_on else read_amount(right[3])
        elif left:
            value = read_amount(left[3])
        else:
            continue
        found.append((value, _SYMBOL.get(item[3], item[3]), item[0]))
    return found


def amounts_in(text: str) -> list[tuple[float | None, str]]:
    """Every amount next to a currency in ``text``, as ``(value, currency)`` in order (value None: not readable one
    way only): what two views of one document must agree on (:func:`tasks.documents.parse.read_html`)."""
    return [(value, currency) for value, currency, _ in _amounts(text)]


def total_in(text: str) -> float | None:
    """The total :func:`extract` reads in ``text`` (None: none, or not readable one way only)."""
    return _pick_total(text, _amounts(text))[0]


def _pick_total(text: str, amounts: list[tuple[float | None, str, int]]) -> tuple[float | None, str | None]:
    """The document's total: the largest amount after a total's hint (else the largest); no amount when one of those
    candidates cannot be read (the total may be that one: fail closed, never the next smaller amount)."""
    if not amounts:
        return None, None
    hinted = [a for a in amounts if _TOTAL_HINT.search(text[max(0, a[2] - 40) : a[2]])]
    candidates = hinted or amounts
    unread = [a for a in candidates if a[0] is None]
    if unread:
        return None, unread[0][1]
    value, cur, _ = max(candidates, key=lambda a: a[0] or 0.0)
    return value, cur


def _dates(text: str) -> list[str]:
    out: list[str] = []
    for pattern, kind in _DATE_RES:
        for m in pattern.finditer(text):
            g = m.groups()
            try:
                if kind == "ymd":
                    d = dt.date(int(g[0]), int(g[1]), int(g[2]))
                elif kind == "dMy":
                    d = dt.date(int(g[2]), _MONTHS[g[1][:3].lower()], int(g[0]))
                else:
                    d = dt.date(int(g[2]), int(g[1]), int(g[0]))
            except ValueError:
                continue
            out.append(d.isoformat())
    return list(dict.fromkeys(out))


def _parties(text: str) -> list[str]:
    names = [m.group(1).strip() for m in _PARTY_RE.finditer(text)]
    for m in _PARTY_LINE.finditer(text):
        line = m.group(1).strip()
        if "[" not in line:  # a redacted placeholder is not a party name
            names.append(line)
    return list(dict.fromkeys(n.rstrip(".") + ("." if n.endswith(("B.V.", "S.A.")) else "") for n in names))[:8]


def injection_flag(text: str) -> bool:
    """True when the text carries a known prompt-injection phrase (a flag for people, never a decision input)."""
    return bool(_INJECTION_RE.search(text))


def extract(text: str, injection: bool | None = None) -> Fields:
    """Typed fields of a redacted document text.

    Args:
        text: the redacted text.
        injection: the text's :func:`injection_flag` when the caller already has it (the pipeline computes it
            right after redaction), so the pattern is not run over the text a second time.
    """
    amount, currency = _pick_total(text, _amounts(text))
    return Fields(
        amount=amount,
        currency=currency,
        dates=_dates(text)[:8],
        parties=_parties(text),
        references=list(dict.fromkeys(_REF_RE.findall(text)))[:8],
        injection=injection_flag(text) if injection is None else injection,
    )
