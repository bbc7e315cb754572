"""Detect and redact personal data and secrets before text reaches a model, a log or an output.

The text is NFKC-normalized and stripped of Unicode format characters first (``pii.normalize``), so that
full-width or zero-width characters cannot hide a value. Detectors run in a fixed order (secrets, then
structured identifiers with checksums, then e-mail and phone numbers) and each finding is replaced by a typed
placeholder such as ``[EMAIL]``; later detectors never see (or double-count) an earlier finding. Checksums
from python-stdnum (IBAN mod-97 and country format, card Luhn, SSN ranges) and libphonenumber's numbering plans
(phones) keep false positives down, and the structured finders in ``pii`` look for the valid value inside a
longer run of characters.

Only counts per kind leave this module; the matched values never do.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from stdnum import iban as _iban
from stdnum import luhn as _luhn

from tasks.documents import pii
from tasks.documents.pii import Span

PERSONAL_KINDS = frozenset({"EMAIL", "PHONE", "IBAN", "CARD", "SSN", "NINO"})
SECRET_KINDS = frozenset({"SECRET"})

_SECRET_PATTERNS = [
    # a key's body stops at the next header: 160 KB of headers without an end took 9 s (each one scanned to the end)
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----(?:(?!-----BEGIN )[\s\S])*?-----END [A-Z ]*PRIVATE KEY-----",
    r"\bAKIA[0-9A-Z]{16}\b",  # AWS access key id
    r"\bgh[pousr]_[A-Za-z0-9]{36,}\b",  # GitHub tokens
    r"\bgithub_pat_[A-Za-z0-9_]{22,}\b",
    r"\bxox[abposr]-[A-Za-z0-9-]{10,}\b",  # Slack
    r"\bsk-(?:proj-|live-|test-)?[A-Za-z0-9_-]{20,}\b",  # OpenAI / Stripe style
    r"\b[rp]k_(?:live|test)_[A-Za-z0-9]{16,}\b",
    r"\bAIza[0-9A-Za-z_-]{35}\b",  # Google API key
    r"(?<![\w-])eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\b",  # JWT, one start a run
    r"(?i:\bbearer\s+[A-Za-z0-9._~+/-]{16,}=*)",
    r"(?i:\blogin\s+\S+\s+password\s+\S+)",  # .netrc
]
_SECRET_RE = re.compile("|".join(f"(?:{p})" for p in _SECRET_PATTERNS))
# A value assigned to a name holding a key word, the word alone or anywhere in the name (DB_PASSWORD, PGPASSWORD,
# AWS_SECRET_ACCESS_KEY, "client_secret": in JSON): `\b` before the word missed every name joining it with `_`, a
# word character; a lazy prefix before the word was quadratic (80,000 characters of "secret-" took 29 s) and a
# bounded one missed long names. So the whole name is taken once, possessively, and the word looked for inside it.
_ASSIGNED_RE = re.compile(r"(?<![\w-])([\w-]++)[\"']?\s*[:=]\s*[\"']?(?=[^\s\"']{6})")
"""A name and what assigns to it, up to a value of six characters or more (looked at, not taken: the search goes on
after the name, so ``user=bob;password=...`` is read name by name)."""
_VALUE_RE = re.compile(r"[^\s\"']+")
_KEY_WORD_RE = re.compile(r"(?i:api[_-]?key|secret|token|passwd|password|access[_-]?key)(?=[_-]|$)")
"""A key word ending a name or one of its parts (PGPASSWORD, SECRET_ACCESS_KEY), not a longer word (Secretary)."""
# Every match of _SECRET_RE contains one of these substrings: the case-sensitive patterns' fixed parts as written,
# the case-insensitive ones' lowercased. Most documents hold none of them, and ``in`` is far cheaper than running
# the eleven-way alternation at every position (which was about half of ``redact``'s time), so
# ``_may_hold_secret`` gates it: a text that fails it cannot match, one that passes runs the full pattern.
_SECRET_HINTS = (
    "-----BEGIN", "AKIA", "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", "xox", "sk-", "k_live_", "k_test_",
    "AIza", "eyJ",
)  # fmt: skip
_SECRET_HINTS_NOCASE = (
    "bearer", "apikey", "api_key", "api-key", "secret", "token", "passw", "accesskey", "access_key", "access-key",
)  # fmt: skip
# The only non-ASCII characters that re.IGNORECASE matches to an ASCII letter (checked over all of Unicode):
# U+0130 and U+0131 (i), U+017F (s), U+212A (k). Folded before lowercasing, so that the hint test stays exact.
_ASCII_FOLD = str.maketrans({"\u0130": "i", "\u0131": "i", "\u017f": "s", "\u212a": "k"})
_NINO_RE = re.compile(r"\b(?!BG|GB|NK|KN|TN|NT|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b")


def _may_hold_secret(text: str) -> bool:
    """False only when ``_SECRET_RE`` cannot match ``text`` (no secret hint occurs in it)."""
    if any(h in text for h in _SECRET_HINTS):
        return True
    low = (text if text.isascii() else text.translate(_ASCII_FOLD)).lower()
    return any(h in low for h in _SECRET_HINTS_NOCASE)


def luhn_ok(digits: str) -> bool:
    """Luhn (mod 10) check of a digit string (``stdnum.luhn``)."""
    return bool(_luhn.is_valid(digits))


def iban_ok(candidate: str) -> bool:
    """IBAN check (``stdnum.iban``: mod-97 and the country's registered length and format; separators ignored)."""
    return bool(_iban.is_valid(candidate))


def _secrets(text: str) -> Iterator[Span]:
    if not _may_hold_secret(text):  # looked up at call time: a test forces the gate open
        return
    found = [m.span() for m in _SECRET_RE.finditer(text)]
    pos = 0
    while m := _ASSIGNED_RE.search(text, pos):
        if _KEY_WORD_RE.search(m.group(1)):
            end = _VALUE_RE.match(text, m.end()).end()  # type: ignore[union-attr]  # six characters are there
            found.append((m.start(), end))
            pos = end
        else:
            pos = m.end(1)
    merged: list[Span] = []
    for a, b in sorted(found):  # the two patterns may overlap (token=eyJ...): one span each stretch
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    yield from merged


def _nino(text: str) -> Iterator[Span]:
    return (m.span() for m in _NINO_RE.finditer(text))


_DETECTORS: list[tuple[str, Callable[[str], Iterable[Span]]]] = [
    ("SECRET", _secrets),
    ("IBAN", pii.ibans),
    ("CARD", pii.cards),
    ("SSN", pii.ssns),
    ("NINO", _nino),
    ("EMAIL", pii.emails),
    ("PHONE", pii.phones),
]


@dataclass
class Redaction:
    """Redacted text plus the number of findings per kind (never the values)."""

    text: str
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def personal(self) -> bool:
        """True when personal data (not only secrets) was found."""
        return any(self.counts.get(k, 0) for k in PERSONAL_KINDS)

    @property
    def secrets(self) -> int:
        """Number of secrets found."""
        return sum(self.counts.get(k, 0) for k in SECRET_KINDS)


def spans(text: str, kinds: frozenset[str] | None = None) -> list[tuple[str, int, int]]:
    """(kind, start, end) of every finding in ``text`` (already normalized), sorted by start.

    Detectors run in order; each one sees the text with earlier findings blanked out (NUL characters of the
    same length, which no detector matches), so that no value is found twice.
    """
    found: list[tuple[str, int, int]] = []
    work = text
    for kind, finder in _DETECTORS:
        if kinds is not None and kind not in kinds:
            continue
        new = [(kind, a, b) for a, b in finder(work)]
        if new:
            found += new
            work = _blank(work, new)
    return sorted(found, key=lambda f: f[1])


def _blank(text: str, found: list[tuple[str, int, int]]) -> str:
    parts, pos = [], 0
    for _, a, b in sorted(found, key=lambda f: f[1]):
        parts += [text[pos:a], "\0" * (b - a)]
        pos = b
    return "".join(parts) + text[pos:]


def redact(text: str, kinds: frozenset[str] | None = None) -> Redaction:
    """Replace personal data and secrets in ``text`` with ``[KIND]`` placeholders.

    The text is NFKC-normalized and stripped of format characters (zero-width and the like) first, so the
    redacted text is the normalized one.

    Args:
        text: Any text (already decoded).
        kinds: Restrict to these detector kinds (default: all).

    Returns:
        The redacted text and counts per kind.
    """
    text = pii.normalize(text)
    found = spans(text, kinds)
    if not found:
        return Redaction(text=text)
    parts, pos = [], 0
    for kind, a, b in found:
        parts += [text[pos:a], f"[{kind}]"]
        pos = b
    parts.append(text[pos:])
    return Redaction(text="".join(parts), counts=dict(Counter(kind for kind, _, _ in found)))


def find(text: str) -> list[tuple[str, str]]:
    """(kind, value) of every finding; for tests and recall measurement only, never for logging."""
    text = pii.normalize(text)
    return [(kind, text[a:b]) for kind, a, b in spans(text)]
