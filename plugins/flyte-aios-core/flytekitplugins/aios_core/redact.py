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
* every secret of a URL this process has masked or :func:`remember`-ed before, wherever it appears: a
  driver may quote a bare token of the DSN (libpq: ``invalid percent-encoded token: "<password>"``).

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
from collections.abc import Mapping
from urllib.parse import unquote

from flytekitplugins.aios_core.visible import visible

MASK = "***"
_MIN_KNOWN = 4  # shorter values would mask ordinary words; URL-shaped occurrences are masked anyway
_known: set[str] = set()
_known_lock = threading.Lock()


# scheme://userinfo@ : for web URLs the userinfo runs to the LAST "@" before the authority ends ("/", "?", "#",
# blanks, quotes), as urllib splits it. For every other scheme (libpq and SQLAlchemy DSNs) it runs to the last "@"
# before the next "/" on the line: libpq takes a password with blanks, quotes, "#", "?" or "<" as written (and then
# quotes it back in its own errors), so no character but "/" may end it; an unencoded "@" is still covered.
_USERINFO = re.compile(
    r"(?i)\b(?:((?:https?|wss?))://([^\s/?#'\"<>@]*(?:@[^\s/?#'\"<>@]*)*)"
    r"|([a-z][a-z0-9+.\-]*)://([^/\r\n]*))@"
)
# signed-URL and OAuth query parameters whose short names say nothing to _SENSITIVE_NAME (masked in queries only)
_QUERY_SECRET = re.compile(r"(?i)([?&](?:sig|key|code|auth|x-amz-signature|x-goog-signature)=)[^&\s#'\"<>]+")

_SENSITIVE_NAME = (
    r"[\w.\-]*?(?:pass(?:word|wd)?|pwd|secret|token|api[_\-]?key|access[_\-]?key|private[_\-]?key"
    r"|credentials?|signature)[\w\-]*"
)
# name=value or "name": "value" (quoted or bare value), in query strings, DSNs, reprs and header dumps
_PAIR = re.compile(
    rf"""(?ix)
    (?P<name>['"]?\b{_SENSITIVE_NAME}['"]?)
    (?P<sep>\s*(?:=|:(?!//))\s*)
    (?P<value>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|[^\s&;,'"}}\]\)]+)
    """
)
_AUTH_HEADER = re.compile(
    r"""(?i)(['"]?\b(?:proxy-)?authorization['"]?\s*[:=]\s*['"]?)(?:(basic|bearer|token|digest|negotiate)\s+)?"""
    r"""[^\s'",;}\]]+"""
)
# a PEM private key written where a reference was expected (AIOS_SIGNING_KEY='-----BEGIN PRIVATE KEY-----...'),
# also as a repr with escaped newlines, also cut short: everything after the BEGIN line to its END line
_PEM = re.compile(r"-----BEGIN ([A-Z0-9 ]*PRIVATE KEY)-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\Z)", re.S)
_BEARER = re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9\-._~+/]+=*")


def _userinfo(m: re.Match[str]) -> str:
    if m.group(1):  # a web URL: the whole userinfo
        return f"{m.group(1)}://{MASK}@"
    scheme, info = m.group(3), m.group(4)
    user, colon, _ = info.partition(":")
    return f"{scheme}://{user}:{MASK}@" if colon else m.group(0)


def _pair(m: re.Match[str]) -> str:
    value = m.group("value")
    quote = value[0] if value[:1] in {"'", '"'} else ""
    return f"{m.group('name')}{m.group('sep')}{quote}{MASK}{quote}"


def _auth(m: re.Match[str]) -> str:
    scheme = f"{m.group(2)} " if m.group(2) else ""
    return f"{m.group(1)}{scheme}{MASK}"


def _secrets_of(url: str) -> set[str]:
    found: set[str] = set()
    for m in _USERINFO.finditer(url):
        web = bool(m.group(1))
        user, colon, password = (m.group(2) if web else m.group(4)).partition(":")
        found.update({password} if colon else ({user} if web else set()))
    found.update(q.group(0).split("=", 1)[1] for q in _QUERY_SECRET.finditer(url))
    for m in _PAIR.finditer(url):
        value = m.group("value")
        found.add(value[1:-1] if value[:1] in {"'", '"'} else value)
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
    s = _AUTH_HEADER.sub(_auth, s)
    s = _BEARER.sub(lambda m: f"{m.group(1)} {MASK}", s)
    s = _QUERY_SECRET.sub(lambda m: f"{m.group(1)}{MASK}", s)
    return _PAIR.sub(_pair, s)


def mask_url(url: str) -> str:
    """A URL or libpq keyword DSN with its password, secret parameters and tokens masked.

    ``postgresql://app:pw@db:5432/aios?sslpassword=x`` -> ``postgresql://app:***@db:5432/aios?sslpassword=***``;
    ``host=db user=app password='p w'`` -> ``host=db user=app password='***'``. The secrets found are
    remembered (:func:`remember`), so a later message quoting one of them bare is masked too.
    """
    remember(url)
    return mask_text(url)


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
