"""Decompression bombs in every container the pack expands: quarantined before expansion, in bounded memory.

The bombs are built at run time: a DOCX whose document.xml is 420 MB of repeated paragraphs (~0.4 MB
compressed), a PDF whose FlateDecode content stream is 300 MB of zeros, e-mails carrying a DOCX bomb and a
nested ZIP, and an image whose header announces more pixels than the budget. Peak memory of parsing a bomb is
measured in a fresh subprocess (``VmHWM``): it must stay inside the parse task's 1 GiB request.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
import zlib
from email.message import EmailMessage
from pathlib import Path

import pytest

from tasks.documents.parse import Limits, parse_bytes, parse_file
from tasks.documents.readers import Quarantined

GIB = 1 << 30
_CT = (
    '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/><Override PartName="/word/document.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>'
)
_RELS = (
    '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/'
    'relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    'relationships/officeDocument" Target="word/document.xml"/></Relationships>'
)
_W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
_PARA = b"<w:p><w:r><w:t>Invoice total EUR 10.00 payable to Acme Labs Ltd.</w:t></w:r></w:p>"


def build_docx(path: Path, body_bytes: int, para: bytes = _PARA) -> Path:
    """A valid DOCX whose document.xml holds ``body_bytes`` of repeated paragraphs (streamed, never in memory)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        zf.writestr("[Content_Types].xml", _CT)
        zf.writestr("_rels/.rels", _RELS)
        with zf.open("word/document.xml", "w", force_zip64=True) as f:
            f.write(f'<?xml version="1.0" encoding="UTF-8"?><w:document xmlns:w="{_W}"><w:body>'.encode())
            block = para * max(1, min(body_bytes, 1 << 20) // len(para))
            for _ in range(max(1, body_bytes // len(block))):
                f.write(block)
            f.write(b"</w:body></w:document>")
    return path


def build_pdf(path: Path, content: bytes | None = None, zeros: int = 0) -> Path:
    """A one-page PDF whose content stream is ``content`` (or ``zeros`` zero bytes), FlateDecode-compressed."""
    if content is None:
        z = zlib.compressobj(9)
        parts = [z.compress(bytes(1 << 20)) for _ in range(zeros >> 20)]
        stream = b"".join(parts) + z.flush()
    else:
        stream = zlib.compress(content, 9)
    objs = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objs, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
    path.write_bytes(bytes(out))
    return path


def build_mail(path: Path, attachment: bytes, filename: str) -> Path:
    """An e-mail with a body and one base64 attachment."""
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "a@example.org", "b@example.org", "Quarterly invoice"
    msg.set_content("Please find the invoice attached. Total amount due: EUR 10.00, Acme Labs Ltd.")
    msg.add_attachment(attachment, maintype="application", subtype="octet-stream", filename=filename)
    path.write_bytes(bytes(msg))
    return path


_PROBE = """
import json, sys, time
from pathlib import Path
from tasks.documents.parse import Limits, parse_file
from tasks.documents.readers import Quarantined
t0 = time.perf_counter()
try:
    outcome = parse_file(Path(sys.argv[1]), Limits(ocr_pages=1)).fmt
except Quarantined as q:
    outcome = "quarantine:" + q.reason
# VmHWM: this process's own peak RSS (ru_maxrss would carry the forking pytest's peak across exec)
peak = next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmHWM:"))
print(json.dumps({"outcome": outcome, "peak_bytes": peak, "seconds": time.perf_counter() - t0}))
"""


def probe(path: Path) -> dict[str, object]:
    """Parse ``path`` in a fresh interpreter; its outcome, peak RSS and parse time."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, str(path)], capture_output=True, text=True, timeout=600, env=env, check=False
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result: dict[str, object] = json.loads(proc.stdout.strip().splitlines()[-1])
    print(path.name, result)
    return result


def _reason(path: Path, limits: Limits | None = None) -> str:
    try:
        return parse_file(path, limits or Limits()).fmt
    except Quarantined as q:
        return f"quarantine:{q.reason}"


def test_docx_bomb_is_quarantined_before_expansion_in_bounded_memory(tmp_path: Path) -> None:
    bomb = build_docx(tmp_path / "bomb.docx", 420 << 20)
    assert bomb.stat().st_size < 2 << 20  # ~0.4 MB on disk, 420 MB of XML
    result = probe(bomb)
    assert result["outcome"] == "quarantine:decompression_bomb"
    assert int(result["peak_bytes"]) < GIB  # type: ignore[call-overload]
    assert float(result["seconds"]) < 30  # type: ignore[arg-type]


def test_docx_size_and_ratio_limits_come_from_the_options(tmp_path: Path) -> None:
    normal = build_docx(tmp_path / "normal.docx", 64 << 10)
    assert _reason(normal) == "docx"
    # 3 MB of XML at ~1000:1 is under the size budget but over the ratio limit
    assert _reason(build_docx(tmp_path / "ratio.docx", 3 << 20)) == "quarantine:decompression_bomb"
    ratio_ok = build_docx(tmp_path / "ratio-ok.docx", 3 << 20)
    assert _reason(ratio_ok, Limits(max_ratio=1e6)) == "quarantine:truncated"  # read whole or not at all
    assert _reason(ratio_ok, Limits(max_ratio=1e6, max_chars=10_000_000)) == "docx"
    small_budget = Limits(max_expanded=1 << 20, max_ratio=1e6)
    assert _reason(build_docx(tmp_path / "big.docx", 2 << 20), small_budget) == "quarantine:decompression_bomb"


def test_pdf_flate_bomb_is_quarantined_in_bounded_memory(tmp_path: Path) -> None:
    bomb = build_pdf(tmp_path / "bomb.pdf", zeros=300 << 20)
    assert bomb.stat().st_size < 1 << 20
    result = probe(bomb)
    assert result["outcome"] == "quarantine:decompression_bomb"
    assert int(result["peak_bytes"]) < GIB  # type: ignore[call-overload]


def test_pdf_ratio_limit_and_normal_pdf(tmp_path: Path) -> None:
    text = b"BT /F1 12 Tf 72 700 Td (Invoice INV-1 total amount due EUR 10.00 Acme Labs Ltd) Tj ET\n"
    assert _reason(build_pdf(tmp_path / "ok.pdf", content=text)) == "pdf"
    # 8 MB of zeros: under the 100 MB budget, but ~1000:1
    assert _reason(build_pdf(tmp_path / "ratio.pdf", zeros=8 << 20)) == "quarantine:decompression_bomb"


def test_pypdf_limits_follow_the_options(tmp_path: Path) -> None:
    from pypdf import get_configuration

    from tasks.documents.containers import Budget, pdf_limits

    with pdf_limits(Budget(max_bytes=12345)):
        assert get_configuration().zlib_maximum_output_length == 12345
        assert get_configuration().maximum_declared_stream_length == 12345
    assert get_configuration().zlib_maximum_output_length != 12345


def test_pypdf_keeps_encoded_stream_bytes_in_data(tmp_path: Path) -> None:
    """Pins the one private pypdf member the budget reads (``StreamObject._data``: still encoded)."""
    from pypdf import PdfReader

    from tasks.documents.containers import _raw_stream_bytes

    content = b"BT (hello) Tj ET " * 100
    reader = PdfReader(str(build_pdf(tmp_path / "p.pdf", content=content)))
    stream = reader.pages[0]["/Contents"].get_object()
    assert zlib.decompress(_raw_stream_bytes(stream)) == content


def test_mail_with_docx_bomb_attachment_is_quarantined(tmp_path: Path) -> None:
    bomb = build_docx(tmp_path / "inner.docx", 420 << 20).read_bytes()
    mail = build_mail(tmp_path / "bomb.eml", bomb, "invoice.docx")
    result = probe(mail)
    assert result["outcome"] == "quarantine:decompression_bomb"
    assert int(result["peak_bytes"]) < GIB  # type: ignore[call-overload]


def test_mail_with_nested_zip_is_not_expanded(tmp_path: Path) -> None:
    inner = build_docx(tmp_path / "inner.docx", 200 << 20).read_bytes()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("invoice.docx", inner)
    mail = build_mail(tmp_path / "nested.eml", buf.getvalue(), "invoices.zip")
    result = probe(mail)  # the ZIP is an archive: named, not expanded; the mail's own text goes on
    assert result["outcome"] == "email"
    assert int(result["peak_bytes"]) < GIB  # type: ignore[call-overload]
    assert "[attachment not readable]" in parse_file(mail, Limits()).text


def test_image_over_the_pixel_budget_is_refused_from_its_header(tmp_path: Path) -> None:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGBA", (6000, 6000), (255, 255, 255, 255)).save(buf, "PNG")
    assert len(buf.getvalue()) < 2 << 20  # 144 MB of pixels, ~0.2 MB on disk
    with pytest.raises(Quarantined, match="decompression_bomb"):
        parse_bytes(buf.getvalue(), ".png", Limits())


def test_zip_with_too_many_members_is_refused(tmp_path: Path) -> None:
    from tasks.documents.containers import MAX_ZIP_MEMBERS, Budget, check_zip

    path = tmp_path / "many.docx"
    with zipfile.ZipFile(path, "w") as zf:
        for i in range(MAX_ZIP_MEMBERS + 1):
            zf.writestr(f"m{i}", b"")
    with pytest.raises(Quarantined, match="decompression_bomb"):
        check_zip(path, Budget())


def test_parts_of_a_normal_container_do_not_add_up_to_a_false_ratio(tmp_path: Path) -> None:
    from tasks.documents.containers import Budget, check_zip

    path = tmp_path / "parts.docx"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("word/media/photo.bin", os.urandom(3 << 20))  # incompressible, 3 MB
        zf.writestr("word/styles.xml", b"<w:styles/>" * 50)  # small, very compressible
    check_zip(path, Budget())  # 3 MB in all, no part over 100:1: nothing to refuse
