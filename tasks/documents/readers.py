"""Format readers for binary documents: PDF (pypdf, OCR fallback), DOCX (python-docx), images (tesseract).

Every reader returns plain text or raises :class:`Quarantined` with a reason code. Error details
name the exception type only: exception messages of parsers can quote document bytes, and document
content must never reach a log, an audit record or an output. Each reader checks its container against a
decompression :class:`~tasks.documents.containers.Budget` before the parser expands it.
"""

from __future__ import annotations

import io
import logging
import os
import re
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tasks.documents.containers import Budget

log = logging.getLogger(__name__)


class Quarantined(Exception):
    """The document cannot be processed; ``reason`` is a stable code, ``detail`` holds no content."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


def ocr_available() -> bool:
    """True when the tesseract binary and pytesseract are installed."""
    try:
        import pytesseract  # noqa: F401
    except ImportError:
        return False
    return shutil.which("tesseract") is not None


def ocr_image(data: bytes, budget: Budget | None = None) -> str:
    """Text of an image (PNG, JPEG, TIFF, ...) through tesseract OCR (English); its pixels are budgeted first."""
    from PIL import Image, UnidentifiedImageError

    from tasks.documents.containers import BOMB, Budget, check_image

    try:
        with Image.open(io.BytesIO(data)) as img:
            check_image(img, budget or Budget())  # from the header, before a pixel is decoded
            if not ocr_available():
                raise Quarantined("ocr_unavailable", "tesseract is not installed")
            img.load()
            gray = img.convert("L")
    except Image.DecompressionBombError:
        raise Quarantined(BOMB, "image over Pillow's pixel limit") from None
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise Quarantined("corrupt", type(e).__name__) from None
    import pytesseract

    return str(pytesseract.image_to_string(gray, lang="eng", timeout=120))


OCR_DPI = 150
"""Resolution pages are rendered at for OCR (one byte a gray pixel)."""


def _ocr_pdf(path: Path, pages: list[int], budget: Budget) -> dict[int, str]:
    """OCR text of the given pages (1-based), each rendered whole at :data:`OCR_DPI`."""
    if shutil.which("pdftoppm") is None or not ocr_available():
        raise Quarantined("ocr_unavailable", "pdftoppm or tesseract is not installed")
    out: dict[int, str] = {}
    with tempfile.TemporaryDirectory(prefix="aios-ocr-") as tmp:
        for k in pages:
            cmd = ["pdftoppm", "-r", str(OCR_DPI), "-gray", "-png", "-f", str(k), "-l", str(k), str(path), f"{tmp}/p"]
            proc = subprocess.run(cmd, capture_output=True, timeout=120, check=False)
            rendered = sorted(Path(tmp).glob("p*.png"))
            if proc.returncode != 0 or len(rendered) != 1:
                raise Quarantined("corrupt", f"pdftoppm exit {proc.returncode} on page {k}")
            out[k] = ocr_image(rendered[0].read_bytes(), budget)
            rendered[0].unlink()
    return out


def read_pdf(
    path: Path, *, max_pages: int, ocr_pages: int, min_chars: int, budget: Budget | None = None
) -> tuple[str, int, bool]:
    """Text, page count and whether OCR was used, for a PDF file (streams budgeted before they are inflated).

    A page without a text layer (an image and under ``min_chars`` of text: a scan) is read by OCR, whether the whole
    PDF is scanned or only that page: a scanned page after a text page was once left out, and its total with it. A
    PDF with more such pages than ``ocr_pages``, or any with OCR off (``ocr_pages=0``, which once rendered every
    page), is not read whole, and is quarantined ``truncated``.
    """
    from tasks.documents.containers import BOMB, Budget, pdf_limits

    budget = budget or Budget()
    with pdf_limits(budget):
        texts, scanned, sizes, marks, shown = _pdf_text(path, max_pages, budget, min_chars)
    n_pages = len(texts)
    whole = "\n".join(texts)
    if len(whole.strip()) < min_chars:  # no text layer worth the name: every page is read by OCR
        scanned = list(range(1, n_pages + 1))
    if not scanned:
        _check_shown(whole, marks, shown)
        return whole, n_pages, False
    if ocr_pages == 0:  # not read here, though another run would: not read whole
        raise Quarantined("truncated", f"{len(scanned)} page(s) without a text layer, and OCR is off (ocr_pages=0)")
    if len(scanned) > ocr_pages:  # the pages past ocr_pages would not be read: read whole or not at all
        msg = f"{len(scanned)} pages without a text layer, more than ocr_pages={ocr_pages}; raise it to read it whole"
        raise Quarantined("truncated", msg)
    for k in scanned:  # rendered whole or not at all: never cropped to fit the budget
        w, h = (round(v / 72 * OCR_DPI) for v in sizes[k - 1])
        if w * h > budget.max_bytes:
            msg = f"page {k} renders to {w}x{h} pixels at {OCR_DPI} dpi, over the {budget.max_bytes} byte budget"
            raise Quarantined(BOMB, msg)
    ocr = _ocr_pdf(path, scanned, budget)
    read = "\n".join(ocr.get(k + 1, t) for k, t in enumerate(texts))
    _check_shown(
        read, {k: m for k, m in marks.items() if k not in ocr}, {k: t for k, t in shown.items() if k not in ocr}
    )
    return read, n_pages, True


def _check_shown(text: str, marks: dict[int, set[str]], shown: dict[int, list[str]]) -> None:
    """A PDF whose annotations show an amount the text read lacks is quarantined (``hidden_text``), and one that
    shows text a person may not see (on a page its text layer was read from) is decided only when its total as read
    is its largest amount (``total_not_largest``), as an HTML page or a DOCX that hides text. (A page read by OCR is
    read as rendered, its annotations included.)"""
    from tasks.documents.parse import check_views

    others = [t for texts in shown.values() for t in texts]
    if others or any(marks.values()):
        check_views(text, others, styled=any(marks.values()))


def _pdf_text(
    path: Path, max_pages: int, budget: Budget, min_chars: int
) -> tuple[list[str], list[int], list[tuple[float, float]], dict[int, set[str]], dict[int, list[str]]]:
    """Each page's text layer, the pages that are scans (1-based), each page's size in points, how each page's text
    layer holds text a person may not see (:class:`tasks.documents.pdf_shown.ShownWatch`) and the text its
    annotations show (:func:`tasks.documents.pdf_shown.annotation_texts`), by page (1-based).

    A page is read by OCR when it draws an image (an XObject or inline) and has under ``min_chars`` of text, or
    draws one and holds text a person may not see and an amount (an OCR tool's text layer, or one laid over a picture
    of other figures), or draws text its text layer does not hold (a tiling pattern's, a Type3 font's) and holds an
    amount: what a person sees there is drawn, so its amounts are read by OCR, not from a text layer its sender
    wrote. (An image page whose text holds no amount is read from its text layer: an amount shown only in an image is
    not read.)"""
    from pypdf import PdfReader, get_configuration
    from pypdf.errors import FileNotDecryptedError, LimitReachedError, PdfReadError, PyPdfError

    from tasks.documents.containers import BOMB, check_pdf
    from tasks.documents.extract import amounts_in
    from tasks.documents.pdf_shown import ShownWatch, annotation_texts

    disputed = _DisputedKeys()
    try:
        with disputed:
            if disputed.blind:
                msg = (
                    "logging is disabled at WARNING for this process (logging.disable), which hides pypdf's report "
                    "of a dictionary key defined twice; lift it (logging.disable(logging.NOTSET)) to read PDFs"
                )
                raise Quarantined("check_unavailable", msg)
            reader = PdfReader(str(path), strict=False)
            if reader.is_encrypted and not _try_empty_password(reader):
                raise Quarantined("encrypted", "PDF needs a password")
            n_pages = len(reader.pages)
            if n_pages > max_pages:  # a total on a page not read would be missed: read whole or not at all
                msg = f"{n_pages} pages, more than max_pages={max_pages}; raise it to read it whole"
                raise Quarantined("truncated", msg)
            check_pdf(reader, budget, max_pages)
            parts, marks, shown, scanned = [], {}, {}, []
            cap = get_configuration().xform_maximum_invocations_per_extraction
            for k, page in enumerate(reader.pages):
                watch = ShownWatch(page)  # the same parse gives the text layer and what of it a person may not see
                text = page.extract_text(visitor_operand_before=watch.before, visitor_operand_after=watch.after)
                if watch.draws >= cap:  # pypdf follows no more form draws than this: the rest was not read
                    raise Quarantined("truncated", f"page {k + 1} draws forms more than {cap} times")
                parts.append(text or "")
                marks[k + 1] = watch.marks
                shown[k + 1] = annotation_texts(page)
                # the amounts and the image walk only where they decide something (most pages have no marks)
                amounts = (watch.marks or watch.opaque) and bool(amounts_in(parts[k]))
                few = len(parts[k].strip()) < min_chars
                pictured = (few or (watch.marks and amounts)) and (watch.images or _has_image(page))
                if pictured or (watch.opaque and amounts):
                    scanned.append(k + 1)
            if disputed.seen:
                raise Quarantined("corrupt", "a dictionary defines a key twice (PDF readers disagree on which counts)")
            sizes = [(float(page.mediabox.width), float(page.mediabox.height)) for page in reader.pages]
    except Quarantined:
        raise
    except FileNotDecryptedError:
        raise Quarantined("encrypted", "PDF needs a password") from None
    except LimitReachedError:
        raise Quarantined(BOMB, "over a pypdf decompression limit") from None
    except (PdfReadError, PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError, OSError) as e:
        raise Quarantined("corrupt", type(e).__name__) from None
    except (RecursionError, OverflowError) as e:  # objects nested past the interpreter's depth, numbers past floats
        raise Quarantined("corrupt", type(e).__name__) from None
    return parts, scanned, sizes, marks, shown


class _DisputedKeys(logging.Handler):
    """Within its ``with`` block, notes whether pypdf (in this thread) met a dictionary defining a key twice: pypdf
    keeps the first definition and poppler, what a person's viewer draws with, the last, so a page's ``/Contents``
    defined twice was read as one page and shown as another.

    pypdf says so only as a warning of its logger, so while any block is open the logger is made to pass warnings on
    where the host silenced it: raised to ``WARNING`` from a higher level, and enabled where ``logging.config`` turned
    it off (``disable_existing_loggers``, the default of ``dictConfig``, which left the check blind); where the whole
    process disabled logging at ``WARNING`` (``logging.disable``, which no logger's setting overrides) the block is
    ``blind`` and the reader quarantines the PDF unread (``check_unavailable``) instead of reading it unchecked.
    Blocks of several threads share that: the host's settings come back when the last one leaves (the first to leave
    used to put them back under another thread's open block, which then missed its PDF's disputed key)."""

    _lock = threading.Lock()
    _open = 0  # blocks open in this process
    _host: tuple[int, bool] | None = None  # the host's (level, disabled), while the blocks changed them

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.seen = False
        self.blind = False
        self._thread = threading.get_ident()
        self._logger = logging.getLogger("pypdf")

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self._thread and str(record.msg).startswith("Multiple definitions in dictionary"):
            self.seen = True

    def __enter__(self) -> _DisputedKeys:
        cls, log = type(self), self._logger
        with cls._lock:
            if cls._open == 0 and (log.disabled or not log.isEnabledFor(logging.WARNING)):
                cls._host = (log.level, log.disabled)
                log.disabled = False
                if not log.isEnabledFor(logging.WARNING):
                    log.setLevel(logging.WARNING)  # only when needed: setLevel clears every logger's cache
            cls._open += 1
            log.addHandler(self)
            # only ``logging.disable`` at WARNING or above (the whole process's switch, not this logger's) still
            # drops pypdf's warning before any handler: the check cannot run, so the PDF is not read (fail closed)
            self.blind = not log.isEnabledFor(logging.WARNING)
        return self

    def __exit__(self, *exc: object) -> None:
        cls, log = type(self), self._logger
        with cls._lock:
            log.removeHandler(self)
            cls._open -= 1
            if cls._open == 0 and cls._host is not None:
                level, disabled = cls._host
                cls._host = None
                if log.level != level:
                    log.setLevel(level)
                log.disabled = disabled


def _reset_disputed_keys() -> None:
    """In a forked child: no block of the parent's other threads is open here, and their lock is not held."""
    _DisputedKeys._lock = threading.Lock()
    _DisputedKeys._open, _DisputedKeys._host = 0, None


