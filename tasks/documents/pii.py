"""Validated finders for structured personal data: they find the value, not the longest run of characters.

Each finder maps a (normalized) text to the ``(start, end)`` spans of the values it found. Card numbers and
IBANs are found token-aware: a run of digit groups, or of alphanumeric tokens after a country code, is a set of
candidate spans, and only a span that passes its check is reported, so the words around a value ("BIC
COBADEFFXXX", "EUR 500", "12/25", "ref 12") are never consumed and never hide it. Checks come from
python-stdnum: ``stdnum.luhn`` for cards; ``stdnum.iban`` (ISO 13616 mod-97, the SWIFT registry's length and
BBAN format per country, national checks) for IBANs; ``stdnum.us.ssn`` for US social security numbers. Phone
numbers are checked against Google's libphonenumber (``phonenumbers``): numbering-plan lengths for +CC numbers,
assigned ranges for national ones (``phones``). E-mail addresses skip message ids (``_message_id``).

``normalize`` runs first: NFKC (full-width ``＠`` and digits become ASCII) and Unicode format characters
(category Cf: zero-width spaces and joiners, bidi marks, soft hyphens) removed, so they cannot split a value.
"""

from __future__ import annotations

import functools
import re
import string
import unicodedata
from collections.abc import Iterator

import phonenumbers
from stdnum import iban as _iban
from stdnum import luhn as _luhn
from stdnum import numdb
from stdnum.us import ssn as _ssn

Span = tuple[int, int]

# Between two groups of a printed number: a dot or dash (spaces around it allowed), one or two spaces, or a
# line break (a value wrapped at the end of a line).
_SEP = r"(?:[ \t]*[.\-][ \t]*|[ \t]{1,2}|[ \t]*\r?\n[ \t]*)"


def normalize(text: str) -> str:
    """NFKC-normalize ``text`` and drop Unicode format characters (category Cf, e.g. zero-width space)."""
    if text.isascii():
        return text
    drop = {ord(c): None for c in set(text) if unicodedata.category(c) == "Cf"}
    if drop:
        text = text.translate(drop)
    return text if unicodedata.is_normalized("NFKC", text) else unicodedata.normalize("NFKC", text)


# --- card numbers -------------------------------------------------------------------------------------------

# Patterns start with a plain character class where they can: the regex engine then skips ahead quickly.
_DIGIT_RUN = re.compile(r"\d(?<![\d.,]\d)[\d \t.\r\n-]{11,}\d")
_CARD_RUN = re.compile(rf"(?<![\d.,])\d+(?:{_SEP}\d+)*")
_GROUP = re.compile(r"\d+")


# How card numbers are printed in groups (a compact number of 13-19 digits is always a candidate).
_LAYOUTS = frozenset({(4, 4, 4, 1), (4, 4, 4, 2), (4, 4, 4, 3), (4, 4, 4, 4), (4, 4, 4, 4, 3), (4, 6, 5), (4, 6, 4)})
# Issuer prefixes of the card networks (UATP 1; Amex, Diners, JCB 3; Visa 4; Mastercard, Maestro 5 and 2221-2720;
# Mir 2200-2204; Discover, UnionPay, Maestro 6; UnionPay, RuPay 81-82). Others still count, but rank lower.
_ISSUER = re.compile(r"[13456]|2(?:2[2-9]|[3-6]|7[0-2]|20[0-4])|8[12]")


