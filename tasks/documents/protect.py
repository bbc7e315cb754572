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

import base64
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from stdnum import iban as _iban
from stdnum import luhn as _luhn

from flytekitplugins.aios_core.redact import FLAG_DEPTH, SHELL_FLAG, TOKEN_HINTS, TOKEN_SHAPES, shell_value_end
from tasks.documents import pii
from tasks.documents.pii import Span

PERSONAL_KINDS = frozenset({"EMAIL", "PHONE", "IBAN", "CARD", "SSN", "NINO"})
SECRET_KINDS = frozenset({"SECRET"})

_SECRET_PATTERNS = [
    # a key's body stops at the next header: 160 KB of headers without an end took 9 s (each one scanned to the end)
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----(?:(?!-----BEGIN )[\s\S])*?-----END [A-Z ]*PRIVATE KEY-----",
    *TOKEN_SHAPES,  # a JWT, GitHub, Slack, OpenAI, Stripe and Google keys, an AWS key id: the log masking's own list
    r"(?i:\bbearer\s+[A-Za-z0-9._~+/-]{16,}=*)",
    r"(?i:\blogin\s+\S+\s+password\s+\S+)",  # .netrc
]
_SECRET_RE = re.compile("|".join(f"(?:{p})" for p in _SECRET_PATTERNS))
# A value assigned to a name holding a key word, the word alone or anywhere in the name (DB_PASSWORD, PGPASSWORD,
# AWS_SECRET_ACCESS_KEY, "client_secret": in JSON): `\b` before the word missed every name joining it with `_`, a
# word character; a lazy prefix before the word was quadratic (80,000 characters of "secret-" took 29 s) and a
# bounded one missed long names. So the whole name is taken once, possessively, and the word looked for inside it.
_ASSIGNED_RE = re.compile(r"(?<![\w-])([\w-]++)[\"']?\s*+(=>|:=|[:=])\s*+(?=\S)")
"""A name and what assigns to it, up to its value (looked at, not taken: the search goes on after a name that is not
a credential's, so ``user=bob;password=...`` is read name by name); ``=>`` (PHP, Ruby) and ``:=`` (make) too."""
_VALUE_RE = re.compile(
    r"(?:[bBrRuUfF]{1,2}+|\$)?+(?:\"((?:[^\"\\\n]|\\.)++)\"|'((?:[^'\\\n]|\\.)++)')|[\"']?+([^\s\"']++)"
)
"""A value: quoted (blanks and all, to the closing quote on its line; a string literal's prefix too, ``b"..."``,
``r'...'``, ``$'...'``) or up to a blank or a quote."""
_ALNUM_RE = re.compile(r"[^\W_]")
_KEY_WORDS = (
    r"api[_-]?key|secret|token|passw(?:or)?d|passwort|access[_-]?key|client-key-data"  # a kubeconfig user's key
)
_KEY_WORD_RE = re.compile(rf"(?i:{_KEY_WORDS})(?=[_-]|$)")
"""A key word ending a name or one of its parts (PGPASSWORD, SECRET_ACCESS_KEY), not a longer word (Secretary)."""
_CREDENTIAL_NAME_RE = re.compile(rf"(?i:{_KEY_WORDS}|(?<=[_-])(?:pass|pwd)|(?<=[a-z0-9])(?-i:Pass|Pwd))\Z")
"""A name that is a credential's whatever its value (PGPASSWORD, SMTP_PASS, DB_PWD, smtpPass, client-key-data): any
value is taken, ``PGPASSWORD=pw`` too. A key word inside a longer name (``PASSWORD_RESET_COUNT``) still needs six
characters. A bare ``pass`` or ``pwd`` is not one (``PWD`` is the shell's folder), nor one joined by ``-`` before a
colon (``Ski-pass: 45.00``, ``Boarding-pass: 12A``; ``mysql-pwd=...`` is one), nor a word ending in pass
(:data:`_WORD_PASS_RE`). Written in capitals without a separator, only a service's name before it makes it one
(:data:`_CAPS_PASS_RE`): ``SKIPASS``, ``SEASONPASS``, ``MYPASS`` name tickets."""
_CAPS_SERVICE_NAMES = (
    r"(?:SMTP|DB|MYSQL|PG|POSTGRES|LDAP|S?FTP|MAIL|IMAP|POP3?|ADMIN|ROOT|REDIS|SQL|MSSQL|ORACLE|MONGO"
    r"|AMQP|RABBITMQ|VNC|SSH|WIFI|WLAN|PROXY|SVC|BIND|KEYSTORE|TRUSTSTORE)(?:PASS|PWD)"
)
_CAPS_PASS_RE = re.compile(rf"(?<![A-Za-z0-9]){_CAPS_SERVICE_NAMES}\Z")
"""``SMTPPASS``, ``DBPWD``, ``MYSQLPASS``: a service's password in capitals, in any assignment or label form."""
_WORD_PASS_RE = re.compile(r"(?i:\A(?:by|com|encom|sur|tres|over|under|im)pass)\Z")
"""English words ending in pass, as a whole name (``ByPass``, ``COMPASS``): no credential's (``smtp_byPass`` is)."""
_PASSWORD_WORD_RE = re.compile(r"(?i:passw(?:or)?d|passwort)\Z")
"""A name ending in a password's own word (not a token's or a key's, not ``password_reset_timeout``): after it
four digits ending the line are a PIN."""
_TOKEN_NAME_RE = re.compile(r"(?i:token)\Z")
"""A token's name: tokens are priced (``{"token": "$0.50"}``); a password's or a key's value shaped like a price is
still a secret (``password=$1234.56``)."""
_LABEL_PASS_RE = re.compile(r"(?i:-(?:pass|pwd))\Z")
_CAMEL_PASS_RE = re.compile(r"(?<=[a-z0-9])(?:Pass|Pwd)\Z")  # PayPass: a label too; smtpPass=... is assigned
_AMOUNT_RE = re.compile(
    r"[(\[]?+[+\-\u2212]?+(?:[$\u20ac\u00a3\u00a5\u20b9]|[A-Z]{3}\s?+)?+[+\-\u2212]?+\d[\d.,'\u2019]*+"
    r"(?:[kKmM%$\u20ac\u00a3\u00a5\u20b9]|\s?+[A-Z]{3})?+(?:/[A-Za-z]++)?+[)\].,;:!?]*+"
)
"""A count or a price as written: a sign, a bracket, a currency sign or code, separators, ``k``, ``%``, ``/month``."""
_CURRENCY = (
    r"(?:[$\u20ac\u00a3\u00a5\u20b9]|(?:EUR|USD|GBP|CHF|JPY|CNY|INR|AUD|CAD|NZD|SEK|NOK|DKK|PLN|CZK|HUF|RON|BGN|TRY"
    r"|ZAR|BRL|MXN|SGD|HKD|KRW)(?![A-Za-z]))"
)
_MONEY = r"(?:\d{1,3}(?:[,.'\u2019 ]\d{3})+|\d+)[.,]\d\d"
_PRICE_RE = re.compile(
    rf"[(\[]?[+\-\u2212]?(?:{_CURRENCY}[ \t]?[+\-\u2212]?{_MONEY}|{_MONEY}[ \t]?{_CURRENCY})[)\]]?[.,;:!?]*"
)
"""A price whatever it is assigned to (``{"token": "$0.50"}``, ``fee = "0,50 \u20ac"``): a currency sign or a code
from the list beside a number with two decimals. Three capitals alone are no currency (``password=ABC12345``)."""
_ENDS_LINE_RE = re.compile(r"[ \t]*+(?:\r?\n|<|$)")
_AUTH_NAME_RE = re.compile(r"(?i:(?<![^_-])auth)\Z")
_BASIC_AUTH_RE = re.compile(r"(?:[A-Za-z0-9+/]{4})++(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?+(?![^\s\"',;}])")
"""Docker's ``config.json`` ``"auth"``: base64 of ``user:password``, taken only when it decodes to one (a bare
``auth`` is too common a word for any value of it to be a secret)."""
_ELEMENT_RE = re.compile(r"<(?:[\w.-]++:)?+([\w.-]++)(?:\s[^<>]*+)?+>((?:<!\[CDATA\[[^\]<]*+\]\]>|[^<])++)</")
"""An XML element's text (``<password>x</password>``, ``<ns:apiKey>``): each try ends at the next ``<``."""
_BASIC_HEADER_RE = re.compile(
    r"(?i:\bauthorization[\"']?+[ \t]*+[:=][ \t]*+[\"']?+basic[ \t]++[\"']?+)([A-Za-z0-9+/]++=?+=?+)"
)
"""An HTTP ``Authorization: Basic`` header in a document's text (as written, or a JSON or Python header), taken when
its value decodes to ``user:password``."""
_SETTING_TAG_RE = re.compile(
    r"<[\w.:-]++(?=[^<]*?\b(?i:key|name|type)\s*+=)"
    r"((?:\s++[^\s\"'<>/=]++(?:\s*+=\s*+(?:\"[^\"]*+\"|'[^']*+'|[^\s\"'<>]++))?+)++)\s*+(/?+>)?+"
)
"""A tag whose attributes name a setting (``key=``, ``name=``, or an HTML ``type="password"`` input), its attributes
in any order, quoted or not, valueless ones too: .NET's ``<add key="DbPassword" value="..."/>`` (``value`` first,
another attribute between), Spring's ``<property name="password" value="..."/>``, ``<input type=password
name="password" value="..." required>``. Each try ends at its quotes' ends or at the next ``<``."""
_ATTRIBUTE_RE = re.compile(r"([^\s\"'<>/=]++)(?:\s*+=\s*+(?:\"([^\"]*+)\"|'([^']*+)'|([^\s\"'<>]++)))?+")
_SETTING_NAME_RE = re.compile(r"[\w.:\[\]-]{1,128}")
_VALUE_CHILD_RE = re.compile(r"\s*+<(?:[\w.-]++:)?+value(?:\s[^<>]*+)?+>(?:<!\[CDATA\[([^\]<]*+)\]\]>|([^<]++))")
"""Spring's ``<property name="password"><value>...</value></property>`` (typed, namespaced, or CDATA): the value as the
named tag's child."""
_TEXT_CHILD_RE = re.compile(r"([^<]++)</")
"""A ``key=`` tag's own text, as a Java properties file's XML gives it: ``<entry key="db.password">...</entry>``."""
_KEYED_PAIR_RE = re.compile(
    r"(?i:\b(?:key|name)\s*+=\s*+)([\"'])([\w.:-]{1,128}+)\1\s++(?i:value\s*+=\s*+)([\"'])((?:(?!\3)[^\n])++)\3"
)
"""A name and its value as adjacent attributes outside any tag the tag pattern reads (a log line, escaped markup)."""
_PLIST_RE = re.compile(r"<key>\s*+([^<]{1,128}+)</key>\s*+<(string|data)>([^<]++)</\2>")
"""A property list's key and its string or data (base64) value: ``<key>Password</key><string>...</string>``."""
_PROSE_RE = re.compile(
    r"(?i:\bpassw(?:or)?[dt][ \t]++(?:is|was|ist|lautet)\b[ \t]*+(:)?+[ \t]*+)"
    r"(?:[\"'\u201c\u2018]([^\"'\u201c\u2018\u201d\u2019\n]++)[\"'\u201d\u2019]|([^\s<>;=]++))"
)
"""``the password is hunter2``, ``password is: x``; without a colon or quotes the word must not read as prose. A
quote's text stops at any quote (an unclosed opening quote repeated made each try run to the line's end) and a word
at markup (``The password is required</Note><TaxTotal>190.00`` lost the total)."""
# A libpq passfile line, hostname:port:database:username:password (fields may be `*`, `\:` escapes a colon). The
# port is `*` or four or five digits and the host, database and user hold a non-digit, so times, dates
# (`Rechnung:2024:03:15:...`), number tuples and a ledger's `GL:4000:Revenue:EUR:95000.00` stay (a password is never
# an amount). At the start of a line the password runs to its end, blanks and all as libpq reads it, but not into a
# number after a blank, signed, bracketed or with a currency sign (an amount on the line stays: `Total €95,000.00`; a
# password with such a word after a blank is redacted up to it); elsewhere to a blank. A sixth field makes it no
# passfile line (a MAC or IPv6 address, a log line's fields). No other field crosses a blank, escaped or not, and
# the blanks of a password only at a line's start, so each try ends at the next blank or is made once a line
# (escaped blanks made each try run to the line's end: 90 s for 200,000 characters).
_PASSFILE_FIELD = r"(?=\d*+[^\d:\s])(?:[^:\s\\]|\\\S)++"
_PASSFILE_PORT = r"(?:\d{4,5}|\*)"
# never an amount (95000.00, -95000, (95,000.00), $95000, 95000.00EUR); a whole number may be one
_PASSFILE_NOT_A_NUMBER = r"(?![(\[+\-\u2212$\u20ac\u00a3\u00a5]++\d)(?!\d[\d.,'\u2019]*?[.,'\u2019]\d)"
_PASSFILE_RE = re.compile(
    rf"(?m:^[ \t]*+{_PASSFILE_FIELD}:{_PASSFILE_PORT}:{_PASSFILE_FIELD}:{_PASSFILE_FIELD}:"
    rf"{_PASSFILE_NOT_A_NUMBER}((?:[^:\s\\]|\\\S|[ \t]++(?![(\[+\-\u2212$\u20ac\u00a3\u00a5\u20b9]*+\d|\s))++)(?!:))"
    rf"|(?<!\S){_PASSFILE_FIELD}:{_PASSFILE_PORT}:{_PASSFILE_FIELD}:{_PASSFILE_FIELD}:"
    rf"{_PASSFILE_NOT_A_NUMBER}((?:[^:\s\\]|\\\S)++)(?!:)"
)
_FLAG_RE = re.compile(SHELL_FLAG)
"""A command-line flag and its value after a blank (``mysql --password S3cret``, ``--db-password 'p w'``), the value
read as a shell reads a word (quoted pieces joined, a backslash-newline going on), not a placeholder (``--password
<password>``), as the log masking reads it (``SHELL_FLAG``); the ``=`` form is an assignment (:data:`_ASSIGNED_RE`).
With one dash only a name ending in a credential's word is a flag (``-storepass``, ``-passin``; not ``-c``)."""
_FLAG_CREDENTIALS = frozenset({"storepass", "keypass", "srcstorepass", "deststorepass", "srckeypass", "destkeypass"})
"""Flags that name a credential though :func:`_own_credential` does not read them as one (keytool's and jarsigner's
``-storepass``, ``-keypass``); openssl's ``-passin`` and ``-passout`` take a source (``pass:S3cret``, ``env:VAR``)."""
_FLAG_PASS_SOURCES = frozenset({"passin", "passout"})
_PIN_RE = re.compile(
    r"(?<!\b[Pp]er )(?<!\b[Ee]ach )(?<!\b[Ee]very )"  # a price of each: Cost per PIN is 2500.
    r"(?:\bPIN\b(?:[ \t-]?+(?i:code|number|nummer))?+|\b[Pp]in[ \t-]?+(?i:code|number|nummer))"
    r"[ \t]*+(?::|=|(?i:\bis\b|\bist\b|\blautet\b))[ \t]*+(\d{4})"
    r"(?=[ \t]*+(?:\r?\n|$)|[.,;!?](?:\s|$)|[ \t]++[(\[])"
)
"""A PIN given with its label (``PIN: 4821``, ``Your PIN is 4821.``, ``PIN-Code: 0942``, ``pin code: 0000``; the label
written ``PIN``, or ``Pin``/``pin`` with ``code`` or ``number``, which :func:`_secrets` looks for first; not
``PIN No.``, a part's number): four digits ending the line or the sentence (or before a bracket), so no hinge pin's
``pin: 1500 units``, date (``PIN: 2024-03-15``), postal PIN code (six digits) or amount (``PIN: 1234,56``) is one, nor
a price of each (``Cost per PIN is 2500.``, ``each PIN: 1200``)."""
_PORT_FIELD_RE = re.compile(r":(?:\d{4,5}|\*):")
"""Every passfile line holds one; a cheap scan first, since the passfile pattern must start at every blank."""
# Every match of _SECRET_RE contains one of these substrings: the case-sensitive patterns' fixed parts as written,
# the case-insensitive ones' lowercased. Most documents hold none of them, and ``in`` is far cheaper than running
# the eleven-way alternation at every position (which was about half of ``redact``'s time), so
# ``_may_hold_secret`` gates it: a text that fails it cannot match, one that passes runs the full pattern.
_SECRET_HINTS = ("-----BEGIN", *TOKEN_HINTS)
# Not "pass" alone: "passed", "passenger" held the gate open in real documents (4 ms for a 20 KB mail).
_SECRET_HINTS_NOCASE = (
    "bearer", "apikey", "api_key", "api-key", "secret", "token", "passw", "accesskey", "access_key", "access-key",
    "_pass", "-pass", "_pwd", "-pwd", "key-data", "storepass", "keypass",  # keytool's -storepass, -keypass
)  # fmt: skip
_AUTH_HINT_RE = re.compile(r"auth[\s\"':=]|authorization")  # a name ending in auth, an HTTP header
_CAMEL_HINT_RE = re.compile(rf"[a-z0-9](?:Pass|Pwd)\b|{_CAPS_SERVICE_NAMES}\b")  # smtpPass, SMTPPASS: as written
# The only non-ASCII characters that re.IGNORECASE matches to an ASCII letter (checked over all of Unicode):
# U+0130 and U+0131 (i), U+017F (s), U+212A (k). Folded before lowercasing, so that the hint test stays exact.
_ASCII_FOLD = str.maketrans({"\u0130": "i", "\u0131": "i", "\u017f": "s", "\u212a": "k"})
_NINO_RE = re.compile(r"\b(?!BG|GB|NK|KN|TN|NT|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b")