os.register_at_fork(after_in_child=_reset_disputed_keys)


def _has_image(page: Any, depth: int = 0, seen: set[int] | None = None) -> bool:
    """Whether a page draws an image XObject (directly or in a form, a few forms deep): what a scanned page is. Each
    form is looked into once (forms naming one another many times made this take hours on a 1 KB file)."""
    seen = set() if seen is None else seen
    if depth > 4:
        return False
    resources = page.get("/Resources")
    resources = resources.get_object() if resources is not None else None
    xobjects = resources.get("/XObject") if resources is not None else None
    xobjects = xobjects.get_object() if xobjects is not None else None
    if not xobjects:
        return False
    for ref in xobjects.values():
        obj = ref.get_object()
        if obj.get("/Subtype") == "/Image":
            return True
        if obj.get("/Subtype") == "/Form" and id(obj) not in seen:
            seen.add(id(obj))
            if _has_image(obj, depth + 1, seen):
                return True
    return False


def _try_empty_password(reader: object) -> bool:
    try:
        return bool(reader.decrypt(""))  # type: ignore[attr-defined]
    except Exception:
        return False


def read_docx(path: Path, budget: Budget | None = None) -> str:
    """Paragraphs and table cells of a DOCX file, in document order (tables after body text).

    The ZIP is checked against the decompression budget (declared and streamed sizes) before python-docx
    reads any part of it.
    """
    import zipfile

    import docx
    from docx.opc.exceptions import PackageNotFoundError

    from tasks.documents.containers import Budget, check_zip

    check_zip(path, budget or Budget())
    try:
        document = docx.Document(str(path))
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError, OSError) as e:
        raise Quarantined("corrupt", type(e).__name__) from None
    # every run of a paragraph, those python-docx's ``text`` leaves out included (in an inline content control, a
    # tracked insertion, a smart tag): a total wrapped in one was shown by Word and not read
    lines = [t for t in (_paragraph_text(p._p) for p in document.paragraphs) if t.strip()]
    covered: set[Any] = {p._p for p in document.paragraphs}  # the elements, kept alive: lxml reuses their proxies
    for table in document.tables:
        for row in table.rows:
            texts = ["\n".join(_paragraph_text(p._p) for p in c.paragraphs).strip() for c in row.cells]
            cells = [t for t in texts if t]
            covered.update(p._p for c in row.cells for p in c.paragraphs)
            if cells:
                lines.append(" | ".join(dict.fromkeys(cells)))
    lines += _other_text(document, covered)
    text = "\n".join(lines)
    _check_hidden_runs(document, text)
    return text


