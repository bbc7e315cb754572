"""Writers for the demo corpus: real PDF, scanned PDF, DOCX, e-mail with attachment, HTML, PNG, text.

PDFs are written by hand (one Helvetica text object per page, WinAnsi encoding): a small, valid PDF
that pypdf and poppler read, without a PDF library dependency. Scans are rendered with Pillow and
read back only through OCR.
"""

from __future__ import annotations

import textwrap
from email.message import EmailMessage
from pathlib import Path

_LINES_PER_PAGE = 60


def _pdf_escape(line: str) -> bytes:
    raw = line.encode("cp1252", errors="replace")
    return raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")


def _wrap(text: str, width: int) -> list[str]:
    lines: list[str] = []
    for para in text.splitlines():
        lines.extend(textwrap.wrap(para, width) or [""])
    return lines


def pdf_bytes(text: str) -> bytes:
    """A valid text PDF (A4) holding ``text``."""
    lines = _wrap(text, 95)
    pages = [lines[i : i + _LINES_PER_PAGE] for i in range(0, max(len(lines), 1), _LINES_PER_PAGE)]
    n = len(pages)
    objs: list[bytes] = [b"<< /Type /Catalog /Pages 2 0 R >>", b""]
    kids = []
    font_id = 3 + 2 * n
    for k, page in enumerate(pages):
        page_id, content_id = 3 + 2 * k, 4 + 2 * k
        kids.append(f"{page_id} 0 R".encode())
        body = b"BT /F1 10 Tf 12 TL 50 800 Td " + b" ".join(b"(" + _pdf_escape(ln) + b") '" for ln in page) + b" ET"
        objs.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 {font_id} 0 R >> >> "
            f"/Contents {content_id} 0 R >>".encode()
        )
        objs.append(b"<< /Length " + str(len(body)).encode() + b" >>\nstream\n" + body + b"\nendstream")
    objs[1] = b"<< /Type /Pages /Kids [" + b" ".join(kids) + b"] /Count " + str(n).encode() + b" >>"
    objs.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for i, obj in enumerate(objs, start=1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n".encode() + obj + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objs) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += f"trailer\n<< /Size {len(objs) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def render_image(text: str, max_lines: int = 40):  # type: ignore[no-untyped-def]
    """A grayscale 'scan' of the text (Pillow image), readable by tesseract."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default(size=22)
    lines = _wrap(text.replace("€", "EUR ").replace("£", "GBP ").replace("$", "USD "), 80)[:max_lines]
    img = Image.new("L", (1400, 60 + 30 * len(lines)), color=255)
    draw = ImageDraw.Draw(img)
    for i, ln in enumerate(lines):
        draw.text((40, 30 + 30 * i), ln, fill=0, font=font)
    return img


def write_png(path: Path, text: str) -> None:
    """Scanned page as PNG."""
    render_image(text).save(path, format="PNG")


def write_scanned_pdf(path: Path, text: str) -> None:
    """Scanned page as an image-only PDF (no text layer: only OCR can read it)."""
    render_image(text).convert("RGB").save(path, format="PDF", resolution=150.0)


def write_docx(path: Path, text: str) -> None:
    """DOCX with one paragraph per line; 'Key: value' lines go into a table."""
    import docx

    document = docx.Document()
    pairs = []
    for line in text.splitlines():
        key, sep, value = line.partition(": ")
        if sep and len(key) < 25 and key[:1].isupper() and not key.startswith("Dear"):
            pairs.append((key, value))
        else:
            document.add_paragraph(line)
    if pairs:
        table = document.add_table(rows=0, cols=2)
        for key, value in pairs:
            cells = table.add_row().cells
            cells[0].text, cells[1].text = key, value
    document.save(str(path))


def write_eml(path: Path, text: str, sender: str, attach_pdf: bool) -> None:
    """An e-mail whose document travels as an attachment (PDF) or inline body (text)."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = "accounts@example.org"
    msg["Subject"] = "Document for processing"
    if attach_pdf:
        msg.set_content("Hello,\n\nplease find the document attached.\n\nRegards")
        msg.add_attachment(pdf_bytes(text), maintype="application", subtype="pdf", filename="document.pdf")
    else:
        msg.set_content(text)
        msg.add_attachment(b"reference copy\n", maintype="text", subtype="plain", filename="note.txt")
    path.write_bytes(bytes(msg))


def write_html(path: Path, text: str) -> None:
    """An HTML page with the text in paragraphs, plus script and style that must be ignored."""
    import html

    paras = "\n".join(f"<p>{html.escape(line)}</p>" for line in text.splitlines() if line.strip())
    page = (
        "<!DOCTYPE html><html><head><title>Document</title><style>p{margin:0}</style>"
        "<script>var tracking = 'not document text';</script></head>"
        f"<body><article>{paras}</article></body></html>"
    )
    path.write_text(page, encoding="utf-8")