def _may_hold_secret(text: str) -> bool:
    """False only when the key-word patterns (``_SECRET_RE``, names, elements, prose) cannot match ``text``."""
    if any(h in text for h in _SECRET_HINTS) or _CAMEL_HINT_RE.search(text) is not None:
        return True
    low = (text if text.isascii() else text.translate(_ASCII_FOLD)).lower()
    return any(h in low for h in _SECRET_HINTS_NOCASE) or _AUTH_HINT_RE.search(low) is not None


def _reads_as_password(word: str) -> bool:
    """A word after ``password is`` that is no English word: letters and digits, a symbol, or four digits or more."""
    if len(word) < 4:  # "is 8 characters"
        return False
    if word.isdigit():
        return True
    symbols = any(not (c.isalnum() or c in "-'\u2019") for c in word)  # "case-sensitive" is a word
    return symbols or (any(c.isdigit() for c in word) and any(c.isalpha() for c in word))


def _basic_credentials(value: str) -> bool:
    """True when ``value`` is base64 of ``user:password`` (Docker's ``auth``)."""
    digits = value.rstrip("=")  # the padding is often left off
    try:
        return b":" in base64.b64decode(digits + "=" * (-len(digits) % 4), validate=True)
    except ValueError:
        return False


def luhn_ok(digits: str) -> bool:
    """Luhn (mod 10) check of a digit string (``stdnum.luhn``)."""
    return bool(_luhn.is_valid(digits))