def _card_candidates(text: str, groups: list[Span], whole: bool) -> list[tuple[tuple[bool, bool, int], int, int]]:
    """((printed like a card, known issuer, digits), first, last) of every Luhn-valid run of 13-19 digits.

    The whole run may also be cut into other regular groups when ``whole`` (``41 11 11 11 ...``: a number
    written as one unit); a part of a run must be grouped as cards are printed, so that numbers beside a card
    cannot lend it digits, and columns of figures (``2700463 340010017 5``) are not read as one number.
    """
    out = []
    for i in range(len(groups)):
        total = 0
        for j in range(i, len(groups)):
            total += groups[j][1] - groups[j][0]
            if total > 19:
                break
            full = whole and i == 0 and j == len(groups) - 1
            if total < 13 or (j - i > 4 and not full):  # no printed layout has more than five groups
                continue
            lengths = tuple(b - a for a, b in groups[i : j + 1])
            printed = len(lengths) == 1 or lengths in _LAYOUTS
            # equal groups (41 11 11 ...), or groups of four some of which were joined (41111111 1111 1111)
            regular = all(n == lengths[0] for n in lengths[:-1]) and lengths[-1] <= lengths[0]
            regular = regular or (all(n % 4 == 0 for n in lengths[:-1]) and lengths[-1] <= 4)
            if not (printed or (full and regular)):
                continue
            digits = "".join(text[a:b] for a, b in groups[i : j + 1])
            if digits[0] != "0" and _luhn.is_valid(digits):
                out.append(((printed, bool(_ISSUER.match(digits)), total), i, j))
    return out


def _pick_cards(found: list[tuple[tuple[bool, bool, int], int, int]]) -> list[tuple[int, int]]:
    """Non-overlapping (first, last) groups: printed like a card first, then a known issuer, longest, leftmost.

    A candidate as good as a chosen one that overlaps it is merged into it: when ``4000 4111 1111 1111 1111``
    holds two valid 16-digit Visa-like spans, which one is the card is unknown, and both are redacted.
    """
    chosen: list[list[int]] = []  # [first, last] per card
    owner: dict[int, int] = {}  # group index -> index into chosen
    keys: list[tuple[bool, bool, int]] = []
    for key, i, j in sorted(found, key=lambda f: (f[0], -f[1]), reverse=True):
        taken = {owner[g] for g in range(i, j + 1) if g in owner}
        if not taken:
            chosen.append([i, j])
            keys.append(key)
            owner.update(dict.fromkeys(range(i, j + 1), len(chosen) - 1))
        elif len(taken) == 1 and keys[(c := taken.pop())] == key:
            chosen[c] = [min(chosen[c][0], i), max(chosen[c][1], j)]
            owner.update(dict.fromkeys(range(i, j + 1), c))
    return [(i, j) for i, j in chosen]


def cards(text: str) -> Iterator[Span]:
    """Card numbers: 13-19 digits, Luhn-valid, not starting with 0; spaces, dashes, dots or a line break inside."""
    for m in (c for r in _DIGIT_RUN.finditer(text) for c in _CARD_RUN.finditer(text, r.start(), r.end())):
        if m.end() - m.start() < 13:
            continue
        groups = [(m.start() + g.start(), m.start() + g.end()) for g in _GROUP.finditer(m.group())]
        # any equal grouping of the whole run only with the separators of a number written as one unit
        whole = "." not in m.group() and "\n" not in m.group()
        for i, j in sorted(_pick_cards(_card_candidates(text, groups, whole))):
            yield groups[i][0], groups[j][1]


# --- IBANs ----------------------------------------------------------------------------------------------------

# The two check digits after a country code (digits are rarer than letters: the engine skips to them).
_IBAN_CHECK = re.compile(r"\d(?:(?<=(?<![A-Za-z0-9])[A-Za-z]{2}\d)|(?<=(?<![A-Za-z0-9])[A-Za-z]{2}[ \t]\d))\d")
_IBAN_RUN = re.compile(rf"[A-Za-z0-9]+(?:{_SEP}[A-Za-z0-9]+){{0,40}}")


@functools.cache
def iban_lengths() -> dict[str, int]:
    """IBAN length per country code, from python-stdnum's copy of the SWIFT IBAN registry."""
    db = numdb.get("iban")
    out = {}
    for cc in (a + b for a in string.ascii_uppercase for b in string.ascii_uppercase):
        bban = db.info(cc)[0][1].get("bban")
        if bban:
            out[cc] = 4 + sum(int(n) for n in re.findall(r"(\d+)!", bban))
    return out


