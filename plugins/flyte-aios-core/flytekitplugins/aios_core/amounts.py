"""Amounts of money as people write them: read whole, with their grouping and decimal marks, or not at all.

Both document pipelines (flytekit's ``tasks/documents/extract.py`` and Flyte 2's ``workflows_flyte2/documents.py``)
read amounts here, so a payment is acted on at the amount its document states, or not acted on.
"""

from __future__ import annotations

import re
from decimal import Decimal

WRITTEN = r"\d+(?:(?:[.,']|[ \u00a0\u202f](?=\d{3}(?!\d)))\d+)*"
"""A number as written, whole: digits joined by single separators (a space, or a no-break or narrow no-break space,
only before a group of three digits), so that ``12.500,00`` is one number and never its first ``12``."""
_WRITTEN = re.compile(f"-?{WRITTEN}")
_SEP = re.compile(r"([.,' \u00a0\u202f])")


def read_amount(number: str) -> float | None:
    """The value of an amount as written (``12,500.00``, ``12.500,00``, ``12 500,00``, ``12'500.00``, ``12,50``), or
    None when it cannot be read one way only.

    The last ``.`` or ``,`` is the decimal mark unless three digits follow it (then it groups thousands, except after
    more than three leading digits: ``12500.000``); every other separator groups thousands, all the same character,
    after one to three leading digits, in groups of exactly three. ``12.500`` (twelve and a half in English, twelve
    thousand five hundred in German) and anything irregular (``1,23,456``, ``1.234,567.8``) are None: an amount that
    cannot be read is no amount, and a payment without one is not acted on (``missing_amount``). Before, the reader
    took the first digits it could: ``EUR 12.500,00`` was 12 EUR and ``EUR 1.234.567,89`` 1 EUR, acted on without the
    sign-off an amount over 10,000 needs.
    """
    parts = _SEP.split(number)
    groups, seps = parts[0::2], parts[1::2]
    if not seps:
        return _exact(number)
    last_sep, last = seps[-1], groups[-1]
    decimal = last_sep in ".," and (len(last) != 3 or (len(seps) == 1 and len(groups[0]) > 3))
    whole, grouping = (groups[:-1], seps[:-1]) if decimal else (groups, seps)
    if grouping:
        if len(set(grouping)) != 1 or (decimal and grouping[0] == last_sep):
            return None
        if not 1 <= len(whole[0]) <= 3 or any(len(g) != 3 for g in whole[1:]):
            return None
        if not decimal and seps == ["."]:
            return None  # 12.500: twelve and a half, or twelve thousand five hundred
    return _exact("".join(whole) + ("." + last if decimal else ""))


def _exact(digits: str) -> float | None:
    """The float of ``digits`` when it is exactly that number, else None: ``float`` made 10000.0000000000001 10000.0,
    under a sign-off over 10,000 (review of 2026-12-06 from 20:55 UTC); an amount is never rounded."""
    value = float(digits)
    return value if Decimal(repr(value)) == Decimal(digits) else None


def read_written(text: str) -> float | None:
    """:func:`read_amount` of ``text`` when it is one number as written (a leading minus allowed), else None."""
    text = text.strip()
    if not _WRITTEN.fullmatch(text):
        return None
    value = read_amount(text.removeprefix("-"))
    return None if value is None else -value if text.startswith("-") else value


__all__ = ["WRITTEN", "read_amount", "read_written"]