_OFF = ("0", "false", "off")


def _check_hidden_runs(document: Any, text: str) -> None:
    """Quarantine a DOCX whose hidden runs (``w:vanish``, which Word does not show or print) hold an amount
    (``hidden_text``), and one that hides text at all (in a run or a style) unless its total as read is its largest
    amount (``total_not_largest``): the text read holds every run, shown or not, so a hidden ``Total amount due: EUR
    950.00`` under a shown 95,000 was the total decided on."""
    from lxml import etree

    from tasks.documents.extract import amounts_in
    from tasks.documents.parse import check_views

    hidden: list[str] = []
    for root in [document.element.body, *_stories(document)]:
        for vanish in root.iter(f"{_W}vanish", f"{_W}specVanish"):
            if str(vanish.get(f"{_W}val", "true")).lower() in _OFF:
                continue
            run = vanish.getparent().getparent() if vanish.getparent() is not None else None
            if run is not None and run.tag == f"{_W}r":
                hidden.append("".join(t.text or "" for t in run.iter(f"{_W}t")))
            elif run is not None:  # a paragraph mark's or another container's property: its text may be hidden
                hidden.append(" ")
    styles = _styles_in_use(document)
    styled_hiding = any(el.find(f".//{_W}vanish") is not None for el in styles)  # a style hiding the runs it styles
    if amounts_in(" ".join(hidden)):
        raise Quarantined("hidden_text", "a hidden run of the document holds an amount")
    faint = any(_faint(root) for root in [document.element.body, *_stories(document)])
    faint = faint or any(_FAINT_STYLE.search(etree.tostring(el)) for el in styles)
    faint = faint or _on_own_colour(document, styles)
    if hidden or styled_hiding or faint:
        check_views(text, [], styled=True)