def iban_ok(candidate: str) -> bool:
    """IBAN check (``stdnum.iban``: mod-97 and the country's registered length and format; separators ignored)."""
    return bool(_iban.is_valid(candidate))


def _secrets(text: str) -> Iterator[Span]:
    found = _passfile(text)
    if _may_hold_secret(text):  # looked up at call time: a test forces the gate open
        found += [m.span() for m in _SECRET_RE.finditer(text)]
        found += _assigned(text)
        found += [m.span(2) for m in _ELEMENT_RE.finditer(text) if _element_secret(m.group(1), m.group(2).strip())]
        found += _keyed(text)
        found += [m.span(1) for m in _BASIC_HEADER_RE.finditer(text) if _basic_credentials(m.group(1))]
        found += _in_prose(text)
        found += _flags(text)
    if "PIN" in text or "pin" in text or "Pin" in text:  # the pattern's three ways to write the word, looked for first
        found += [m.span(1) for m in _PIN_RE.finditer(text)]
    merged: list[Span] = []
    for a, b in sorted(found):  # the patterns may overlap (token=eyJ...): one span each stretch
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    yield from merged


def _keyed(text: str) -> list[Span]:
    """The values of settings whose name, given in another attribute or a plist key, is a credential's."""
    found: list[Span] = []
    for m in _SETTING_TAG_RE.finditer(text):
        attributes: dict[str, tuple[str, Span]] = {}
        for a in _ATTRIBUTE_RE.finditer(text, m.start(1), m.end(1)):
            group = next((g for g in (2, 3, 4) if a.group(g) is not None), 0)
            if group:
                attributes.setdefault(a.group(1).lower(), (a.group(group), a.span(group)))
        named = attributes.get("key") or attributes.get("name")
        name = named[0] if named is not None else ""
        if attributes.get("type", ("",))[0].lower() == "password":
            name = "password"  # an HTML password input, whatever its name
        if _SETTING_NAME_RE.fullmatch(name) is None:
            continue
        name = re.sub(r"[\[\]]++", "_", name).strip("_")  # user[password]
        if "value" in attributes:
            value, span = attributes["value"]
        elif m.group(2) == ">" and _own_credential(name):  # the value as the tag's child, or a key= tag's own text
            if child := _VALUE_CHILD_RE.match(text, m.end()):
                group = 1 if child.group(1) is not None else 2
            elif "key" in attributes and (child := _TEXT_CHILD_RE.match(text, m.end())):
                group = 1
            else:
                continue
            value, span = child.group(group), child.span(group)
            if any(c.isspace() for c in value.strip()):  # words (a label's text, an invoice line), not a password
                continue
        else:
            continue
        if _setting_secret(name, value.strip()):
            found.append(span)
    found += [m.span(4) for m in _KEYED_PAIR_RE.finditer(text) if _setting_secret(m.group(2), m.group(4).strip())]
    found += [m.span(3) for m in _PLIST_RE.finditer(text) if _setting_secret(m.group(1).strip(), m.group(3).strip())]
    return found


