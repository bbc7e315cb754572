"""Parse one document into plain text: sniff the real format, decode, extract, or quarantine.

Formats: PDF (pypdf; scanned pages through pdftoppm + tesseract), DOCX, e-mail (stdlib ``email``,
attachments parsed one level deep), HTML, plain text in any encoding (charset-normalizer), images
(OCR). The format is sniffed from the bytes, not trusted from the extension, so binary garbage named
``.txt`` is caught. ZIP archives other than DOCX are quarantined (``archive``), not expanded:
expanding untrusted archives invites zip bombs and path tricks, and a batch should name its files.
What is expanded (DOCX members, PDF streams, image pixels, attachments of an e-mail) is checked against
the decompression budget of :class:`Limits` first (``decompression_bomb``, see ``containers``).
"""

from __future__ import annotations

import email
import email.policy
import html.parser
import re
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

from tasks.documents.containers import Budget
from tasks.documents.readers import Quarantined, ocr_image, read_docx, read_pdf

IMAGE_MAGIC = (b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"II*\x00", b"MM\x00*", b"BM")
TEXT_EXT = {".txt", ".md", ".csv", ".json", ".xml", ".log", ".text", ""}
EMAIL_EXT = {".eml", ".msg", ".mbox"}
HTML_EXT = {".html", ".htm", ".xhtml"}


@dataclass
class Parsed:
    """Plain text of a document and how it was obtained."""

    text: str
    fmt: str
    pages: int = 1
    ocr: bool = False
    encoding: str = "utf-8"
    attachments: int = 0


@dataclass(frozen=True)
class Limits:
    """Parser limits (from the workflow options)."""

    max_pages: int = 50
    ocr_pages: int = 3
    min_chars: int = 20
    max_chars: int = 200_000
    max_expanded: int = 50 << 20
    max_ratio: float = 100.0

    @property
    def budget(self) -> Budget:
        """The decompression budget of one document."""
        return Budget(self.max_expanded, self.max_ratio)


def sniff(head: bytes, suffix: str) -> str:
    """Real format of a document from its first bytes, then its extension."""
    if head.startswith(b"%PDF") or b"%PDF-" in head[:1024]:
        return "pdf"
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return "docx" if suffix in {".docx", ".docm", ".dotx"} else "zip"
    if head.startswith(IMAGE_MAGIC):
        return "image"
    if head.startswith((b"\x1f\x8b", b"7z\xbc\xaf", b"Rar!", b"BZh")):
        return "zip"
    if head.startswith(b"\xd0\xcf\x11\xe0"):  # OLE2 (Outlook .msg, legacy .doc/.xls)
        return "unsupported"
    if suffix in EMAIL_EXT or _looks_like_mail(head):
        return "email"
    if suffix in HTML_EXT or re.match(rb"(?is)^\s*(<!doctype html|<html)", head[:512]):
        return "html"
    return "text"


_HEADER_LINE = re.compile(rb"^[!-9;-~]+:[ \t]")
_MAIL_FIELD = re.compile(rb"(?im)^(from|to|subject|date|message-id|received|delivered-to|return-path|mime-version):")


def _looks_like_mail(head: bytes) -> bool:
    """RFC 822: the first line is a header field and well-known mail fields follow."""
    return bool(_HEADER_LINE.match(head) or head.startswith(b"From ")) and len(_MAIL_FIELD.findall(head[:4096])) >= 2