_FAINT_STYLE = re.compile(
    rb'<w:color\b[^>]*w:(?:val="(?:[EFef][0-9A-Fa-f]){3}"|themeColor="(?:background1|light1)")'
    rb'|<w:szC?s?\b[^>]*w:val="[0-3]"|<w:w\b[^>]*w:val="[0-9]%?"'
)
"""A style that paints its runs near white, under 2 points (``w:sz`` counts half-points) or squeezed under 10%."""


def _faint(root: Any) -> bool:
    """Whether a run under ``root`` is painted near white (every channel at least 0xE0, or the theme's background
    colour), under 2 points or squeezed under 10%: Word shows it, but a person reading the page does not (on a white
    page); such a DOCX is held to the total rule, as one that hides a run."""
    for el in root.iter(f"{_W}color", f"{_W}sz", f"{_W}szCs", f"{_W}w"):
        val = str(el.get(f"{_W}val", ""))
        if el.tag == f"{_W}color":
            theme = str(el.get(f"{_W}themeColor", ""))
            if theme in ("background1", "light1") or (
                len(val) == 6 and all(c in "EFef" for c in val[0::2]) and all(c in _HEX for c in val[1::2])
            ):
                return True
        elif el.tag == f"{_W}w":
            if val.rstrip("%").isdigit() and int(val.rstrip("%")) < 10:
                return True
        elif val.isdigit() and int(val) < 4:
            return True
    return False