def _setting_secret(name: str, value: str) -> bool:
    """Whether a setting named ``name`` holds a credential in ``value`` (a count or a price there stays; under a name
    that only holds a key word, ``token_pack``, words with blanks stay too)."""
    own = _own_credential(name)
    named = own or (_KEY_WORD_RE.search(name) is not None and not any(c.isspace() for c in value))
    return bool(value) and named and not _counted(name, value, own)


def _counted(name: str, value: str, credential: bool) -> bool:
    """A count or a price in a setting's or an element's ``value``, not a secret: a whole number of five digits or
    fewer (not a PIN), an amount with separators, or a price with its currency, unless the name is a credential's
    own other than a token's (``<password>12,34 \u20ac</password>`` is a secret)."""
    return _a_number(value, short_ints=not _pin(name, value)) or _priced(name, value, credential)


def _priced(name: str, value: str, credential: bool) -> bool:
    """``value`` is a price with its currency (:data:`_PRICE_RE`) and ``name`` may be priced: any name but a
    credential's own other than a token's (``{"token": "$0.50"}`` stays, ``password=$1234.56`` is a secret)."""
    return _PRICE_RE.fullmatch(value) is not None and not (credential and _TOKEN_NAME_RE.search(name) is None)


def _own_credential(name: str) -> bool:
    """A name that is a credential's, the key word ending it (``DbPassword``, ``SMTPPASS``), not inside it."""
    return _credential(name) or _CAPS_PASS_RE.search(name) is not None