def decode(data: bytes) -> tuple[str, str]:
    """Decode bytes of unknown encoding; binary content is quarantined (``binary_content``)."""
    if not data.strip():
        raise Quarantined("empty", "no content")
    if data.startswith((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")) or b"\x00" not in data[:4096]:
        try:
            return data.decode("utf-8-sig"), "utf-8"
        except UnicodeDecodeError:
            pass
    from charset_normalizer import from_bytes

    best = from_bytes(data[:1_000_000]).best()
    if best is None or best.encoding is None:
        raise Quarantined("binary_content", "no text encoding fits")
    text = data.decode(best.encoding, errors="replace")
    if _printable_share(text) < 0.85:
        raise Quarantined("binary_content", f"mostly non-printable as {best.encoding}")
    return text, str(best.encoding)


def _printable_share(text: str) -> float:
    sample = text[:20_000]
    if not sample:
        return 0.0
    ok = sum(1 for ch in sample if ch.isprintable() or ch in "\r\n\t")
    return ok / len(sample)


_HIDING = re.compile(
    r"display\s*:\s*none|visibility\s*:\s*(?:hidden|collapse)|mso-hide\s*:\s*all|color\s*:\s*transparent"
    r"|(?<![-\w])font-size\s*:\s*0*\.?0+(?:px|pt|em|rem|%)?\s*(?:!important\s*)?(?:;|$)"
    r"|(?<![-\w])opacity\s*:\s*0*\.?0+\s*(?:!important\s*)?(?:;|$)",
    re.IGNORECASE,
)
"""CSS declarations that hide an element's text from whoever reads the page (``max-height:0`` and the like count only
with ``overflow:hidden``, see :func:`_hides`)."""
_CLIPPED = re.compile(
    r"(?<![-\w])(?:max-)?(?:height|width)\s*:\s*0*\.?0+(?:px|pt|em|rem|%)?\s*(?:!important\s*)?(?:;|$)", re.I
)
_OVERFLOW_HIDDEN = re.compile(r"overflow\s*:\s*hidden", re.IGNORECASE)
_SIMPLE_SELECTOR = re.compile(r"([a-zA-Z][a-zA-Z0-9]*)?(?:([.#])([-\w]+))?")


_CSS_COMMENT = re.compile(r"/\*.*?(?:\*/|$)", re.DOTALL)


def _css_plain(css: str) -> str:
    """CSS without comments and escapes, as a browser reads it: ``d\\isplay:/**/none`` and ``\\64 isplay:none``
    are ``display:none``."""
    css = _CSS_COMMENT.sub("", css)
    css = re.sub(r"\\([0-9a-fA-F]{1,6})\s?", lambda m: chr(min(int(m.group(1), 16), 0x10FFFF) or 0xFFFD), css)
    return re.sub(r"\\(.)", r"\1", css, flags=re.DOTALL)


def _hides(declarations: str) -> bool:
    """Whether CSS ``declarations`` hide the text of the element they apply to."""
    plain = _css_plain(declarations)
    return bool(_HIDING.search(plain)) or (bool(_CLIPPED.search(plain)) and bool(_OVERFLOW_HIDDEN.search(plain)))


def _css_rules(css: str) -> list[tuple[str, str]]:
    """``(selectors, declarations)`` of every innermost rule of a style sheet, inside ``@media`` blocks too (text
    hidden on some screens is hidden from some readers)."""
    css = _CSS_COMMENT.sub("", css)
    rules: list[tuple[str, str]] = []
    stack: list[int] = []
    start = 0
    for i, ch in enumerate(css):
        if ch == "{":
            stack.append(start)
            start = i + 1
        elif ch == "}" and stack:
            head_start = stack.pop()
            body = css[start:i]
            if "{" not in body:
                head = css[head_start : start - 1]
                rules.append((head.rsplit("}", 1)[-1].rsplit(";", 1)[-1].strip(), body))
            start = i + 1
    return rules


class _HTMLText(html.parser.HTMLParser):
    """What a person reading the page sees, and what is there but hidden from them.

    Text is hidden when its element (or one around it) has the ``hidden`` attribute, is a folded ``<details>``, has an
    inline style that hides it (:func:`_hides`: ``display:none``, ``visibility:hidden``, ``font-size:0``,
    ``opacity:0``, ..., read without CSS comments and escapes), or a tag, class or
    id a style sheet hides in a simple selector (``.x``, ``#y``, ``span``, ``p.x``); a hiding rule with any other
    selector (``div > p``, ``[title]``, ``:first-child``) is ``unresolved``: text of the page may be hidden by it.
    Style sheets are read where they stand; a rule applies to the elements after it (sheets are in the head).
    """

    SKIP = frozenset({"script", "style", "noscript", "template", "head", "title"})
    BLOCK = frozenset({"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "section", "article", "td"})
    VOID = frozenset(
        {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source", "track", "wbr"}
    )

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.hidden_parts: list[str] = []
        self.unresolved = False
        self._skip = 0
        self._style = False
        self._css: list[str] = []
        self._hidden_depth = 0  # open elements since the outermost hidden one (0: not hidden)
        self._tags: set[str] = set()
        self._classes: set[str] = set()
        self._ids: set[str] = set()

    def _learn(self, css: str) -> None:
        for selectors, declarations in _css_rules(css):
            if not _hides(declarations):
                continue
            for selector in (x.strip() for x in selectors.split(",")):
                m = _SIMPLE_SELECTOR.fullmatch(selector)
                if not selector or m is None or not (m.group(1) or m.group(3)):
                    self.unresolved = True
                elif m.group(3):
                    (self._classes if m.group(2) == "." else self._ids).add(m.group(3))
                else:
                    self._tags.add(m.group(1).lower())

    def _is_hidden(self, tag: str, attrs: list[tuple[str, str | None]]) -> bool:
        a = {k.lower(): v or "" for k, v in attrs}
        if "hidden" in a or _hides(a.get("style", "")) or tag in self._tags:
            return True
        if tag == "details" and "open" not in a:  # folded: shown only when its reader opens it (summary included)
            return True
        return a.get("id", "") in self._ids or bool(self._classes.intersection(a.get("class", "").split()))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "style":
            self._style, self._css = True, []
        if tag in self.SKIP:
            self._skip += 1
        elif tag in self.BLOCK:
            (self.hidden_parts if self._hidden_depth else self.parts).append("\n")
        if tag in self.VOID:
            return
        if self._hidden_depth:
            self._hidden_depth += 1
        elif self._is_hidden(tag, attrs):
            self._hidden_depth = 1

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.BLOCK:
            (self.hidden_parts if self._hidden_depth else self.parts).append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "style" and self._style:
            self._style = False
            self._learn("".join(self._css))
        if tag in self.SKIP and self._skip:
            self._skip -= 1
        if tag not in self.VOID and self._hidden_depth:
            self._hidden_depth -= 1

    def handle_data(self, data: str) -> None:
        if self._style:
            self._css.append(data)
        elif not self._skip:
            (self.hidden_parts if self._hidden_depth else self.parts).append(data)


def _squeeze(parts: list[str]) -> str:
    return re.sub(r"[ \t]+", " ", re.sub(r"\n\s*\n+", "\n\n", "".join(parts))).strip()


@dataclass(frozen=True)
class HtmlViews:
    """An HTML page as a person sees it (``visible``), the text it holds hidden from them (``hidden``), and whether
    a style rule the reader cannot place may hide more (``unresolved``)."""

    visible: str
    hidden: str
    unresolved: bool


def html_views(markup: str) -> HtmlViews:
    """:class:`HtmlViews` of an HTML page (scripts, styles and head dropped)."""
    p = _HTMLText()
    p.feed(markup)
    p.close()
    return HtmlViews(_squeeze(p.parts), _squeeze(p.hidden_parts), p.unresolved)


def html_to_text(markup: str) -> str:
    """Visible text of an HTML page (scripts, styles, head and hidden elements dropped)."""
    return html_views(markup).visible


def read_html(markup: str) -> str:
    """The text of an HTML page the pipeline decides on: what a person sees, or quarantined when the page holds an
    amount hidden from them, or hides text by a style rule this reader cannot place while it names an amount; and,
    the backstop that does not rely on this reader's model of what a browser shows (:func:`check_views`), when an
    amount anywhere in the markup (attributes, comments, style sheets, text this reader left out) is not in the text
    read, or is larger than the total read.

    An invoice whose visible total needed a sign-off once hid ``Total amount due: EUR 950.00`` in a ``display:none``
    element (or a ``hidden`` one): the total read was the hidden one, and the payment was allowed without it. A
    re-review then hid it in two dozen other ways (stray end tags, rules after the element, ``opacity:0%``, zero-width
    characters in the currency) or made the reader drop the visible total (``<noscript>``, CSS ``content``, a comment
    HTML5 ends early).

    Raises:
        Quarantined: ``hidden_text`` or ``total_not_largest``.
    """
    from tasks.documents.extract import amounts_in
    from tasks.documents.pii import normalize

    views = html_views(markup)
    if amounts_in(normalize(views.hidden)):
        raise Quarantined("hidden_text", "the page holds an amount its reader does not see")
    if views.unresolved and amounts_in(normalize(markup)):
        raise Quarantined("hidden_text", "a style rule may hide text of a page that names an amount")
    check_views(views.visible, [views.hidden, *markup_views(markup)], styled=True)
    return views.visible


class _AllText(html.parser.HTMLParser):
    """Every text a page carries, shown or not: all character data (head, scripts, style sheets, skipped and hidden
    elements), comments, declarations, and the attributes that put text in front of a person (``alt``, ``title``,
    ``value``, ``placeholder``, ``label``, ``content``). Not addresses, ids or classes (``src="cid:...$04826125"``
    read as USD 4,826,125 in a real mail)."""

    SHOWN_ATTRIBUTES = frozenset({"alt", "title", "value", "placeholder", "label", "content", "aria-label"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.parts += ["\n", *(v for k, v in attrs if v and k.lower() in self.SHOWN_ATTRIBUTES), "\n"]

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def handle_data(self, data: str) -> None:
        self.parts.append(data)

    def handle_comment(self, data: str) -> None:
        self.parts += ["\n", data, "\n"]

    def handle_decl(self, decl: str) -> None:
        self.parts += ["\n", decl, "\n"]

    def unknown_decl(self, data: str) -> None:
        self.parts += ["\n", data, "\n"]

    def handle_pi(self, data: str) -> None:
        self.parts += ["\n", data, "\n"]


def markup_views(markup: str) -> list[str]:
    """Every text an HTML page carries (:class:`_AllText`), and the same read as CSS (escapes decoded): an amount in
    a shown attribute, a comment, a style sheet's ``content`` or a part of the page the visible reader skips is in
    one of these."""
    p = _AllText()
    p.feed(markup)
    p.close()
    text = "".join(p.parts)
    return [text, _css_plain(text)]


def check_views(decided: str, others: list[str], *, styled: bool) -> None:
    """Quarantine a document unless the text decided on holds every amount its other views hold (``others``: hidden
    text, raw markup, a mail's other parts), and, where styling can hide or reorder what a person sees
    (``styled``: HTML), unless the total read is the largest amount anywhere in it.

    Raises:
        Quarantined: ``hidden_text`` (an amount outside the text read) or ``total_not_largest``.
    """
    from tasks.documents.extract import amounts_in, total_in
    from tasks.documents.pii import normalize

    text = normalize(decided)
    seen = {(v, c) for v, c in amounts_in(text)}
    anywhere = {(v, c) for other in others for v, c in amounts_in(normalize(other))}
    outside = sorted(anywhere - seen, key=repr)
    if outside:
        value, currency = outside[0]
        shown = f"{currency} {value:,.2f}" if value is not None else f"an unreadable {currency} amount"
        raise Quarantined("hidden_text", f"{shown} is in the document but not in the text read"[:79])
    if styled:
        total = total_in(text)
        biggest = max((v for v, _ in seen | anywhere if v is not None), default=None)
        if biggest is not None and (total is None or biggest > total):
            raise Quarantined("total_not_largest", f"an amount above the total read ({biggest:,.2f}) is in it"[:79])


def _email(data: bytes, limits: Limits, depth: int) -> Parsed:
    msg = email.message_from_bytes(data, policy=email.policy.default)
    if not isinstance(msg, EmailMessage):  # pragma: no cover - policy.default always builds EmailMessage
        raise Quarantined("corrupt", "not an e-mail message")
    parts = [f"Subject: {msg.get('subject', '')}", f"From: {msg.get('from', '')}", f"To: {msg.get('to', '')}"]
    body = msg.get_body(preferencelist=("plain", "html"))
    if body is not None:
        content = _part_text(body)
        parts.append(read_html(content) if body.get_content_type() == "text/html" else content)
        if body.get_content_type() == "text/plain":
            _same_amounts(msg, content)
    n_att = 0
    for att in msg.iter_attachments():
        n_att += 1
        payload = att.get_payload(decode=True)
        if not isinstance(payload, bytes) or depth >= 1:
            continue
        name = att.get_filename() or "attachment"
        try:
            sub = parse_bytes(payload, Path(name).suffix.lower(), limits, depth=depth + 1)
            parts.append(f"\n[attachment {Path(name).suffix.lower() or 'file'}]\n{sub.text}")
        except Quarantined as q:
            if q.reason not in ATTACHMENT_LEFT_OUT:  # read in part, or not read in this run: neither is the mail
                raise Quarantined(q.reason, f"in an attachment: {q.detail}"[:79]) from None
            parts.append("\n[attachment not readable]")
    text = "\n".join(parts)
    if depth == 0:  # every text part of the mail, nested messages included, against what was read of it
        others, styled = _text_parts(msg)
        check_views(text, others, styled=styled)
    return Parsed(text=text, fmt="email", attachments=n_att)


def _text_parts(msg: EmailMessage) -> tuple[list[str], bool]:
    """The texts of every ``text/*`` part of a mail (each alternative, inline parts, forwarded messages), HTML ones
    as all their views (:func:`html_views`, :func:`markup_views`), and whether any part is HTML."""
    out: list[str] = []
    styled = False
    for part in msg.walk():
        if part.is_multipart() or part.get_content_maintype() != "text":
            continue
        content = _part_text(part)  # type: ignore[arg-type]
        if part.get_content_subtype() == "html" or sniff(content[:4096].encode(errors="replace"), ".html") == "html":
            views = html_views(content)
            out += [views.visible, views.hidden, *markup_views(content)]
            styled = True
        else:
            out.append(content)
    return out, styled


ATTACHMENT_LEFT_OUT = frozenset(
    {"empty", "no_text", "archive", "encrypted", "corrupt", "unsupported_format", "binary_content", "too_large"}
)
"""Why an attachment may be left out of its mail's text: its own bytes, the same in every run (no text, an archive,
encrypted, corrupt). Any other reason quarantines the mail with it: cut at a launch limit (``truncated``), a bomb by
the launch's budget, OCR not installed here. A 2-page invoice attached to a mail launched with ``max_pages=1`` was
left out, and the mail was decided on the amount its body named (review of 2026-12-05)."""


def _same_amounts(msg: EmailMessage, plain: str) -> None:
    """Quarantine (``alternatives_differ``) a mail whose HTML alternative, the one mail programs show, names other
    amounts than the plain text read here: a plain ``EUR 950.00`` beside an HTML ``EUR 95,000.00`` was decided at 950
    and allowed without the sign-off the amount a person saw needs. (``hidden_text`` when the HTML hides one.)"""
    from tasks.documents.extract import amounts_in

    markup = msg.get_body(preferencelist=("html",))
    if markup is None or markup.get_content_type() != "text/html":
        return
    seen = read_html(_part_text(markup))
    if sorted(amounts_in(seen), key=repr) != sorted(amounts_in(plain), key=repr):
        raise Quarantined("alternatives_differ", "the mail's HTML and plain texts name different amounts")


def _part_text(part: EmailMessage) -> str:
    try:
        return str(part.get_content())
    except (LookupError, UnicodeError, AssertionError, ValueError):
        raw = part.get_payload(decode=True)
        return decode(raw)[0] if isinstance(raw, bytes) else ""


def parse_bytes(data: bytes, suffix: str, limits: Limits, depth: int = 0) -> Parsed:
    """Parse in-memory bytes (attachments, SQL rows). PDFs and DOCX go through a temporary file."""
    if not data.strip():
        raise Quarantined("empty", "no content")
    fmt = sniff(data[:4096], suffix)
    if fmt in {"pdf", "docx"}:
        import tempfile

        with tempfile.NamedTemporaryFile(suffix=f".{fmt}") as tmp:
            tmp.write(data)
            tmp.flush()
            return parse_file(Path(tmp.name), limits, depth=depth)
    return _parse_sniffed(fmt, data, limits, depth)


def _parse_sniffed(fmt: str, data: bytes, limits: Limits, depth: int) -> Parsed:
    if fmt == "zip":
        raise Quarantined("archive", "archives are not expanded")
    if fmt == "unsupported":
        raise Quarantined("unsupported_format", "OLE2 container")
    if fmt == "image":
        return Parsed(text=ocr_image(data, limits.budget), fmt="image", ocr=True)
    if fmt == "email":
        return _email(data, limits, depth)
    text, enc = decode(data)
    if fmt == "html":
        return Parsed(text=read_html(text), fmt="html", encoding=enc)
    return Parsed(text=text, fmt="text", encoding=enc)


def parse_file(path: Path, limits: Limits, depth: int = 0) -> Parsed:
    """Parse a local file; raises :class:`Quarantined` with a reason code when it cannot be used."""
    with path.open("rb") as f:
        head = f.read(4096)
    if not head.strip():
        raise Quarantined("empty", "no content")
    fmt = sniff(head, path.suffix.lower())
    if fmt == "pdf":
        text, pages, ocr = read_pdf(
            path,
            max_pages=limits.max_pages,
            ocr_pages=limits.ocr_pages,
            min_chars=limits.min_chars,
            budget=limits.budget,
        )
        parsed = Parsed(text=text, fmt="pdf", pages=pages, ocr=ocr)
    elif fmt == "docx":
        parsed = Parsed(text=read_docx(path, limits.budget), fmt="docx")
    else:
        parsed = _parse_sniffed(fmt, path.read_bytes(), limits, depth)
    return finish(parsed, limits)


_SURROGATE = re.compile("[\ud800-\udfff]")


def no_surrogates(text: str) -> str:
    """``text`` with UTF-16 surrogates made whole: a pair becomes the character it encodes, a lone one U+FFFD.

    A PDF's ToUnicode map may map a glyph to a lone surrogate (``<01> <D800>``), which pypdf passes through: such a
    string cannot be encoded as UTF-8, so the chunk's table could not be written and one vendor's PDF failed the whole
    batch with a traceback (``UnicodeEncodeError: surrogates not allowed``) instead of being read like any other.
    """
    if not _SURROGATE.search(text):
        return text
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def finish(parsed: Parsed, limits: Limits) -> Parsed:
    """Normalize whitespace and surrogates; refuse documents with no usable text, and ones longer than the limit.

    A text over ``max_chars`` was once cut there, which is a launch option: a cut inside ``EUR 95,000.00`` left
    ``EUR 95``, and the payment was decided and posted at 95 without the sign-off 95,000 needs (a cut before the
    total line made the amount the largest other one). A document is read whole or quarantined ``truncated``.
    """
    text = re.sub(r"[ \t\x0b\x0c\r]+", " ", no_surrogates(parsed.text).replace("\x00", " "))
    text = re.sub(r"\n\s*\n+", "\n\n", text).strip()
    if len(text) > limits.max_chars:
        msg = f"{len(text)} characters of text, more than max_chars={limits.max_chars}; raise it to read it whole"
        raise Quarantined("truncated", msg)
    if len(text) < limits.min_chars:
        raise Quarantined("no_text", f"{len(text)} characters of text")
    parsed.text = text
    return parsed