def _iban_end(text: str, start: int, stop: int, length: int) -> int | None:
    """End of the ``length``-th alphanumeric character from ``start``, if a value can end there."""
    count = 0
    for k in range(start, stop):
        if text[k].isalnum():
            count += 1
            if count == length:
                after = text[k + 1] if k + 1 < stop else " "
                # the value must end at a token end, or where letters turn into digits or back
                return k + 1 if not after.isalnum() or after.isdigit() != text[k].isdigit() else None
    return None


def ibans(text: str) -> Iterator[Span]:
    """IBANs in any case, compact or printed in groups, followed by anything (BIC, amount, date)."""
    lengths = iban_lengths()
    done = 0
    for m in _IBAN_CHECK.finditer(text):
        start = m.start() - (2 if text[m.start() - 1].isalpha() else 3)
        length = lengths.get(text[start : start + 2].upper())
        if length is None or start < done:
            continue
        run = _IBAN_RUN.match(text, start, start + 3 * length)  # room for a separator after every character
        end = _iban_end(text, start, run.end() if run else m.end(), length)
        if end is not None and _iban.is_valid("".join(c for c in text[start:end] if c.isalnum()).upper()):
            done = end
            yield start, end


# --- US social security numbers -----------------------------------------------------------------------------

_SSN_RE = re.compile(r"\d(?<!\w\d)\d{2}[- ]\d{2}[- ]\d{4}\b")
# A bare or dotted nine-digit number counts only next to an SSN label: after it (up to three words in between)
# or right before it.
_SSN_LABEL = re.compile(r"[sS](?<![A-Za-z][sS])(?i:s(?:n|[ \t]?\#|[ \t]?no\b\.?)|ocial[ \t]+security\b)")
_SSN_VALUE = r"\d{3}(?P<sep>[ .-]?)\d{2}(?P=sep)\d{4}"
_SSN_AFTER = re.compile(
    rf"(?i)(?:[^\w\n]{{0,4}}[a-z#.]{{1,12}}){{0,3}}?[^\w\n]{{0,4}}(?<![\w-])(?P<v>{_SSN_VALUE})(?![\w-])"
)
_SSN_BEFORE = re.compile(rf"(?<![\w-])(?P<v>{_SSN_VALUE})[^\w\n]{{0,4}}\Z")


def ssns(text: str) -> Iterator[Span]:
    """US SSNs: ``123-45-6789`` or ``123 45 6789`` anywhere; bare or dotted nine digits next to an SSN label."""
    seen = {m.span() for m in _SSN_RE.finditer(text)}
    for label in _SSN_LABEL.finditer(text):
        after = _SSN_AFTER.match(text, label.end(), label.end() + 60)
        before = _SSN_BEFORE.search(text, max(0, label.start() - 16), label.start())
        seen.update(m.span("v") for m in (after, before) if m)
    for start, end in sorted(seen):
        if _ssn.is_valid(re.sub(r"\D", "", text[start:end])):
            yield start, end


# --- e-mail addresses -----------------------------------------------------------------------------------------

# Found from the "at" outwards (scanning every word for a local part was the slowest pattern of all): the
# domain forwards with one pattern, the local part backwards with its mirror image on the reversed text.
_LOCAL = r"[\w!#$%&'*+/=?^`|~-]+"  # \w: internationalized addresses (RFC 6531) too
_RIGHT = re.compile(
    r"(?i)(?P<at>@|[(\[{<]\s*at\s*[)\]}>]|&\#0*64;|&\#x0*40;|at(?=[ \t]))\s*"
    r"(?P<domain>(?:[^\W_](?:[\w-]*[^\W_])?(?:\s*[(\[{<]\s*dot\s*[)\]}>]\s*|\.|[ \t]+dot[ \t]+))+"
    r"(?P<tld>[^\W\d_]{2,24}))\b(?!\s*(?:@|[(\[{<]\s*at\s*[)\]}>]))"  # "us at jane.doe@x.com": the @ wins
)
_LEFT_REVERSED = re.compile(
    rf"(?i)(?P<ws>\s*)(?P<local>{_LOCAL}(?:(?:\s*[)\]}}>]\s*tod\s*[(\[{{<]\s*|\.|[ \t]+tod[ \t]+){_LOCAL})*)"
)
_HINT = re.compile(r"[@&(\[{<aA](?<![^ \t][aA])(?<![aA](?![tT][ \t]))")
_BEFORE_LOCAL = re.compile(r"[\w.+-]")
# "name at example.com" (the bare word) is an e-mail only when the name is not an ordinary word and the
# top-level domain is a common one: "visit us at www.example.com" or "Jonas at Contoso.He" are not addresses.
_PLAIN_WORDS = frozenset(
    "a an and are arrived as at available based be been by call contact contacts email else find found from here"
    " i in is it located look me meet mail more online or our reach see shop sign still them there they this to"
    " us was we were write you your".split()
)
_TLDS = frozenset(
    "com org net edu gov mil int info biz io co ai app dev me uk de fr nl be ch at es it pt ie eu us ca au nz"
    " se no dk fi pl cz sk hu ro bg gr tr ru ua jp cn in br mx ar za sg hk kr tw il ae lu li is ee lv lt".split()
)