def _credential(name: str) -> bool:
    return _CREDENTIAL_NAME_RE.search(name) is not None and _WORD_PASS_RE.search(name) is None


def _assigned(text: str) -> list[Span]:
    """Each name holding a key word with its value, name by name."""
    found: list[Span] = []
    pos = 0
    while m := _ASSIGNED_RE.search(text, pos):
        pos = m.end(1)
        name = m.group(1)
        if _AUTH_NAME_RE.search(name):
            v = _BASIC_AUTH_RE.match(text, m.end() + (text[m.end()] in "\"'"))
            if v and _basic_credentials(v.group()):
                found.append((m.start(), v.end()))
            if v:  # a blob of base64 holds no names
                pos = v.end()
            continue
        label = _LABEL_PASS_RE.search(name) or _CAMEL_PASS_RE.search(name)  # Ski-pass, dayPass: names, not keys
        credential = _CAPS_PASS_RE.search(name) is not None or (_credential(name) and not (m.group(2) == ":" and label))
        if not (credential or _KEY_WORD_RE.search(name)):
            continue
        v = _VALUE_RE.match(text, m.end())
        if v is None:  # an empty quoted value
            continue
        value = v.group(v.lastindex or 0)
        pin = _pin(name, value) and _ENDS_LINE_RE.match(text, v.end()) is not None
        if m.group(2) == ":" and v.lastindex == 3 and _a_number(value, short_ints=not pin):
            continue  # a form's label and a count or a price beside it (Token: 450, Password: 95,000.00)
        if (label and _a_number(value, short_ints=False)) or _priced(name, value, credential):
            continue  # seasonPass=300.00, {"token": "$0.50"}, token_fee = "0,50 EUR": a price
        short = credential and _short_taken(text, m, v.start(), value, pin)
        if len(value) < 6 and not (short and _ALNUM_RE.search(value)):
            continue  # a short value counts after a credential's name, on its line ("Password:\nDate:"), not "`,"
        end = v.end(v.lastindex or 0)
        found.append((m.start(), end))
        pos = end
    return found