_HEX = "0123456789ABCDEFabcdef"
_HIGHLIGHT = {
    "black": "000000", "blue": "0000FF", "cyan": "00FFFF", "green": "00FF00", "magenta": "FF00FF", "red": "FF0000",
    "yellow": "FFFF00", "white": "FFFFFF", "darkBlue": "000080", "darkCyan": "008080", "darkGreen": "008000",
    "darkMagenta": "800080", "darkRed": "800000", "darkYellow": "808000", "darkGray": "808080", "lightGray": "C0C0C0",
}  # fmt: skip
"""The colours of Word's named highlights (``w:highlight``)."""


def _rgb(value: object) -> tuple[int, int, int] | None:
    text = str(value or "")
    text = _HIGHLIGHT.get(text, text)
    if len(text) != 6 or any(c not in _HEX for c in text):
        return None  # "auto" (Word picks black or white against what is under it), a theme colour, or none
    return int(text[0:2], 16), int(text[2:4], 16), int(text[4:6], 16)


def _close(a: tuple[int, int, int] | None, b: tuple[int, int, int] | None) -> bool:
    """Whether text of colour ``a`` on a ground of colour ``b`` is unreadable (every channel within 0x30)."""
    return a is not None and b is not None and max(abs(x - y) for x, y in zip(a, b, strict=True)) <= 0x30


def _on_own_colour(document: Any, styles: list[Any]) -> bool:
    """Whether a run's text is painted in (nearly) the colour under it: the shading or highlight of the run, the
    shading of its paragraph or table cell, or the page's background colour (``w:background``). Word shows such a
    run, a person reading the page does not (yellow on a yellow cell, black on a black page); like a white run on a
    white page it holds the document to the total rule. So does a style in use (``styles``, :func:`_styles_in_use`)
    whose own colour and shading are close. Left open: a colour from one style on a shading from another, theme
    colours in shading (``w:themeFill``), and a run's colour on a shape or an image behind it."""
    background = document.element.find(f"{_W}background")
    page = _rgb(background.get(f"{_W}color")) if background is not None else None
    for root in [document.element.body, *_stories(document)]:
        for color in root.iter(f"{_W}color"):
            ink = _rgb(color.get(f"{_W}val"))
            rpr = color.getparent()
            if ink is None or rpr is None:
                continue
            grounds = [_ground(rpr)]
            el = rpr.getparent()
            while el is not None:  # the run, its paragraph, the table cells around it
                if el.tag == f"{_W}p":
                    grounds.append(_ground(el.find(f"{_W}pPr")))
                elif el.tag == f"{_W}tc":
                    grounds.append(_ground(el.find(f"{_W}tcPr")))
                el = el.getparent()
            if any(_close(ink, g) for g in [*grounds, page]):
                return True
    props = (f"{_W}rPr", f"{_W}pPr", f"{_W}tcPr")
    for style in styles:
        own = [c for c in style if c.tag in props]
        own += [c for d in style if d.tag in (f"{_W}rPrDefault", f"{_W}pPrDefault") for c in d]
        base = [_ground(pr) for pr in own]
        # a table style's parts (its first row, its banded rows) paint their own text on their own shading, or on the
        # table's
        for block in [own, *([c for c in part if c.tag in props] for part in style.iter(f"{_W}tblStylePr"))]:
            inks = [_rgb(c.get(f"{_W}val")) for pr in block for c in pr.iter(f"{_W}color")]
            if any(_close(i, g) for i in inks for g in [*(_ground(pr) for pr in block), *base, page]):
                return True
    return False