def _email_at(text: str, at: int) -> Span | None:
    """The address around a possible "at" sign starting at index ``at``, if there is one."""
    right = _RIGHT.match(text, at)
    if right is None:
        return None
    left = _LEFT_REVERSED.match(text[max(0, at - 256) : at][::-1])
    if left is None:
        return None
    start = at - left.end()
    if start > 0 and _BEFORE_LOCAL.match(text, start - 1):
        return None
    if right.group("at").lower() == "at":  # the bare word: spaces around it, an unusual name, a common TLD
        local, domain = left.group("local")[::-1].lower(), right.group("domain").lower()
        if not left.group("ws") or "\n" in left.group("ws") or local in _PLAIN_WORDS or domain.startswith("www"):
            return None
        if right.group("tld").lower() not in _TLDS:
            return None
    return start, right.end()


# Header fields that hold only message identifiers (RFC 5322 3.6.4, RFC 2045 7, RFC 5322 3.6.6), at the start of
# a line; a folded field goes on in lines that start with a space or a tab.
_ID_FIELD = re.compile(r"(?i:(?:resent-)?message-id|content-id|in-reply-to|references)[ \t]*:")


def _message_id(text: str, start: int, end: int) -> bool:
    """True for an id like ``<20592.1022586929.1@example.com>`` in a Message-ID, Content-ID, In-Reply-To or
    References field: inside angle brackets, with a local part of digits and punctuation only (the counters,
    timestamps and process ids mailers generate), so that no name or word, and no address written anywhere else
    (From, To, Cc, a signature, the body), is ever taken for an id."""
    if text[start - 1 : start] != "<" or text[end : end + 1] != ">":
        return False
    local = text[start : text.index("@", start, end)] if "@" in text[start:end] else ""
    if not local or any(c.isalpha() or c.isspace() for c in local):
        return False
    line = text.rfind("\n", 0, start) + 1
    while line > 0 and text[line : line + 1] in {" ", "\t"}:  # a folded field: back to its first line
        line = text.rfind("\n", 0, line - 1) + 1
    return _ID_FIELD.match(text, line) is not None


def emails(text: str) -> Iterator[Span]:
    """E-mail addresses, also written ``name (at) domain [dot] tld``, ``name at domain dot tld`` or ``&#64;``.

    Message identifiers (``_message_id``) are address-shaped but name no one, and are left alone.
    """
    done = 0
    for hint in _HINT.finditer(text):
        if hint.start() < done:
            continue
        found = _email_at(text, hint.start())
        if found is not None and found[0] >= done:
            done = found[1]
            if not _message_id(text, *found):
                yield found


# --- phone numbers --------------------------------------------------------------------------------------------