def _flags(text: str, depth: int = 0) -> list[Span]:
    """Each command-line flag named for a credential with its value (``--password S3cret``, ``-storepass S3cret``), as
    :func:`_assigned` takes an assignment: a credential's own name takes any value but a count or a price, a name
    holding a key word (``--token-file``) a value of six characters or more. In a document ``--`` is also a dash: an
    unquoted value must read as a password (:func:`_reads_as_password`: ``The --secret ingredient is salt``, ``shared
    --password protected-- via the portal`` are prose). A value not taken is searched for flags in turn
    (``Run sh -c 'mysql --password S3cret'``), ``FLAG_DEPTH`` levels deep, as the log masking searches it."""
    found: list[Span] = []
    pos = 0
    while m := _FLAG_RE.search(text, pos):
        at = m.start(3)
        pos = at + shell_value_end(m.group(3))  # x\\<newline>--token: that flag is read again
        name, value = m.group(1).lstrip("-"), text[at:pos]
        if _flag_taken(name.casefold(), value):
            found.append((m.start(), pos))  # the closing quote too
        elif depth < FLAG_DEPTH:
            found += [(at + a, at + b) for a, b in _flags(value, depth + 1)]
    return found


def _flag_taken(name: str, value: str) -> bool:
    """Whether the flag ``name`` (no dashes, case-folded) and its ``value`` are a credential's (:func:`_flags`)."""
    credential = _own_credential(name) or name in _FLAG_CREDENTIALS or name in _FLAG_PASS_SOURCES
    if not (credential or _KEY_WORD_RE.search(name)) or _a_number(value, short_ints=not credential):
        return False
    if name in _FLAG_PASS_SOURCES:  # pass:S3cret, env:VAR, file:/path
        value = value.partition(":")[2] if value[:5].casefold() == "pass:" else ""
    if value.endswith("--") or (value[:1] not in "'\"$" and not _reads_as_password(value.rstrip(".,;:!?)"))):
        return False
    return len(value) >= 6 or (credential and _ALNUM_RE.search(value) is not None)


