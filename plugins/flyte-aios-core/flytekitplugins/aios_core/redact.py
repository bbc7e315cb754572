"""The one masking helper: credentials never reach a message, a log line, an exception or CLI output.

Everything that can print a URL, a DSN or an error from a database or HTTP client passes it through
:func:`mask_text` (free text) or :func:`mask_url` (one URL or libpq DSN). What is masked:

* the password of a URL's userinfo (``postgresql://user:***@host/db``), whatever it holds (blanks, quotes,
  ``#``, ``?``, ``<``: libpq takes them as written); for web URLs
  (``http``, ``https``, ``ws``, ``wss``) the whole userinfo, since a lone user name there is often a token;
* ``name=value`` and ``name: value`` pairs whose name says secret (``password``, ``sslpassword``, ``passwd``,
  ``pwd``, ``secret``, ``client_secret``, ``token``, ``access_token``, ``api_key``, ``apikey``, ``X-API-Key``,
  ``private_key``, ``credential``, ``signature``...): URL query parameters, libpq keyword DSNs
  (quoted values included) and dict or header dumps;
* the ``sig``, ``key``, ``code`` and ``auth`` parameters of a URL query (signed URLs, OAuth codes);
* PEM private keys (``-----BEGIN PRIVATE KEY-----`` to its END line);
* ``Authorization``/``Proxy-Authorization`` header values and bare ``Bearer <token>`` strings;
* tokens whose shape says what they are, wherever they stand (:data:`TOKEN_SHAPES`: a JWT, GitHub, Slack, OpenAI,
  Stripe and Google keys, an AWS access key id), so ``?jwt=eyJ...`` or ``invalid token ghp_...`` in an error is
  masked though no name before it says secret;
* the text of an XML element whose name says secret, to its closing tag (``<password>...</password>``,
  ``<ns:ApiKey>``, comments and CDATA sections inside it), also escaped as ``&lt;password&gt;``, ``&#60;password&#62;``,
  ``&#x3c;password&#x3e;`` or Go's ``\\u003cpassword\\u003e`` (its closing tag escaped the same way); without a
  closing tag a CDATA section, which a message cut short may leave unclosed, or the first word straight after the tag
  (``<password>S3cret``), unless it is a placeholder (``--token <token>``, ``https://<token>@host``) or the name of a
  pair inside (``<credentials>password: x``, masked as a pair);
* the value after a command-line flag whose name says secret, with two dashes or with one where the name ends with a
  credential's word (``-storepass``, ``-keypass``, ``-passin``; not ``-passive``, ``-bypass``), read as a shell reads
  a word (``--password S3cret``, ``--db-password 'p w'``, ``shlex.join``'s quoting, ``(--password x)``) or as an
  argument list's repr quotes it (``['mysql', '--password', 'S3cret']``), as a SOAP fault or a failed command quotes
  them; the value after any other flag is searched for flags in turn, two levels deep (``sh --command 'mysql
  --password x'``);
* the password after the one-letter flag of a tool that takes it there, on its command line or in its argument
  list's repr: glued to ``-p`` for mysql and mariadb tools and 7-Zip (``mysql -uroot -pS3cret``, ``7z a -pS3cret``),
  the next word after ``sshpass -p``, ``docker login -p`` (podman, nerdctl), ``redis-cli -a``, the ldap tools' ``-w``,
  ``sqlcmd -P`` and ``bcp -P``, and ``openssl``'s ``-k``;
* every secret of a URL this process has masked or :func:`remember`-ed before, wherever it appears: a
  driver may quote a bare token of the DSN (libpq: ``invalid percent-encoded token: "<password>"``).

:func:`mask_url` and :func:`remember`, which are given one URL or DSN, PARSE it as libpq does rather than match
patterns: a query value runs to the next ``&`` (``?password=S3cret,PW`` masks ``S3cret,PW`` whole, whatever
punctuation it holds), a parameter's name is compared percent-decoded and case-folded (``?pass%77ord=``), a
keyword DSN's value is read with libpq's quoting and escapes (``password=S3cret\\ PW``), and a URL's userinfo runs
to the last ``@`` before the query, so a raw ``/`` or ``@`` in the password is masked too. Each whole secret is
remembered with its raw and decoded forms, the pieces a raw ``/`` or ``@`` splits it into and what libpq reads
instead (``PW@host`` as a host name), so a driver's error quoting any of them later is masked. :func:`mask_text`
(free text) can only match patterns: there a query's secret value runs to the next ``&`` or blank, and a ``=``
value (a DSN's) to the next blank.

:func:`mask_logs` applies :func:`mask_text` to every log record of the process (any logger, any handler);
settings loading and the connector server install it.

NOTE: masking is a last line of defence. Code should not put secrets into messages in the first place
(the webhook client, for instance, shows only a URL's origin); this module catches what slips through,
such as a driver's exception that quotes the DSN it was given.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator, Mapping
from urllib.parse import unquote

from flytekitplugins.aios_core.visible import visible

MASK = "***"
_MIN_KNOWN = 4  # shorter values would mask ordinary words; URL-shaped occurrences are masked anyway
_MAX_PIECES = 8  # pieces of one password (split at a raw "/", "@" or "&") remembered: every message pays for each
_known: set[str] = set()
_known_lock = threading.Lock()


# scheme://userinfo@ : for web URLs the userinfo runs to the LAST "@" before the authority ends ("/", "?", "#",
# blanks, quotes), as urllib splits it. For every other scheme (libpq and SQLAlchemy DSNs) it runs to the last "@"
# before the next "/" on the line: libpq takes a password with blanks, quotes, "#", "?" or "<" as written (and then
# quotes it back in its own errors), so no character but "/" may end it; an unencoded "@" is still covered.
_USERINFO = re.compile(
    r"(?i)(?<![a-z0-9+.\-])(?:((?:https?|wss?))://([^\s/?#'\"<>@]*(?:@[^\s/?#'\"<>@]*)*)"
    r"|([a-z][a-z0-9+.\-]*)://([^/\r\n]*))@"
)
# ... and a password holding a raw "/" (which _USERINFO cannot tell from a path): user, ":", a "/" before any "@",
# then to the last "@" of the blank-free token (free text only; mask_url parses the one URL it is given). Applied
# token by token (_slashed), so that no start of a scheme rescans the rest of a long token
_TOKEN = re.compile(r"(?<!\S)\S++")
_USERINFO_SLASHED = re.compile(r"(?i)(?<![a-z0-9+.\-])([a-z][a-z0-9+.\-]*+)://([^\s/@:]*+):(?=[^\s@/]*+/)")
# a URL query's parameters in free text: a value runs to the next "&" or blank (libpq takes ",", ";", quotes,
# brackets and "#" as part of it); names are compared percent-decoded (_is_secret_name)
_QUERY_PARAM = re.compile(r"([?&])([^=&#\s?]+)(?:=([^&\s]*))?")
_WEB_SCHEMES = frozenset({"http", "https", "ws", "wss"})
# signed-URL and OAuth query parameters whose short names say nothing to _SENSITIVE_NAME (masked in queries only)
_QUERY_ONLY_NAMES = frozenset({"sig", "key", "code", "auth", "jwt", "x-amz-signature", "x-goog-signature"})

_NAME_WORDS = r"pass(?:word|wd)?|pwd|secret|token|api[_\-]?key|access[_\-]?key|private[_\-]?key|credentials?|signature"
_SENSITIVE_NAME = rf"[\w.\-]*?(?:{_NAME_WORDS})[\w\-]*+"
_SECRET_NAME = re.compile(_SENSITIVE_NAME, re.I)
_NAME_WORD = re.compile(_NAME_WORDS, re.I)
# name=value or "name": "value" (quoted or bare value), in query strings, DSNs, reprs and header dumps. A name is a
# whole run of name characters, taken once from where the run starts and holding one of the sensitive words
# (_NAME_WORD, looked for by _pairs): a name that could start at every word boundary inside `a.a.a...` rescanned the
# run from each (5 s for 8,000 characters of a log record), and a lazy one before the word was quadratic too.
# A bare value after "=" runs to the next blank or "&" (a libpq DSN takes "," ";" ")" and quotes as written, "\ " as
# a blank); one after ":" (a dict or header dump) stops at the punctuation that closes it
_PAIR = re.compile(
    r"""(?ix)
    (?P<name>['"]?(?<![\w.\-])[\w.\-]++['"]?)
    (?:
        (?P<eq>\s*=\s*)(?P<eqvalue>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|(?:\\.|[^\s&\\])+\\?)
      | (?P<colon>\s*:(?!//)\s*)(?P<value>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|[^\s&;,'"}\]\)]+)
    )
    """
)
_PAIR_NAME = re.compile(r"""['"]?(?<![\w.\-])[\w.\-]++['"]?(?=\s*+(?:=|:(?!//)))""")
"""A :data:`_PAIR`'s name and what follows it up to its separator, looked at, not taken: its value is read only after
a sensitive name (:func:`_pairs`); a word without a separator after it is passed over without a stop."""
# one libpq keyword DSN pair (mask_url on a DSN): a quoted value with backslash escapes (to the end if unclosed), or
# a bare one to the next blank, "\ " escaping a blank, exactly as libpq's conninfo_parse reads it
_DSN_PAIR = re.compile(
    r"""(?P<name>[A-Za-z_][\w\-]*)(?P<sep>\s*=\s*)(?P<value>'(?:\\.|\\\Z|[^'\\])*(?:'|\Z)|(?:\\.|\\\Z|[^\s\\])*)""",
    re.S,
)
_AUTH_HEADER = re.compile(
    r"""(?i)(['"]?\b(?:proxy-)?authorization['"]?\s*[:=]\s*['"]?)(?:(basic|bearer|token|digest|negotiate)\s+)?"""
    r"""[^\s'",;}\]]+"""
)
# a PEM private key written where a reference was expected (AIOS_SIGNING_KEY='-----BEGIN PRIVATE KEY-----...'),
# also as a repr with escaped newlines, also cut short: everything after the BEGIN line to its END line
_PEM = re.compile(r"-----BEGIN ([A-Z0-9 ]*PRIVATE KEY)-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\Z)", re.S)
_BEARER = re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9\-._~+/]+=*")

TOKEN_SHAPES = (
    r"\bAKIA[0-9A-Z]{16}\b",  # AWS access key id
    r"\bgh[pousr]_[A-Za-z0-9]{36,}\b",  # GitHub tokens
    r"\bgithub_pat_[A-Za-z0-9_]{22,}\b",
    r"\bxox[abposr]-[A-Za-z0-9-]{10,}\b",  # Slack
    r"\bsk-(?:proj-|live-|test-)?[A-Za-z0-9_-]{20,}\b",  # OpenAI / Stripe style
    r"\b[rps]k_(?:live|test)_[A-Za-z0-9]{16,}\b",  # Stripe's secret, restricted and publishable keys
    r"\bAIza[0-9A-Za-z_-]{35}(?!\w)",  # Google API key (it may end in "-", or have one after it)
    r"(?<![\w-])eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\b",  # JWT, one start a run
)
"""Credentials recognised by their shape alone; the document pipeline's redaction (``tasks.documents.protect``) takes
the same shapes. Each is tried only where one of :data:`TOKEN_HINTS` occurs."""
TOKEN_HINTS = (
    "AKIA", "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", "xox", "sk-", "k_live_", "k_test_", "AIza", "eyJ",
)  # fmt: skip
"""A fixed part of every :data:`TOKEN_SHAPES` match, as written: text holding none of them holds no such token."""
_TOKEN_SHAPE = re.compile("|".join(f"(?:{p})" for p in TOKEN_SHAPES))
# An XML element's opening tag (its qualified name, attributes to the tag's end, not a self-closing one): each try
# ends at the next "<" or ">". Its text is read by _elements up to its closing tag, looked for within
# _ELEMENT_REACH characters (comments, blanks and CDATA sections, split or not, inside it are masked with the rest);
# without one, only a CDATA section straight after it (to its "]]>", or to the end of a message cut short).
_ELEMENT_OPEN = re.compile(r"<(?P<name>(?:[\w.-]++:)?+[\w.-]{1,128}+)(?:\s[^<>]*+)?+(?<!/)>")
_ESCAPED_LT = r"(?i:&lt;|&#60;|&#x3c;|\\u003c)"
_ESCAPED_GT = r"(?i:&gt;|&#62;|&#x3e;|\\u003e)"
_ELEMENT_OPEN_ESCAPED = re.compile(
    rf"(?P<lt>{_ESCAPED_LT})(?P<name>(?:[\w.-]++:)?+[\w.-]{{1,128}}+)"
    rf"(?:\s(?:[^<>&\\]|(?!{_ESCAPED_LT}|{_ESCAPED_GT})[&\\])*+)?+(?<!/){_ESCAPED_GT}"
)
"""The same opening tag as an HTML page, an escaped log field or a JSON string writes it (``&lt;password&gt;``,
``&#60;password&#62;``, ``&#x3c;password&#x3e;``, Go's ``\\u003cpassword\\u003e``, in any case); its closing tag is
looked for escaped as the opening one is. Each try ends at the next escape of ``<`` or ``>`` (or a raw one)."""
_ELEMENT_REACH = 4096
_CDATA_AFTER = re.compile(r"\s*+<!\[CDATA\[")
_BARE_FIRST = r"""[^\s<>&\\.,;:!?()\[\]{}'"/@*#=-]"""
_BARE_TEXT = re.compile(rf"{_BARE_FIRST}(?:[^\s<&\\]|(?!{_ESCAPED_LT})[&\\])*+(?<![:=])")
"""An element's text straight after its opening tag, cut short before any closing tag: its first word, over an ``&``
or a backslash that escapes anything but a ``<`` (``S3&amp;x``; a ``<``, raw or escaped, ends it). Not a
placeholder's punctuation after the tag (``<token>:``, ``<token>.``, ``https://<token>@host``,
``/v1/<api_key>/status``, ``unique_ptr<Token>*``, ``<secret>-- TODO``), another tag, nor a word ending in ``:`` or
``=`` or starting with a secret's pair: that is the name of a pair inside (``<credentials>password: x``,
``<secret>token=x``), masked as one."""
# A shell word (quoted pieces and bare characters joined, as shlex.join writes one; a backslash-newline continues it),
# each quoted piece ending on its line within 512 characters, or running to the line's end (512 at most) unclosed.
_SHELL_WORD = (
    r"""(?:\$?+'[^'\n]{0,512}+'|"(?:[^"\\\n]|\\.){0,512}+"|\\\n[ \t]*+|\\.|[^\s'"\\]"""
    r"""|\$?+'[^'\n]{0,512}+|"(?:[^"\\\n]|\\.){0,512}+)++"""
)
_ONE_DASH_ENDS = (
    "password", "passwd", "pass", "pwd", "secret", "token", "apikey", "api-key", "api_key", "accesskey", "access-key",
    "access_key", "privatekey", "private-key", "private_key", "credential", "credentials", "-passin", "-passout",
)  # fmt: skip
_FLAG_NAME = (
    r"(?:--[A-Za-z][\w.-]{0,127}+|-[A-Za-z][\w.-]{0,127}+(?i:"
    + "|".join(f"(?<={re.escape(w)})" for w in _ONE_DASH_ENDS)
    + r")(?<!(?i:bypass))(?<!(?i:compass))(?<!(?i:surpass))(?<!(?i:trespass)))"
)
"""A flag's name with its dashes: any with two (:func:`_is_secret_name` decides), one with one dash only when it ends
with a credential's word (``-storepass``, ``-keypass``, ``-password``, ``-token``) or is ``-passin``/``-passout`` (as
keytool, jarsigner and openssl write theirs), not ``-bypass``: with one dash ``-passive``, ``-bypass-check`` or
``-tokens 5`` are ordinary flags, and a value after them is never taken (``sh -c '...'``, ``git commit -m "..."``)."""
SHELL_FLAG = rf"""(?<![^\s(\[{{,])({_FLAG_NAME})(?![\w.-])([ \t]++(?:\\\n[ \t]*+)*+)(?![-<=:])({_SHELL_WORD})"""
"""A command-line flag (group 1, its dashes included: ``--password``, or one as keytool and openssl write them,
``-storepass``, ``-passin``, :data:`_FLAG_NAME`), the blanks after it (2, a backslash-newline too) and its value as a
shell reads a word (3): not another flag, a placeholder (``<password>``) or a separator (``--password = x`` is a pair,
:data:`_PAIR`). The flag starts a word or follows an opening bracket or a comma (``(--password x)``, ``[-storepass
x]``). A value after a name that says nothing secret is searched for flags in turn (:data:`FLAG_DEPTH`: ``--command
'mysql --password x'``). The document redaction takes flags the same way."""
FLAG_DEPTH = 2
"""How deep a flag's value is searched for flags after a name that says nothing secret: the top level's values, then
theirs (a shell's command, a quoted command inside it); at the last level a value is passed over whole. Searching
every value again from inside it would read a value that runs to the end of the text (``(-c '(-c '...``) once for
each flag in it."""
_SHELL_FLAG = re.compile(SHELL_FLAG)
_TRAILING_FLAG = re.compile(rf"(?:\\\s[ \t]*+|[(\[{{,])({_FLAG_NAME})\Z")
"""A flag ending a shell word, glued to it by a backslash-newline, an escaped blank, a bracket or a comma
(``x\\<newline>--token``, ``x,--token``): read again as a flag when its name says secret."""
# Also a flag and its value in an argument list's repr ('--password', 'x'; bytes too, one item a line as pprint and
# json.dumps write them), looked for first: a shell word before it may run into it (-storepass x'--password', 'y').
_ARGV_FLAG = re.compile(
    rf"""([bB]?+)(['"])({_FLAG_NAME})\2(,\s*+[bB]?+)(['"])(?![-<])((?:(?!\5)[^\\\n]|\\.){{0,512}}+)\5?+"""
)
# Tools that take a password after a one-letter flag: glued to it (mysql -uroot -pS3cret, 7z a -pS3cret) or as the
# next word (sshpass -p S3cret, docker login -p S3cret, redis-cli -a S3cret, ldapsearch -w S3cret, sqlcmd -P S3cret,
# openssl enc -k S3cret). Elsewhere -p is a port, a process or a flag (ssh -p 2222, ps -p 1234, docker run -p 80:80).
_TOOL_NAMES = (
    r"mysql(?:dump|admin|sh|import|check|pump|binlog|slap|show)?+|mariadb(?:-(?:dump|admin|import|check|show|binlog|slap))?+"
    r"|7z[az]?+|sshpass|redis-cli|sqlcmd|bcp|openssl"
    r"|ldap(?:search|add|modify|delete|whoami|passwd|compare|modrdn)|(?:docker|podman|nerdctl)(?:[ \t]++login)?+"
)
_TOOL = re.compile(
    rf"(?i)(?:(?<![\w.\-/\\$])|(?<=\bbin[/\\]))(?P<name>{_TOOL_NAMES})(?:\.exe)?+"
    r"(?![\w.:-]|[ \t]++[A-Za-z][\w-]*+:(?!\S))(?P<argv>['\"][ \t]*+,)?+"
)
"""A tool of :func:`_tool_rule` as a command word: not in a path other than a ``bin`` folder's (``/usr/bin/mysql``,
not ``find /var/lib/mysql``), not a label (``mysql:``, ``mysql backup:``, an image ``mysql:8``); ``argv``: a quoted
item of an argument list's repr (``['mysql', '-uroot', '-pS3cret']``)."""
_TOOL_ITEM = re.compile(rf"(?i)(?:[^'\"]*[/\\])?(?P<name>{_TOOL_NAMES})(?:\.exe)?+")
_TOOL_HINTS = ("mysql", "mariadb", "7z", "sshpass", "login", "redis-cli", "ldap", "sqlcmd", "bcp", "openssl")
_TOOL_SCOPE = re.compile(r"""(?:'[^'\n]*+'|"(?:[^"\\\n]|\\.)*+"|[^;|&\n\\'"]|\\[\s\S]|['"])*+""")
"""A tool's command: to the next ``;``, ``|``, ``&`` or newline not escaped by a backslash and not inside a quoted
piece (``mysql -e 'a; b' -pS3cret``)."""
_ARGV_ITEM = re.compile(r"""\s*+[bB]?+(['"])((?:(?!\1)[^\\\n]|\\.){0,512}+)\1\s*+([,\])])""")
"""One item of an argument list's repr and what follows it: a comma, or the list's end."""
_NOT_A_VALUE = r"""(?!['"](?:[\s,;)\]}`]|\Z))"""  # a closing quote: 'mysql -u root -p' asks for the password
_BLANKS = {"glued": r"(?!\\\n)", "both": r"(?:[ \t]|\\\n)*+(?![-<])", "apart": r"(?:[ \t]|\\\n)++(?![-<])"}
_TOOL_VALUE = {
    (flag, way): re.compile(rf"""(?<![^\s'"]){flag}{_BLANKS[way]}{_NOT_A_VALUE}({_SHELL_WORD})""")
    for flag, way in (("-p", "glued"), ("-p", "both"), ("-w", "both"), ("-P", "both"), ("-a", "apart"), ("-k", "apart"))
}
"""A tool's password after its flag: glued only for mysql's and 7-Zip's ``-p`` (``mysql -p shop`` asks for the
password and names the database), glued or as the next word for sshpass, ``docker login``, the ldap tools, sqlcmd and
bcp (``sshpass -p'pw'``, ``sqlcmd -P pw``), the next word only for redis-cli's ``-a`` and openssl's ``-k`` (``-key``,
``-keyout``, ``-kfile`` are other options)."""
_LOGIN = re.compile(r"""(?<![^\s'"])login(?![^\s'"])""")
"""``login`` after a container tool's global options (``docker --config /x login -p pw``)."""
_SSHPASS_OPTIONS = re.compile(
    r"""(?:[ \t]++(?:-[fdpP](?:[ \t]*+(?:'[^'\n]*+'|"(?:[^"\\\n]|\\.)*+"|[^\s'"]++))?+|-[evhV]))*+"""
)
"""sshpass's own options, before the command it runs (``sshpass -p pw ssh -p 2222 host``: the second ``-p`` is ssh's
port)."""


def _userinfo(m: re.Match[str]) -> str:
    if m.group(1):  # a web URL: the whole userinfo
        return f"{m.group(1)}://{MASK}@"
    scheme, info = m.group(3), m.group(4)
    user, colon, _ = info.partition(":")
    return f"{scheme}://{user}:{MASK}@" if colon else m.group(0)


def _pairs(text: str) -> Iterator[re.Match[str]]:
    """The :data:`_PAIR` matches whose name holds a sensitive word, left to right; after any other name the search
    goes on from its end, so a pair inside its value is still found (``url=...?password=x``). Only a sensitive
    name's value is read: reading every name's (``a=a=a=...``, ``PIN:PIN:...``) read the rest of the text again
    from each name, 3.4 s for 20,000 characters of a log record and 90 s for 100,000 (review of 2026-12-06)."""
    pos = 0
    while name := _PAIR_NAME.search(text, pos):
        pos = name.end()
        if _NAME_WORD.search(name.group()) is None:
            continue
        if m := _PAIR.match(text, name.start()):
            yield m
            pos = m.end()


def _pair(m: re.Match[str]) -> str:
    value = m.group("eqvalue") if m.group("eq") is not None else m.group("value")
    quote = value[0] if value[:1] in {"'", '"'} else ""
    return f"{m.group('name')}{m.group('eq') or m.group('colon')}{quote}{MASK}{quote}"


def _slashed(token: re.Match[str]) -> str:
    text = token.group(0)
    at = text.rfind("@")
    if at < 0 or "://" not in text:
        return text
    for m in _USERINFO_SLASHED.finditer(text, 0, at):
        before_slash = text[m.end() : text.find("/", m.end())]  # digits only: host:port/path, no password
        if m.group(1).casefold() not in _WEB_SCHEMES and not before_slash.isdigit():
            return f"{text[: m.start()]}{m.group(1)}://{m.group(2)}:{MASK}@{text[at + 1 :]}"
    return text


def _elements(text: str, escaped: bool = False, cut_short: bool = False) -> str:
    """``text`` with the text of every element whose name says secret masked (see :data:`_ELEMENT_OPEN`; with
    ``escaped``, :data:`_ELEMENT_OPEN_ESCAPED`'s ``&lt;password&gt;...&lt;/password&gt;``): to its closing tag or
    through a CDATA section, or with ``cut_short`` only the first word of one that has neither (:data:`_BARE_TEXT`),
    which :func:`mask_text` looks for last, so that no pair or flag is read differently for it."""
    opening = _ELEMENT_OPEN_ESCAPED if escaped else _ELEMENT_OPEN
    out: list[str] = []
    last = pos = 0
    no_cdata_end_from = len(text) + 1  # no "]]>" at or after this position
    while m := opening.search(text, pos):
        pos = m.end()
        name = m.group("name")
        if not _is_secret_name(name.rpartition(":")[2]):
            continue
        end = text.find(f"{m.group('lt') if escaped else '<'}/{name}", pos, pos + _ELEMENT_REACH)
        cdata = _CDATA_AFTER.match(text, pos) if end < 0 else None
        if cut_short:  # only an element without its closing tag or a CDATA section: its first word
            bare = _BARE_TEXT.match(text, pos) if end < 0 and cdata is None else None
            if bare is None or _pair_named(bare.group()):
                continue
            end = bare.end()
        elif cdata:  # no closing tag: a CDATA section, or nothing
            end = -1 if pos >= no_cdata_end_from else text.find("]]>", cdata.end())
            if end < 0:
                no_cdata_end_from = min(no_cdata_end_from, pos)
                end = len(text)
            else:
                end += 3
        if end < 0 or not text[pos:end].strip():
            continue
        out += [text[last:pos], MASK]
        last = pos = end
    return "".join(out) + text[last:] if out else text


def _pair_named(word: str) -> bool:
    """Whether ``word`` starts with a pair whose name says secret (``password=x``): the pairs mask it, to its end."""
    name = _PAIR_NAME.match(word)
    return name is not None and _NAME_WORD.search(name.group()) is not None


def _tool_rule(name: str) -> tuple[str, str] | None:
    """The flag before a tool's password and how the password follows it (:data:`_TOOL_VALUE`: ``glued``, ``both``
    or ``apart``); None for ``docker`` without ``login``."""
    tool = name.casefold().removesuffix(".exe")
    if tool.startswith(("mysql", "mariadb")) or tool in {"7z", "7za", "7zz"}:
        return "-p", "glued"
    if tool == "sshpass" or tool.endswith("login"):
        return "-p", "both"
    if tool.startswith("ldap"):
        return "-w", "both"
    return {
        "redis-cli": ("-a", "apart"),
        "sqlcmd": ("-P", "both"),
        "bcp": ("-P", "both"),
        "openssl": ("-k", "apart"),
    }.get(tool)


def _tools(text: str, nested: bool = False) -> str:
    """``text`` with the password after a tool's one-letter flag masked (:data:`_TOOL`), on its command line (to
    :data:`_TOOL_SCOPE`'s end, or the next tool there) or in an argument list's repr, where an item that holds a
    command line of its own (``['docker', 'exec', 'db', 'sh', '-c', 'mysqldump -pS3cret']``) is read as one, once
    (``nested``: not again inside it)."""
    out: list[str] = []
    last = pos = 0
    scope_end = -1
    while t := _TOOL.search(text, pos):
        rule = _tool_rule(t.group("name"))
        if t.group("argv"):  # ['mysql', '-uroot', '-pS3cret']: the items up to the list's end
            docker, taken, sshpass = rule is None, False, t.group("name").casefold() == "sshpass"
            argument = False  # the item after one of sshpass's options that take one (-f file, -d fd, -P prompt)
            pos = t.end()
            while item := _ARGV_ITEM.match(text, pos):
                pos, value = item.end(), item.group(2)
                if taken:
                    out += [text[last : item.start(2)], MASK]
                    last, taken = item.end(2), False
                elif tool := _TOOL_ITEM.fullmatch(value):
                    rule = _tool_rule(tool.group("name"))
                    docker, sshpass = rule is None, tool.group("name").casefold() == "sshpass"
                elif docker and value == "login":
                    rule, docker = ("-p", "both"), False
                elif rule and rule[1] != "apart" and value.startswith(rule[0]) and len(value) > len(rule[0]):
                    out += [text[last : item.start(2) + len(rule[0])], MASK]  # glued: '-pS3cret'
                    last = item.end(2)
                elif rule and rule[1] != "glued" and value == rule[0]:
                    taken = True
                elif sshpass and value in ("-f", "-d", "-P"):
                    argument = True
                elif argument:
                    argument = False
                elif sshpass and not value.startswith("-"):  # the command sshpass runs: its -p is not sshpass's
                    rule = None
                if not nested and last <= item.start(2) and " " in value and (inner := _tools(value, True)) != value:
                    out += [text[last : item.start(2)], inner]
                    last = item.end(2)
                if item.group(3) != ",":
                    break
            continue
        if t.end() > scope_end:
            scope = _TOOL_SCOPE.match(text, t.end())
            scope_end = scope.end() if scope else t.end()
        after = _TOOL.search(text, t.end(), scope_end)
        pos = after.start() if after else scope_end
        start, stop = t.end(), pos
        if rule is None:  # docker without login: after its global options (docker --config /x login -p pw)
            if (login := _LOGIN.search(text, start, stop)) is None:
                continue
            rule, start = ("-p", "both"), login.end()
        if t.group("name").casefold() == "sshpass":  # only its own options: sshpass -p pw ssh -p 2222 host
            own = _SSHPASS_OPTIONS.match(text, start, stop)  # read to the next tool at most: linear
            stop = own.end() if own else stop
        for v in _TOOL_VALUE[rule].finditer(text, start, stop):
            out += [text[last : v.start(1)], MASK]
            last = v.start(1) + shell_value_end(v.group(1))  # -p x\\<newline>--token: the flag pass reads that one
    return "".join(out) + text[last:] if out else text


_CLOSING = {"(": ")", "[": "]", "{": "}"}


def _flags(text: str, depth: int = 0) -> str:
    """``text`` with the value of every flag whose name says secret masked, in an argument list's repr
    (:data:`_ARGV_FLAG`) and then on a command line (:data:`SHELL_FLAG`); the value after any other flag is searched
    in turn, :data:`FLAG_DEPTH` levels deep."""
    return _shell_flags(_ARGV_FLAG.sub(lambda m: _argv_flag(m, depth), text), depth)


def _shell_flags(text: str, depth: int) -> str:
    """``text`` with the value of every :data:`SHELL_FLAG` whose name says secret masked."""
    out: list[str] = []
    last = pos = 0
    while m := _SHELL_FLAG.search(text, pos):
        end = m.start(3) + shell_value_end(m.group(3))
        out += [text[last : m.start()], _flag(m, end, depth)]
        last = pos = end
    return "".join(out) + text[last:] if out else text


def shell_value_end(value: str) -> int:
    """Where a flag's value read as a shell word (:data:`SHELL_FLAG`'s group 3) ends: before a flag whose name says
    secret glued to its end (:data:`_TRAILING_FLAG`: ``x\\<newline>--token``, ``x,--token``), which is read again
    with the word after it; else at its end. The document redaction ends a flag's value the same way."""
    tail = _TRAILING_FLAG.search(value)
    return tail.start() if tail and _is_secret_name(tail.group(1).lstrip("-")) else len(value)


def _source_not_secret(name: str, value: str) -> bool:
    """openssl's ``-passin``/``-passout`` name where a password comes from: only ``pass:<password>`` holds one
    (``env:PW``, ``file:/run/pw``, ``fd:3`` and ``stdin`` are sources, left as written)."""
    source = value.strip("'\"").casefold()
    return name.lstrip("-").casefold() in ("passin", "passout") and not source.startswith("pass:")


def _argv_flag(m: re.Match[str], depth: int) -> str:
    prefix, quote, name, sep, value_quote = m.group(1, 2, 3, 4, 5)
    if not _is_secret_name(name.lstrip("-")):
        if depth >= FLAG_DEPTH:
            return m.group(0)
        whole, start, end = m.group(0), m.start(6) - m.start(), m.end(6) - m.start()
        return f"{whole[:start]}{_flags(m.group(6), depth + 1)}{whole[end:]}"
    if _source_not_secret(name, m.group(6)):
        return m.group(0)
    return f"{prefix}{quote}{name}{quote}{sep}{value_quote}{MASK}{value_quote}"


def _flag(m: re.Match[str], end: int, depth: int) -> str:
    """A :data:`SHELL_FLAG` match whose value ends at ``end``: its value masked after a name that says secret, else
    searched for flags unless ``depth`` is the last level (:data:`FLAG_DEPTH`)."""
    head, value = m.string[m.start() : m.start(3)], m.string[m.start(3) : end]
    if not _is_secret_name(m.group(1).lstrip("-")):
        return f"{head}{_flags(value, depth + 1) if depth < FLAG_DEPTH else value}"
    if _source_not_secret(m.group(1), value):
        return f"{head}{value}"
    closing = _CLOSING.get(m.string[m.start() - 1 : m.start()], "")  # (--password x): the bracket stays
    return f"{head}{MASK}{closing if closing and value.endswith(closing) else ''}"


def _auth(m: re.Match[str]) -> str:
    scheme = f"{m.group(2)} " if m.group(2) else ""
    return f"{m.group(1)}{scheme}{MASK}"


def _is_secret_name(name: str, query: bool = False) -> bool:
    """Whether a parameter (``query``: of a URL's query) or DSN keyword named ``name`` holds a secret; the name is
    compared percent-decoded and case-folded, as libpq reads it (``pass%77ord`` is ``password``)."""
    plain = unquote(name).strip().strip("'\"").casefold()
    return (query and plain in _QUERY_ONLY_NAMES) or _SECRET_NAME.fullmatch(plain) is not None


def _query_param(m: re.Match[str]) -> str:
    lead, name, value = m.group(1), m.group(2), m.group(3)
    if value is None:  # no "=": an encoded one (password%3Dx) is still a name and its value to libpq
        plain, eq, _ = unquote(name).partition("=")
        return f"{lead}{MASK}" if eq and _is_secret_name(plain, query=True) else m.group(0)
    return f"{lead}{name}={MASK}" if value and _is_secret_name(name, query=True) else m.group(0)


def _forms(value: str) -> set[str]:
    """A secret as written and as decoded (percent-decoding; libpq's backslash escapes)."""
    return {value, unquote(value), re.sub(r"\\(.)", r"\1", value, flags=re.S)}


def _mask_query(query: str) -> tuple[str, set[str]]:
    """A URL query (after "?") with each secret parameter's whole value masked, and those values. libpq splits the
    query at "&" only, so a value runs to the next "&" whatever it holds (",", ";", quotes, "#", blanks); a part
    without "=" right after a secret is the rest of it (a raw "&" in the password) and is masked too."""
    out: list[str] = []
    found: set[str] = set()
    secret, tails = False, 0  # secret: the part before was (part of) a secret value
    for part in query.split("&"):
        name, eq, value = part.partition("=")
        if eq:
            secret, tails, shown = bool(value) and _is_secret_name(name, query=True), 0, f"{name}={MASK}"
        else:  # an encoded "=" (password%3Dx) still parts a name from its value to libpq
            plain, eq, decoded = unquote(part).partition("=")
            named = bool(eq) and _is_secret_name(plain, query=True)
            tails = 0 if named else tails + 1
            secret = named or (secret and bool(part) and tails <= _MAX_PIECES)
            value, shown = (decoded if named else part), MASK
            found |= {part} if secret else set()
        if secret:
            found |= _forms(value)
        out.append(shown if secret else part)
    return "&".join(out), found


def _host_of(authority: str) -> str:
    """The first host name of an authority (``h1:5432,h2`` -> ``h1``; ``[::1]:5432`` -> ``[::1]``)."""
    if authority.startswith("["):
        return authority[: authority.find("]") + 1] if "]" in authority else authority
    return re.split(r"[:,/?]", authority, maxsplit=1)[0]


def _password_forms(password: str, after: str) -> set[str]:
    """What a driver may quote of a URL password holding a raw "/" or "@": libpq ends the userinfo at the first
    "@" before the first "/" and reads the rest as host, port or database (``PW@127.0.0.1`` in its error), so each
    piece, each prefix and each tail joined to the host it runs into is remembered with the whole password."""
    found = _forms(password)
    host = _host_of(after)
    cuts = [i for i, c in enumerate(password) if c in "/@"][:_MAX_PIECES]  # a real password has few
    for i in cuts:
        head, tail = password[:i], password[i + 1 :]
        found |= _forms(head) | _forms(tail) | ({f"{tail}@{host}"} if host else set())
    found.update(piece for piece in re.split(r"[/@]", password, maxsplit=_MAX_PIECES) if piece)
    return found


def _libpq_view(url: str, masked: str, secrets: set[str]) -> set[str]:
    """The values libpq itself reads out of ``url`` that hold a secret: its ``password`` and ``sslpassword`` (libpq
    ends a password at the first "@"), and any other value that a raw "/" or "@" in the password turned into
    something else than it is in the masked URL (``PW@127.0.0.1`` as a host name, ``S3cret`` as a port)."""
    try:
        from psycopg.conninfo import conninfo_to_dict
    except ImportError:  # psycopg is optional: the pieces _password_forms keeps are then all there is
        return set()
    try:
        mine = conninfo_to_dict(url)
    except Exception:  # libpq refuses the URL: its error is masked with what was remembered
        return set()
    try:
        reference = conninfo_to_dict(masked)
    except Exception:
        reference = {}
    pieces = {p for s in secrets for p in re.split(r"[/@:]", s) if len(p) >= 2}
    found: set[str] = set()
    for key, value in mine.items():
        text = str(value)
        if _is_secret_name(key):
            found |= _forms(text)
        elif key != "user" and text != str(reference.get(key, "")) and any(p in text for p in pieces):
            found.add(text)
    return found


def _mask_one_url(url: str) -> tuple[str, set[str]] | None:
    """One URL (``scheme://...``) with its password and secret query values masked, and those secrets; None when
    ``url`` is not one. The userinfo runs to the last "@" before the query (any "@" when there is none before it),
    so a raw "/" or "@" in the password is masked with the rest of it; web URLs split as urllib does."""
    m = re.match(r"([A-Za-z][A-Za-z0-9+.\-]*)://", url)
    if m is None:
        return None
    scheme, rest = m.group(1), url[m.end() :]
    web = scheme.casefold() in _WEB_SCHEMES
    if web:
        end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
        at = rest.rfind("@", 0, end)
    else:
        query_at = rest.find("?")
        at = rest.rfind("@", 0, query_at) if query_at >= 0 else rest.rfind("@")
        if at < 0 and ":" in rest[:query_at] and "/" not in rest[:query_at]:  # "?" in a password: user:pw?x@host
            at = rest.rfind("@")
    head, secrets = f"{scheme}://", set()
    if at >= 0:
        info, rest = rest[:at], rest[at + 1 :]
        user, colon, password = info.partition(":")
        if web:  # the whole userinfo: a lone user name there is often a token
            head += f"{MASK}@"
            secrets |= _forms(password if colon else user)
        elif colon:
            head += f"{user}:{MASK}@"
            secrets |= _password_forms(password, rest)
        else:
            head += f"{info}@"
    fragment = ""
    if web:  # libpq knows no fragment: a "#" is part of a password or a query value there
        rest, hash_, frag = rest.partition("#")
        fragment = hash_ + frag
    path, qmark, query = rest.partition("?")
    if qmark:
        query, found = _mask_query(query)
        secrets |= found
    masked = head + path + qmark + query + fragment
    if scheme.casefold() in {"postgresql", "postgres"}:
        secrets |= _libpq_view(url, masked, secrets)
    return masked, secrets


def _mask_one_dsn(dsn: str) -> tuple[str, set[str]]:
    """A libpq keyword DSN with each secret keyword's whole value masked (read as libpq reads it: quotes, backslash
    escapes, "," ";" and quotes in a bare value), and those values."""
    secrets: set[str] = set()

    def one(m: re.Match[str]) -> str:
        if not m.group("value") or not _is_secret_name(m.group("name")):
            return m.group(0)
        value = m.group("value")
        quoted = value[:1] == "'"
        inner = value[1:-1] if quoted and len(value) > 1 and value.endswith("'") else value.lstrip("'")
        secrets.update(_forms(inner))
        shown = f"'{MASK}'" if quoted else MASK
        return f"{m.group('name')}{m.group('sep')}{shown}"

    masked = _DSN_PAIR.sub(one, dsn)
    try:
        from psycopg.conninfo import conninfo_to_dict

        parsed = conninfo_to_dict(dsn)
    except Exception:  # not libpq's to read (or no psycopg): the pattern above masked each value to its end
        parsed = {}
    secrets.update(v for key, value in parsed.items() if _is_secret_name(key) for v in _forms(str(value)))
    return masked, secrets


def _mask_one(text: str) -> tuple[str, set[str]]:
    """One URL or keyword DSN masked by parsing it, and the secrets found (see :func:`mask_url`)."""
    parsed = _mask_one_url(text)
    if parsed is not None:
        return parsed
    if "://" not in text and "=" in text:
        return _mask_one_dsn(text)
    return text, set()


def _secrets_of(url: str, parsed: set[str] | None = None) -> set[str]:
    """Every secret of one URL or DSN: what parsing it finds (``parsed`` when already parsed), and what the
    free-text patterns find in it."""
    found = set(_mask_one(url)[1] if parsed is None else parsed)
    for m in _USERINFO.finditer(url):
        web = bool(m.group(1))
        user, colon, password = (m.group(2) if web else m.group(4)).partition(":")
        found.update({password} if colon else ({user} if web else set()))
    for q in _QUERY_PARAM.finditer(url):
        if q.group(3) and _is_secret_name(q.group(2), query=True):
            found.add(q.group(3))
    for m in _pairs(url):
        value = m.group("eqvalue") if m.group("eq") is not None else m.group("value")
        found.add(value[1:-1] if value[:1] in {"'", '"'} and len(value) > 1 else value)
    return found


def _remember_values(values: set[str]) -> None:
    """Mask each of ``values`` (and its percent-decoded form) wherever it appears from now on; short ones are not
    kept (they would mask ordinary words)."""
    found = {v for s in values for v in (s, unquote(s)) if len(v) >= _MIN_KNOWN and v != MASK}
    if found - _known:
        with _known_lock:
            _known.update(found)


def remember(url: str) -> None:
    """Mask the secrets of ``url`` (password, secret parameters) wherever they appear from now on, in this process.

    Call it where a credential-bearing URL enters the process (settings, store URLs); :func:`mask_url` does.
    """
    _remember_values(_secrets_of(url))


_TELEMETRY_PREFIXES = ("OTEL_EXPORTER_OTLP_", "OPENLINEAGE_")


def remember_telemetry(environ: Mapping[str, str]) -> None:
    """Mask the credentials of the OTLP and OpenLineage settings in ``environ`` wherever they appear from now on.

    Their exporters and transports log the URLs they retry (urllib3: ``...?api_key=...``) and gRPC endpoints
    written ``user:password@host:port`` without a scheme, which no pattern can tell from text; headers
    (``OTEL_EXPORTER_OTLP_HEADERS=authorization=Bearer x,api-key=y``) are secret values throughout.
    """
    for name, value in environ.items():
        if not name.startswith(_TELEMETRY_PREFIXES) or not value:
            continue
        if name.endswith("HEADERS"):  # name=value pairs: every value is secret
            _remember_values({p.partition("=")[2].strip() for p in value.split(",")})
        elif re.search(r"KEY|TOKEN|SECRET|PASSWORD|CREDENTIAL", name.removeprefix("OTEL_EXPORTER_OTLP_")):
            _remember_values({value})
        else:
            remember(value if "://" in value else f"endpoint://{value}")


def mask_text(text: object) -> str:
    """``str(text)`` with every credential masked (see the module docstring for what counts).

    Args:
        text: any message: an exception's text, a log line, a rendered setting.

    Returns:
        The same text, each secret replaced by ``***``; text without secrets is returned unchanged.
    """
    s = str(text)
    if not s:
        return s
    for secret in sorted(_known, key=len, reverse=True):  # longest first: one may contain another
        s = s.replace(secret, MASK)
    s = _PEM.sub(lambda m: f"-----BEGIN {m.group(1)}-----{MASK}", s)
    s = _USERINFO.sub(_userinfo, s)
    s = _TOKEN.sub(_slashed, s) if "@" in s and "://" in s else s
    s = _AUTH_HEADER.sub(_auth, s)
    s = _BEARER.sub(lambda m: f"{m.group(1)} {MASK}", s)
    s = _TOKEN_SHAPE.sub(MASK, s) if any(h in s for h in TOKEN_HINTS) else s
    s = _elements(s) if "<" in s else s
    s = _elements(s, escaped=True) if "&" in s or "\\" in s else s
    s = _QUERY_PARAM.sub(_query_param, s)
    out: list[str] = []
    last = 0
    for m in _pairs(s):
        out += [s[last : m.start()], _pair(m)]
        last = m.end()
    s = "".join(out) + s[last:]
    if "-" in s:  # after the pairs, so that a flag's value hides none (--x 'k=S3', mysql -pS3<token: x)
        s = _ARGV_FLAG.sub(lambda m: _argv_flag(m, 0), s)  # an argument list first: -x y'--password', 'z'
        lower = s.lower()
        s = _tools(s) if any(h in lower for h in _TOOL_HINTS) else s
        s = _shell_flags(s, 0)
    s = _elements(s, cut_short=True) if "<" in s else s
    return _elements(s, escaped=True, cut_short=True) if "&" in s or "\\" in s else s


def mask_url(url: str) -> str:
    """A URL or libpq keyword DSN with its password, secret parameters and tokens masked.

    ``postgresql://app:pw@db:5432/aios?sslpassword=x`` -> ``postgresql://app:***@db:5432/aios?sslpassword=***``;
    ``host=db user=app password='p w'`` -> ``host=db user=app password='***'``. The text is parsed as the one URL or
    DSN it is (see the module docstring): each secret is masked whole, to the next ``&`` in a query, to the last
    ``@`` before the query in a userinfo. The secrets found are remembered (:func:`remember`), so a later message
    quoting one of them, or a piece of one, bare is masked too.
    """
    masked, secrets = _mask_one(url)
    _remember_values(_secrets_of(url, secrets))
    return mask_text(masked)


def one_line_error(e: BaseException, limit: int = 500) -> str:
    """``<ErrorType>: <masked message>`` on one line: how errors reach users, logs and gRPC callers; control characters
    and invisible direction marks in it are shown as escapes (:func:`.visible.visible`).

    Args:
        e: the exception.
        limit: longest message kept (characters, after masking).
    """
    # one line a person reads (a terminal, a log, the Flyte console): control characters escaped, never obeyed
    text = visible(" ".join(mask_text(e).split()))
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


_logs_masked = False


def mask_logs() -> None:
    """Mask every log record this process creates from now on, message and exception text (idempotent)."""
    global _logs_masked
    with _known_lock:
        if _logs_masked:
            return
        _logs_masked = True
    previous = logging.getLogRecordFactory()

    def factory(*args: object, **kwargs: object) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is the logging module's to report, unchanged
            return record
        record.msg, record.args = mask_text(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = mask_text(logging.Formatter().formatException(record.exc_info))
        return record

    logging.setLogRecordFactory(factory)
