"""Detect and redact personal data and secrets before text reaches a model, a log or an output.

Detectors run in a fixed order (secrets, then structured identifiers with checksums, then e-mail and
phone numbers) and each match is replaced by a typed placeholder such as ``[EMAIL]``, so that later
detectors never see (or double-count) an earlier match. Checksums keep false positives down:
IBANs pass ISO 13616 mod-97, card numbers pass Luhn, US SSNs skip the never-issued ranges.

Only counts per kind leave this module; the matched values never do.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

PERSONAL_KINDS = frozenset({"EMAIL", "PHONE", "IBAN", "CARD", "SSN", "NINO"})
SECRET_KINDS = frozenset({"SECRET"})

_SECRET_PATTERNS = [
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----",
    r"\bAKIA[0-9A-Z]{16}\b",  # AWS access key id
    r"\bgh[pousr]_[A-Za-z0-9]{36,}\b",  # GitHub tokens
    r"\bgithub_pat_[A-Za-z0-9_]{22,}\b",
    r"\bxox[abposr]-[A-Za-z0-9-]{10,}\b",  # Slack
    r"\bsk-(?:proj-|live-|test-)?[A-Za-z0-9_-]{20,}\b",  # OpenAI / Stripe style
    r"\b[rp]k_(?:live|test)_[A-Za-z0-9]{16,}\b",
    r"\bAIza[0-9A-Za-z_-]{35}\b",  # Google API key
    r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\b",  # JWT
    r"(?i:\bbearer\s+[A-Za-z0-9._~+/-]{16,}=*)",
    r"(?i:\b(?:api[_-]?key|secret|token|passwd|password|access[_-]?key)\b\s*[:=]\s*[\"']?[^\s\"']{6,})",
]
_SECRET_RE = re.compile("|".join(f"(?:{p})" for p in _SECRET_PATTERNS))
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
_IBAN_RE = re.compile(r"\b[A-Z]{2}\d{2}(?:[ -]?[A-Z0-9]){11,30}\b")
_CARD_RE = re.compile(r"(?<![\d.])\d(?:[ -]?\d){12,18}(?![\d])")
_SSN_RE = re.compile(r"\b(?!000|666|9\d\d)\d{3}[- ](?!00)\d{2}[- ](?!0000)\d{4}\b")
_NINO_RE = re.compile(r"\b(?!BG|GB|NK|KN|TN|NT|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b")
_EMAIL_RE = re.compile(
    r"(?i:(?<![\w.+-])[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"\s*(?:@|\(at\)|\[at\]|&#64;)\s*(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.|\(dot\)|\[dot\]))+[a-z]{2,24}\b)"
)
_PHONE_RE = re.compile(
    r"(?<![\w+/-])(?:(?:\+|00)\d{1,3}[\s.-]?)?(?:\(\d{1,5}\)[\s.-]?)?\d{1,5}(?:[\s.-]?\d{2,5}){1,5}(?![\w/-])"
)
_DATE_LIKE = re.compile(r"^(?:\d{4}[-./]\d{1,2}[-./]\d{1,2}|\d{1,2}[-./]\d{1,2}[-./]\d{2,4})$")


def _may_hold_secret(text: str) -> bool:
    """False only when ``_SECRET_RE`` cannot match ``text`` (no secret hint occurs in it)."""
    if any(h in text for h in _SECRET_HINTS):
        return True
    low = (text if text.isascii() else text.translate(_ASCII_FOLD)).lower()
    return any(h in low for h in _SECRET_HINTS_NOCASE)


def luhn_ok(digits: str) -> bool:
    """Luhn (mod 10) check of a digit string."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def iban_ok(candidate: str) -> bool:
    """ISO 13616 mod-97 check of an IBAN (spaces and dashes ignored)."""
    s = re.sub(r"[ -]", "", candidate).upper()
    if not 15 <= len(s) <= 34:
        return False
    moved = s[4:] + s[:4]
    return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1


def _card(m: re.Match[str]) -> bool:
    digits = re.sub(r"\D", "", m.group())
    return 13 <= len(digits) <= 19 and digits[0] != "0" and luhn_ok(digits)


def _phone(m: re.Match[str]) -> bool:
    text = m.group()
    digits = re.sub(r"\D", "", text)
    if _DATE_LIKE.match(text.strip()):
        return False
    has_plus = text.startswith(("+", "00"))
    has_sep = bool(re.search(r"[\s().-]", text))
    return (9 <= len(digits) <= 15 and (has_sep or has_plus)) or (has_plus and 7 <= len(digits) <= 15)


_DETECTORS: list[tuple[str, re.Pattern[str], Callable[[re.Match[str]], bool] | None]] = [
    ("SECRET", _SECRET_RE, None),
    ("IBAN", _IBAN_RE, lambda m: iban_ok(m.group())),
    ("CARD", _CARD_RE, _card),
    ("SSN", _SSN_RE, None),
    ("NINO", _NINO_RE, None),
    ("EMAIL", _EMAIL_RE, None),
    ("PHONE", _PHONE_RE, _phone),
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


def redact(text: str, kinds: frozenset[str] | None = None) -> Redaction:
    """Replace personal data and secrets in ``text`` with ``[KIND]`` placeholders.

    Args:
        text: Any text (already decoded).
        kinds: Restrict to these detector kinds (default: all).

    Returns:
        The redacted text and counts per kind.
    """
    counts: Counter[str] = Counter()
    for kind, pattern, check in _DETECTORS:
        if kinds is not None and kind not in kinds:
            continue
        if pattern is _SECRET_RE and not _may_hold_secret(text):
            continue

        def _sub(m: re.Match[str], kind: str = kind, check: Callable[[re.Match[str]], bool] | None = check) -> str:
            if check is not None and not check(m):
                return m.group()
            counts[kind] += 1
            return f"[{kind}]"

        text = pattern.sub(_sub, text)
    return Redaction(text=text, counts=dict(counts))


def find(text: str) -> list[tuple[str, str]]:
    """(kind, value) of every finding; for tests and recall measurement only, never for logging."""
    found: list[tuple[str, str]] = []
    for kind, pattern, check in _DETECTORS:
        for m in pattern.finditer(text):
            if check is None or check(m):
                found.append((kind, m.group()))
    return found