def _a_number(value: str, short_ints: bool) -> bool:
    """A count or a price, not a secret: an amount as written (:data:`_AMOUNT_RE`) with more than digits (a sign, a
    separator, a currency), or with ``short_ints`` a whole number of five digits or fewer. Only a label's unquoted
    value may be one (``Token: 450``, ``Season_Pass: 300.00``, an empty ``Password:`` field beside ``95,000.00``):
    after ``=``, ``=>``, ``:=`` or in quotes a number is a value assigned, a secret (``SMTP_PASS=123456``), as is a
    label's longer whole number (``Token: 123456``)."""
    if _AMOUNT_RE.fullmatch(value) is None:
        return False
    core = value.strip("()[].,;:!?")  # a sentence's or a list's punctuation: 84736251. is a whole number
    return not core.isdigit() or (short_ints and len(core) <= 5)


def _element_secret(name: str, value: str) -> bool:
    """Whether an XML element's text is a credential (``<password>``; not ``<PaymentToken>12.00``)."""
    return bool(value) and _own_credential(name) and not _counted(name, value, True)


def _short_taken(text: str, m: re.Match[str], value_at: int, value: str, pin: bool) -> bool:
    """Whether a value under six characters counts after the credential's name ``m``: on the name's line, and
    assigned (``PGPASSWORD=pw``, ``DB_PWD: abc``, ``password: abc1``); after a form's label (a capitalized word and a
    colon) only when it mixes letters and digits (``Passwort: Qz7``, not ``Password: Total EUR ...``)."""
    if "\n" in text[m.end(1) : value_at]:
        return False
    name = m.group(1)
    if m.group(2) != ":" or not (name[:1].isupper() and name[1:].islower()):
        return True
    mixed = any(c.isdigit() for c in value) and any(c.isalpha() for c in value)  # a label's value: Qz7, not Total
    return mixed or pin


