"""Format readers for binary documents: PDF (pypdf, OCR fallback), DOCX (python-docx), images (tesseract).

Every reader returns plain text or raises :class:`Quarantined` with a reason code. Error details
name the exception type only: exception messages of parsers can quote document bytes, and document
content must never reach a log, an audit record or an output. Each reader checks its container against a
decompression :class:`~tasks.documents.containers.Budget` before the parser expands it.
"""

from __future__ import annotations

import io
import logging
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

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


def _ocr_pdf(path: Path, max_pages: int, budget: Budget) -> str:
    if shutil.which("pdftoppm") is None or not ocr_available():
        raise Quarantined("ocr_unavailable", "pdftoppm or tesseract is not installed")
    side = str(int(budget.max_bytes**0.5))  # one byte per gray pixel: a huge MediaBox is cropped, not rendered
    with tempfile.TemporaryDirectory(prefix="aios-ocr-") as tmp:
        cmd = ["pdftoppm", "-r", "150", "-gray", "-png", "-f", "1", "-l", str(max_pages), "-x", "0", "-y", "0"]
        cmd += ["-W", side, "-H", side, str(path), f"{tmp}/p"]
        proc = subprocess.run(cmd, capture_output=True, timeout=120, check=False)
        pages = sorted(Path(tmp).glob("p*.png"))
        if proc.returncode != 0 and not pages:
            raise Quarantined("corrupt", f"pdftoppm exit {proc.returncode}")
        return "\n".join(ocr_image(p.read_bytes(), budget) for p in pages)


def read_pdf(
    path: Path, *, max_pages: int, ocr_pages: int, min_chars: int, budget: Budget | None = None
) -> tuple[str, int, bool]:
    """Text, page count and whether OCR was used, for a PDF file (streams budgeted before they are inflated)."""
    from tasks.documents.containers import Budget, pdf_limits

    budget = budget or Budget()
    with pdf_limits(budget):
        text, n_pages = _pdf_text(path, max_pages, budget)
    if len(text.strip()) >= min_chars:
        return text, n_pages, False
    if 0 < ocr_pages < n_pages:  # the pages past ocr_pages would not be read: read whole or not at all
        msg = f"{n_pages} pages without a text layer, more than ocr_pages={ocr_pages}; raise it to read it whole"
        raise Quarantined("truncated", msg)
    return _ocr_pdf(path, ocr_pages, budget), n_pages, True


def _pdf_text(path: Path, max_pages: int, budget: Budget) -> tuple[str, int]:
    from pypdf import PdfReader
    from pypdf.errors import FileNotDecryptedError, LimitReachedError, PdfReadError, PyPdfError

    from tasks.documents.containers import BOMB, check_pdf

    try:
        reader = PdfReader(str(path), strict=False)
        if reader.is_encrypted and not _try_empty_password(reader):
            raise Quarantined("encrypted", "PDF needs a password")
        n_pages = len(reader.pages)
        if n_pages > max_pages:  # a total on a page not read would be missed: read whole or not at all
            msg = f"{n_pages} pages, more than max_pages={max_pages}; raise it to read it whole"
            raise Quarantined("truncated", msg)
        check_pdf(reader, budget, max_pages)
        parts = [(page.extract_text() or "") for page in reader.pages[:max_pages]]
    except Quarantined:
        raise
    except FileNotDecryptedError:
        raise Quarantined("encrypted", "PDF needs a password") from None
    except LimitReachedError:
        raise Quarantined(BOMB, "over a pypdf decompression limit") from None
    except (PdfReadError, PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError, OSError) as e:
        raise Quarantined("corrupt", type(e).__name__) from None
    return "\n".join(parts), n_pages


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
    lines = [p.text for p in document.paragraphs if p.text.strip()]
    for table in document.tables:
        for row in table.rows:
            cells = [c.text.strip() for c in row.cells if c.text.strip()]
            if cells:
                lines.append(" | ".join(dict.fromkeys(cells)))
    return "\n".join(lines)
