"""Text that someone else chose, made safe to show a person: every control character and invisible direction mark
as its escape."""

from __future__ import annotations

import re

_UNSEEN = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]")


def visible(text: str) -> str:
    """``text`` with every control character and invisible direction mark shown as its escape (``\\x1b``,
    ``\\u202e``), for showing to a person: a terminal, a reviewer's page.

    Records, requests and audit lines hold text that someone else chose (a vendor name in a document, a request's
    summary, an entry in a tampered log). Printed raw, an escape sequence in it redraws the approver's screen (clears
    it, moves the cursor up over a line, writes a link) and a right-to-left override reverses what follows it: what
    the approver or the auditor reads would not be what the record holds. Escaped, it reads as what it is. A newline
    is escaped too: one record's text is one line, never a second line of output.
    """
    return _UNSEEN.sub(_escape_one, text)


def bounded(text: str, limit: int = 256) -> str:
    """``text`` as a record keeps it, in at most ``limit`` characters: whole when it fits, else its start and the
    length and digest of the whole. Bounding a bounded text again changes nothing.

    What a caller chose (a claimed principal, a task name, a row's ids) is kept in the append-only trail: a 3 MB
    principal made each anonymous connector call a 4 MB record (review of 2026-12-06), and a row's 4 MiB ids made
    each refused row a 4 MiB record (review R31b): a disk filled by whoever reaches the port or launches a task.
    """
    if len(text) <= limit:
        return text
    import hashlib

    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    tail = f"... ({len(text)} characters, sha256:{digest})"
    return text[: max(limit - len(tail), 0)] + tail


def _escape_one(m: re.Match[str]) -> str:
    code = ord(m.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


__all__ = ["bounded", "visible"]