def _styles_in_use(document: Any) -> list[Any]:
    """The style elements that style some text of the document: its defaults (``w:docDefaults``, the styles marked
    default, which style every paragraph, run and table naming none), the styles its paragraphs, runs and tables name,
    and the styles those are based on. The template's other styles style nothing: python-docx's own template holds
    table styles with white text on dark headers, which held every DOCX it made to the total rule."""
    from lxml import etree

    parts = [p for p in document.part.package.iter_parts() if str(p.partname) == "/word/styles.xml"]
    if not parts:
        return []
    # python-docx has parsed the part already (its element); a part of another type is parsed from its bytes
    root = parts[0].element if hasattr(parts[0], "element") else etree.fromstring(parts[0].blob)
    by_id = {str(st.get(f"{_W}styleId")): st for st in root.iter(f"{_W}style")}
    todo = [
        str(ref.get(f"{_W}val"))
        for story in [document.element.body, *_stories(document)]
        for ref in story.iter(f"{_W}rStyle", f"{_W}pStyle", f"{_W}tblStyle")
    ]
    todo += [i for i, st in by_id.items() if str(st.get(f"{_W}default", "")).lower() in ("1", "true", "on")]
    seen: dict[str, Any] = {}
    while todo:
        sid = todo.pop()
        if sid in seen or sid not in by_id:
            continue
        seen[sid] = by_id[sid]
        todo += [str(b.get(f"{_W}val")) for b in by_id[sid].iter(f"{_W}basedOn", f"{_W}link")]
    return [*root.iter(f"{_W}docDefaults"), *seen.values()]


def _ground(props: Any) -> tuple[int, int, int] | None:
    """The colour a run, paragraph or cell property element (``w:rPr``, ``w:pPr``, ``w:tcPr``) puts under text:
    its highlight, else its shading's fill."""
    if props is None:
        return None
    mark = props.find(f"{_W}highlight")
    shade = props.find(f"{_W}shd")
    ground = _rgb(mark.get(f"{_W}val")) if mark is not None else None
    return ground if ground is not None else (_rgb(shade.get(f"{_W}fill")) if shade is not None else None)


_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_STORIES = ("/word/header", "/word/footer", "/word/footnotes", "/word/endnotes")


def _other_text(document: Any, covered: set[Any]) -> list[str]:
    """The paragraphs the lines above leave out: nested tables, text boxes and content controls of the body, then
    headers, footers, footnotes and endnotes. A total in a footer or a nested table was once never read, and the
    invoice was decided on the other amounts in its text."""
    out = [_paragraph_text(p) for p in document.element.body.iter(f"{_W}p") if p not in covered]
    for story in _stories(document):
        out += [_paragraph_text(p) for p in story.iter(f"{_W}p")]
    return [t for t in out if t.strip()]


def _stories(document: Any) -> list[Any]:
    """The root elements of a DOCX's other stories: headers, footers, footnotes and endnotes."""
    return [
        part.element
        for part in document.part.package.iter_parts()
        if str(part.partname).startswith(_STORIES) and hasattr(part, "element")
    ]


def _paragraph_text(p: Any) -> str:
    """A paragraph's own text (its runs' ``w:t`` and tabs), without the paragraphs nested in it (text boxes)."""
    parts = []
    for el in p.iter(f"{_W}t", f"{_W}tab", f"{_W}br"):
        owner = el.getparent()
        while owner is not None and owner.tag != f"{_W}p":
            owner = owner.getparent()
        if owner is p:
            parts.append(el.text or "" if el.tag == f"{_W}t" else ("\t" if el.tag == f"{_W}tab" else "\n"))
    return "".join(parts)