def _pin(name: str, value: str) -> bool:
    """Four digits after a password's own name (``Password: 1234``): a PIN, not a count, where the number ends its
    line (the caller checks that: ``Password: 2024 rules apply``, ``Password: 1000 attempts``, an empty field beside
    ``95000 EUR`` stay), and not a five-digit number (``Password:  12000`` may be an amount beside an empty field;
    ``Password: 12 characters``, ``Token: 450`` and ``Secret: 95000`` stay)."""
    core = value.strip("()[].,;:!?")
    named = _PASSWORD_WORD_RE.search(name) is not None or _CAPS_PASS_RE.search(name) is not None
    return len(core) == 4 and core.isdigit() and named


def _in_prose(text: str) -> list[Span]:
    """The password a sentence gives, without the sentence's full stop."""
    found: list[Span] = []
    for m in _PROSE_RE.finditer(text):
        if m.group(2):
            found.append(m.span(2))
            continue
        word = m.group(3).rstrip(".,;:!?)")
        if word and not _a_number(word, short_ints=False) and (m.group(1) or _reads_as_password(word)):
            found.append((m.start(3), m.start(3) + len(word)))
    return found


def _passfile(text: str) -> list[Span]:
    """The password of each libpq passfile line: only lines holding a port field are scanned, each once (the
    pattern, which may start at any blank, took a millisecond for a 20 KB PDF with times in it)."""
    found: list[Span] = []
    done = 0
    for hit in _PORT_FIELD_RE.finditer(text):
        if hit.start() < done:
            continue
        start = text.rfind("\n", done, hit.start()) + 1 or done
        done = text.find("\n", hit.end()) % (len(text) + 1)  # the line's end, or the text's
        found += [m.span(m.lastindex or 0) for m in _PASSFILE_RE.finditer(text, start, done)]
    return found


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