# Candidates: an area code with its leading 0, a slash and the subscriber's number (0423/972429, 089 / 1234567);
# or an optional +CC / 00CC prefix, an optional (area code), then two to six groups of digits. (The lookahead
# for the first character first makes the scan faster than the lookbehind alone.)
_PHONE_RE = re.compile(
    r"(?=[\d+(])(?<![\w+/-])(?:0\d{1,5}[ \t]?/[ \t]?\d{3,10}"
    r"|(?:(?:\+|00)\d{1,3}[\s.-]?)?(?:\(\d{1,5}\)[\s.-]?)?\d{1,5}(?:[\s.-]?\d{2,5}){1,5})(?![\w/-])"
)
_DIGITS = re.compile(r"\d+")
_NON_DIGITS = re.compile(r"\D+")
_DATE_LIKE = re.compile(r"(?:\d{4}[-./]\d{1,2}[-./]\d{1,2}|\d{1,2}[-./]\d{1,2}[-./]\d{2,4})\Z")
# Numbers shaped like a phone number that are not: a timestamp (2004-06-02 17:00), a US ZIP+4 code, an IPv4
# address, figures on two lines, a code followed by an amount (313000001 179.48).
_NOT_PHONE = re.compile(r"\d{4}-\d{2}-\d{2}\b|\d{5}-\d{4}\Z|\d{1,3}(?:\.\d{1,3}){3}\Z|.*\n|.*\s.*\.\d{2}\Z")
# A phone label right before the number (English, French, German, Italian, Spanish, Dutch), e.g. "Tel.:",
# "Mobile:", "Fax", "Téléphone :", "risponditore telefonico", "T." / "F." (capital letter and a dot or colon).
_PHONE_LABEL = re.compile(
    r"(?:(?<![^\W\d_])(?i:t[eé]l(?:[eé](?:phone|fon[eo]?|fonico|foon|copieur))?|phone|ph|fax|mobile?|mob"
    r"|cell(?:ulare|phone)?|handy|portable|m[oó]vil|call|rufnummer)[ \t]*\.?"
    r"|(?<![\w.])[TFMP][.:])[ \t]*(?:\([^()\n]{0,20}\)[ \t]*)?[:=-]?[ \t]*\n?[ \t]*\Z"
)
# Regions whose national formats count without a label, written with their leading 0 (a trunk prefix, or part
# of an Italian fixed-line number): libphonenumber's is_valid_number, the number lies in a range the country's
# numbering plan assigns. Without the 0, nine or ten digits are as often a code or a figure as a phone number (an
# Italian mobile number is any 3xx xxxxxxx), so they count only after a label. North American numbers count in
# their printed shape (``_north_american``), so that unassigned area codes are not missed.
PHONE_REGIONS = ("GB", "IE", "DE", "AT", "CH", "FR", "BE", "NL", "IT")
# Where a label may end: a letter, or the dot, colon, bracket, equals sign or dash after it.
_LABEL_END = frozenset(".:)=-")


def _number(country_code: int, national: str) -> phonenumbers.PhoneNumber:
    """libphonenumber's number for a country code and the national digits, leading zeros kept (Italy)."""
    zeros = len(national) - len(national.lstrip("0"))
    if not zeros:
        return phonenumbers.PhoneNumber(country_code=country_code, national_number=int(national))
    return phonenumbers.PhoneNumber(
        country_code=country_code,
        national_number=int(national),
        italian_leading_zero=True,
        number_of_leading_zeros=zeros,
    )


@functools.lru_cache(maxsize=4096)
def _possible_international(digits: str) -> bool:
    """A number written with +CC (or 00CC) that fits its country's numbering plan in length.

    The country code is the prefix of ``digits`` that libphonenumber knows (country codes are prefix-free); the
    national part is tried as written and, as ``phonenumbers.parse`` does, without the country's trunk prefix
    (``+44 (0)20 7946 0321``). Building the number from its parts costs a tenth of parsing the text.
    """
    codes = phonenumbers.COUNTRY_CODE_TO_REGION_CODE
    size = next((n for n in (1, 2, 3) if digits[:1] != "0" and int(digits[:n]) in codes), 0)
    national = digits[size:]
    if not size or not national.strip("0"):
        return False
    code = int(digits[:size])
    meta = phonenumbers.PhoneMetadata.metadata_for_region_or_calling_code(code, codes[code][0])
    trunk = (meta.national_prefix or "") if meta is not None else ""
    tries = [national] + ([national[len(trunk) :]] if trunk and national.startswith(trunk) else [])
    possible = phonenumbers.ValidationResult.IS_POSSIBLE
    return any(phonenumbers.is_possible_number_with_reason(_number(code, n)) == possible for n in tries if n.strip("0"))


