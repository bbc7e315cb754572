"""Format readers for binary documents: PDF (pypdf, OCR fallback), DOCX (python-docx), images (tesseract).

Every reader returns plain text or raises :class:`Quarantined` with a reason code. Error details
name the exception type only: exception messages of parsers can quote document bytes, and document
content must never reach a log, an audit record or an output.
"""

from __future__ import annotations

import io
import logging
import shutil
import subprocess
import tempfile
from pathlib import Path

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


def ocr_image(data: bytes) -> str:
    """Text of an image (PNG, JPEG, TIFF, ...) through tesseract OCR (English)."""
    if not ocr_available():
        raise Quarantined("ocr_unavailable", "tesseract is not installed")
    import pytesseract
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            gray = img.convert("L")
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise Quarantined("corrupt", type(e).__name__) from None
    return str(pytesseract.image_to_string(gray, lang="eng", timeout=120))


def _ocr_pdf(path: Path, max_pages: int) -> str:
    if shutil.which("pdftoppm") is None or not ocr_available():
        raise Quarantined("ocr_unavailable", "pdftoppm or tesseract is not installed")
    with tempfile.TemporaryDirectory(prefix="aios-ocr-") as tmp:
        cmd = ["pdftoppm", "-r", "150", "-gray", "-png", "-f", "1", "-l", str(max_pages), str(path), f"{tmp}/p"]
        proc = subprocess.run(cmd, capture_output=True, timeout=120, check=False)
        pages = sorted(Path(tmp).glob("p*.png"))
        if proc.returncode != 0 and not pages:
            raise Quarantined("corrupt", f"pdftoppm exit {proc.returncode}")
        return "\n".join(ocr_image(p.read_bytes()) for p in pages)


def read_pdf(path: Path, *, max_pages: int, ocr_pages: int, min_chars: int) -> tuple[str, int, bool]:
    """Text, page count and whether OCR was used, for a PDF file."""
    from pypdf import PdfReader
    from pypdf.errors import FileNotDecryptedError, PdfReadError, PyPdfError

    try:
        reader = PdfReader(str(path), strict=False)
        if reader.is_encrypted and not _try_empty_password(reader):
            raise Quarantined("encrypted", "PDF needs a password")
        n_pages = len(reader.pages)
        parts = [(page.extract_text() or "") for page in reader.pages[:max_pages]]
    except Quarantined:
        raise
    except FileNotDecryptedError:
        raise Quarantined("encrypted", "PDF needs a password") from None
    except (PdfReadError, PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError, OSError) as e:
        raise Quarantined("corrupt", type(e).__name__) from None
    text = "\n".join(parts)
    if len(text.strip()) >= min_chars:
        return text, n_pages, False
    return _ocr_pdf(path, ocr_pages), n_pages, True


def _try_empty_password(reader: object) -> bool:
    try:
        return bool(reader.decrypt(""))  # type: ignore[attr-defined]
    except Exception:
        return False


def read_docx(path: Path) -> str:
    """Paragraphs and table cells of a DOCX file, in document order (tables after body text)."""
    import zipfile

    import docx
    from docx.opc.exceptions import PackageNotFoundError

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