@functools.lru_cache(maxsize=4096)
def _valid_national(digits: str) -> bool:
    """A number written with its leading 0 that a numbering plan of ``PHONE_REGIONS`` assigns."""
    for region in PHONE_REGIONS:
        # the 0 is part of an Italian fixed-line number, elsewhere the trunk prefix
        number = _number(phonenumbers.country_code_for_region(region), digits if region == "IT" else digits[1:])
        if phonenumbers.is_valid_number_for_region(number, region):
            return True
    return False


def _north_american(lengths: list[int], digits: str) -> bool:
    """``(201) 555-0123``, ``201-555-0123``, ``201.555.0123``, ``1-800-661-2638``: 3-3-4 digits, NANP rules."""
    if lengths[:1] == [1] and digits[0] == "1":
        lengths, digits = lengths[1:], digits[1:]
    return lengths == [3, 3, 4] and digits[0] in "23456789" and digits[3] in "23456789"


def _labelled(text: str, start: int) -> bool:
    """A phone label (``_PHONE_LABEL``) ends right before ``start``."""
    before = text[max(0, start - 40) : start].rstrip()
    if not before or not (before[-1].isalpha() or before[-1] in _LABEL_END):
        return False
    return _PHONE_LABEL.search(before) is not None


def _phone_at(text: str, start: int, end: int, lengths: list[int]) -> bool:
    """Whether ``text[start:end]``, digit groups of ``lengths``, is a phone number (see ``phones``)."""
    value = text[start:end]
    if _DATE_LIKE.match(value) or _NOT_PHONE.match(value):
        return False
    # a part of a larger figure: 347.256.998,80 or 83,190,5562
    if (text[end : end + 1] in {".", ","} and text[end + 1 : end + 2].isdigit()) or (
        start >= 2 and text[start - 1] in ".," and text[start - 2].isdigit()
    ):
        return False
    digits = _NON_DIGITS.sub("", value)
    if value.startswith(("+", "00")):
        if _possible_international(digits[2:] if value[0] == "0" else digits):
            return True
    elif len(lengths) > 1 and len(digits) >= 9:
        if _north_american(lengths, digits) or (digits[0] == "0" != digits[1] and _valid_national(digits)):
            return True
    return _labelled(text, start) and (len(lengths) > 1 or value[0] == "+")


def phones(text: str) -> Iterator[Span]:
    """Phone numbers of 7-15 digits: international, after a label, or national; never dates, codes or figures.

    Written with +CC or 00CC, the number must be possible for its country (libphonenumber: its numbering plan's
    lengths); right after a phone label (``Tel.``, ``Fax``, ``Mobile:``, ``Téléphone :``), any grouped number
    counts; otherwise a national number counts when it has a North American shape or, with its leading 0, is
    valid in one of ``PHONE_REGIONS``. A run of digit groups is tried whole, then without its leading groups
    (``ref 12 645.628.2144``: the number is the last three groups), so that a figure in front is kept.
    """
    for m in _PHONE_RE.finditer(text):
        value = m.group()
        if len(value) < 7 or len(_NON_DIGITS.sub("", value)) < 7:  # most candidates: amounts, dates, references
            continue
        groups = [(g.start(), g.end() - g.start()) for g in _DIGITS.finditer(value)]
        for i, (start, _) in enumerate(groups):
            if not i:
                start = 0  # the whole run, with its + or bracket
            else:  # split only where a space separates groups; an area code keeps its bracket
                start -= 1 if value[start - 1] == "(" else 0
                if not value[start - 1].isspace():
                    continue
            lengths = [n for _, n in groups[i:]]
            if 7 <= sum(lengths) <= 15 and _phone_at(text, m.start() + start, m.end(), lengths):
                yield m.start() + start, m.end()
                break
