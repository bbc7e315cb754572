"""A PDF is decided on the text a person sees (left open on 2026-12-05: "PDF invisible text").

pypdf's text layer holds every string a page's content shows, painted or not. An invoice PDF showing ``Services
rendered: EUR 95,000.00`` that also held ``Total amount due: EUR 950.00`` in invisible text (render mode 3), white
text, text half a point high or off the page, was read with both, and the extractor took the hinted 950 as the total:
decided without the payment sign-off the 95,000 a person sees needs. Now a PDF that shows text a person may not see
is decided only when its total as read is its largest amount (``total_not_largest``, as HTML and DOCX), and a page
drawing an image under an invisible text layer holding an amount is read by OCR (what a person sees is the image).
Real PDFs written byte by byte here, read by the pack's reader (pypdf), tesseract for the scan.
"""

from __future__ import annotations

import logging
import zlib
from pathlib import Path
from unittest import mock

import pytest

from tasks.documents.extract import total_in
from tasks.documents.parse import Limits, parse_file
from tasks.documents.readers import Quarantined, ocr_available

SHOWN = [
    "INVOICE No. INV-20431",
    "Issued by: Northwind Trading GmbH",
    "Bill to: Contoso Ltd",
    "Services rendered, 12 units: EUR 95,000.00",
    "Please transfer the amount to the account below.",
]
HIDDEN = "Total amount due: EUR 950.00"


def _text_ops(lines: list[str], y: int = 800) -> bytes:
    body = b" ".join(b"(" + line.encode() + b") '" for line in lines)
    return b"BT /F1 10 Tf 12 TL 50 %d Td " % y + body + b" ET"


def _pdf(content: bytes, *, resources: bytes = b"", objects: list[bytes] | None = None) -> bytes:
    """A one-page PDF whose content stream is ``content`` (font /F1 Helvetica; extra resources and objects, which
    are numbered from 5 on)."""
    objs = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 4 0 R >> "
        + resources
        + b" >> /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
        *(objects or []),
    ]
    out = bytearray(b"%PDF-1.5\n")
    offsets = []
    for i, obj in enumerate(objs, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + obj + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
    return bytes(out)


def _hidden(how: bytes) -> bytes:
    """The shown lines, then the hidden total drawn the way ``how`` hides it (inside q/Q)."""
    return _text_ops(SHOWN) + b"\nq " + how + b" Q\n"


CASES = {
    "render mode 3": _pdf(_hidden(b"3 Tr " + _text_ops([HIDDEN], 500))),
    "render mode 7": _pdf(_hidden(b"7 Tr " + _text_ops([HIDDEN], 500))),
    "white gray": _pdf(_hidden(b"1 g " + _text_ops([HIDDEN], 500))),
    "white rgb": _pdf(_hidden(b"0.97 0.98 1 rg " + _text_ops([HIDDEN], 500))),
    "white cmyk": _pdf(_hidden(b"0 0 0 0 k " + _text_ops([HIDDEN], 500))),
    "white scn": _pdf(_hidden(b"/DeviceRGB cs 1 1 1 scn " + _text_ops([HIDDEN], 500))),
    "stroked in white": _pdf(_hidden(b"1 Tr 1 G " + _text_ops([HIDDEN], 500))),
    "no ink": _pdf(
        _hidden(b"/CS0 cs 0 scn " + _text_ops([HIDDEN], 500)),
        resources=b"/ColorSpace << /CS0 [/Separation /Spot /DeviceCMYK 6 0 R] >>",
        objects=[b"<< /FunctionType 2 /Domain [0 1] /C0 [0 0 0 0] /C1 [0 0 0 1] /N 1 >>"],
    ),
    "half a point": _pdf(_hidden(b"BT /F1 0.5 Tf 50 500 Td (" + HIDDEN.encode() + b") Tj ET")),
    "scaled away": _pdf(_hidden(b"0.01 0 0 0.01 0 0 cm " + _text_ops([HIDDEN], 500))),
    "squeezed": _pdf(_hidden(b"1 Tz " + _text_ops([HIDDEN], 500))),
    "off the page": _pdf(_hidden(b"BT /F1 10 Tf -3000 500 Td (" + HIDDEN.encode() + b") Tj ET")),
    "transparent": _pdf(
        _hidden(b"/G0 gs " + _text_ops([HIDDEN], 500)),
        resources=b"/ExtGState << /G0 << /Type /ExtGState /ca 0 >> >>",
    ),
    "optional content": _pdf(
        _text_ops(SHOWN) + b"\n/OC /L0 BDC " + _text_ops([HIDDEN], 500) + b" EMC",
        resources=b"/Properties << /L0 6 0 R >>",
        objects=[b"<< /Type /OCG /Name (hidden) >>"],
    ),
    "in a form, mode set outside": _pdf(
        _hidden(b"3 Tr /X0 Do"),
        resources=b"/XObject << /X0 6 0 R >>",
        objects=[
            b"<< /Type /XObject /Subtype /Form /BBox [0 0 595 842] /Resources << /Font << /F1 4 0 R >> >> "
            b"/Length %d >>\nstream\n" % len(_text_ops([HIDDEN], 500)) + _text_ops([HIDDEN], 500) + b"\nendstream"
        ],
    ),
    "in a form, mode set inside": _pdf(
        _hidden(b"/X0 Do"),
        resources=b"/XObject << /X0 6 0 R >>",
        objects=[
            b"<< /Type /XObject /Subtype /Form /BBox [0 0 595 842] /Resources << /Font << /F1 4 0 R >> >> "
            b"/Length %d >>\nstream\n"
            % (len(_text_ops([HIDDEN], 500)) + 5)
            + b"3 Tr "
            + _text_ops([HIDDEN], 500)
            + b"\nendstream"
        ],
    ),
}


def _read(tmp_path: Path, name: str, data: bytes) -> str:
    path = tmp_path / (name.replace(" ", "_").replace(",", "") + ".pdf")
    path.write_bytes(data)
    return parse_file(path, Limits()).text


@pytest.mark.parametrize("how", sorted(CASES))
def test_a_total_a_person_cannot_see_is_not_the_total_decided(tmp_path: Path, how: str) -> None:
    from pypdf import PdfReader

    path = tmp_path / "attack.pdf"
    path.write_bytes(CASES[how])
    layer = "\n".join(page.extract_text() for page in PdfReader(path).pages)
    assert total_in(layer) == 950.0 and "95,000.00" in layer  # the text layer alone: the attack as it was
    with pytest.raises(Quarantined) as caught:
        parse_file(path, Limits())
    assert caught.value.reason == "total_not_largest", caught.value
    assert "950" not in caught.value.detail and "Traceback" not in str(caught.value)


def test_honest_pdfs_are_read_as_before(tmp_path: Path) -> None:
    """An honest invoice, one with a white heading on a dark bar, and one whose hidden text is not an amount (a
    form's invisible field name) are read; a hidden total that is the largest amount is read too (the sign-off the
    larger amount needs is asked: nothing is allowed that a person would not)."""
    honest = [*SHOWN[:3], "Total amount due: EUR 95,000.00"]
    assert total_in(_read(tmp_path, "honest", _pdf(_text_ops(honest)))) == 95000.0
    bar = b"q 0.1 0.2 0.5 rg 40 780 500 30 re f 1 g " + _text_ops(["INVOICE"], 790) + b" Q\n" + _text_ops(honest, 700)
    assert total_in(_read(tmp_path, "white heading", _pdf(bar))) == 95000.0
    label = _pdf(_text_ops(honest) + b"\nq 3 Tr " + _text_ops(["field: payer name"], 500) + b" Q")
    assert "payer name" in _read(tmp_path, "invisible label", label)
    larger = _pdf(
        _text_ops([*SHOWN[:3], "Total: EUR 950.00"])
        + b"\nq 3 Tr "
        + _text_ops(["Total amount due: EUR 9,500.00"], 500)
        + b" Q"
    )
    assert total_in(_read(tmp_path, "larger hidden", larger)) == 9500.0


def _picture(shown: list[str]) -> tuple[bytes, bytes, bytes, tuple[int, int]]:
    """A gray picture of ``shown`` (Pillow): its image XObject, its compressed pixels, the ``cm`` placing it at the
    top of the page, and its size."""
    from tasks.documents.corpus_files import render_image

    img = render_image("\n".join(shown))
    w, h = img.size
    pixels = zlib.compress(img.tobytes())
    image = (
        b"<< /Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceGray /BitsPerComponent 8 "
        b"/Filter /FlateDecode /Length %d >>\nstream\n" % (w, h, len(pixels)) + pixels + b"\nendstream"
    )
    return image, pixels, b"560 0 0 %d 20 %d cm " % (round(560 * h / w), 800 - round(560 * h / w)), (w, h)


def _scan_page(text_layer: str, shown: list[str]) -> bytes:
    """A scanned page: a picture of ``shown`` under an invisible text layer ``text_layer``."""
    image, _pixels, place, _size = _picture(shown)
    layer = b"q 3 Tr " + _text_ops([text_layer], 780) + b" Q"
    return _pdf(b"q " + place + b"/Im0 Do Q\n" + layer, resources=b"/XObject << /Im0 6 0 R >>", objects=[image])


@pytest.mark.skipif(not ocr_available(), reason="tesseract is not installed")
def test_a_scan_is_read_from_its_image_not_from_the_text_layer_its_sender_wrote(tmp_path: Path) -> None:
    """A scanned invoice (an image showing EUR 95,000.00) whose invisible text layer says ``Total amount due: EUR
    950.00`` was read from that layer alone: 950. The page is now read by OCR, as a scan without a text layer is."""
    shown = [*SHOWN[:3], "Total amount due: EUR 95,000.00"]
    text = _read(tmp_path, "scan", _scan_page(HIDDEN, shown))
    assert "950.00" not in text.replace("95,000.00", "")
    assert total_in(text) == 95000.0, text


def _annotated(page_lines: list[str], annot: bytes, shows: str) -> bytes:
    """A page of ``page_lines`` with one annotation ``annot`` (a dictionary's inside) drawn by a form showing
    ``shows``; the annotation is object 6, its appearance object 7."""
    draw = b"BT /F1 10 Tf 2 5 Td (" + shows.encode() + b") Tj ET"
    appearance = (
        b"<< /Type /XObject /Subtype /Form /BBox [0 0 300 20] /Resources << /Font << /F1 4 0 R >> >> "
        b"/Length %d >>\nstream\n" % len(draw) + draw + b"\nendstream"
    )
    return _pdf(
        _text_ops(page_lines),
        resources=b"",
        objects=[b"<< /Type /Annot " + annot + b" /Rect [50 600 350 620] /AP << /N 7 0 R >> >>", appearance],
    ).replace(b"/Contents 5 0 R >>", b"/Contents 5 0 R /Annots [6 0 R] >>", 1)


def test_an_amount_a_person_sees_in_an_annotation_is_read(tmp_path: Path) -> None:
    """pypdf's page text leaves annotations out: a filled-in form field or a free-text note showing ``EUR
    95,000.00`` beside a page whose text said ``Total amount due: EUR 950.00`` was read at 950. An amount an
    annotation shows that the text read lacks is now ``hidden_text``; an annotation a viewer does not show (flag
    Hidden) and one that repeats the page's amounts change nothing."""
    page = [*SHOWN[:3], "Total amount due: EUR 950.00"]
    cases = {
        "free text": _annotated(page, b"/Subtype /FreeText /Contents (EUR 95,000.00)", "EUR 95,000.00"),
        "field drawn": _annotated(page, b"/Subtype /Widget /FT /Tx /T (amount) /V (EUR 950.00)", "EUR 95,000.00"),
        "field value": _annotated(page, b"/Subtype /Widget /FT /Tx /T (amount) /V (EUR 95,000.00)", ""),
    }
    for name, data in cases.items():
        path = tmp_path / f"{name.replace(' ', '_')}.pdf"
        path.write_bytes(data)
        with pytest.raises(Quarantined) as caught:
            parse_file(path, Limits())
        assert caught.value.reason == "hidden_text", (name, caught.value)
    hidden = _annotated(page, b"/Subtype /FreeText /F 2 /Contents (EUR 95,000.00)", "EUR 95,000.00")
    assert total_in(_read(tmp_path, "hidden note", hidden)) == 950.0
    same = _annotated(page, b"/Subtype /FreeText /Contents (Total amount due: EUR 950.00)", "EUR 950.00")
    assert total_in(_read(tmp_path, "same note", same)) == 950.0


def _page_pdf(
    content: bytes, *, page_extra: bytes = b"", resources: bytes = b"", objects: list[bytes] | None = None
) -> bytes:
    """:func:`_pdf` with more in the page dictionary (``page_extra``: a crop box, annotations, a second key)."""
    return _pdf(content, resources=resources, objects=objects).replace(
        b"/Contents 5 0 R >>", b"/Contents 5 0 R " + page_extra + b" >>", 1
    )


def _gs(entry: bytes, extra: list[bytes] | None = None) -> bytes:
    """The hidden total under an ExtGState holding ``entry``."""
    return _pdf(
        _hidden(b"/G1 gs " + _text_ops([HIDDEN], 500)),
        resources=b"/ExtGState << /G1 << /Type /ExtGState " + entry + b" >> >>",
        objects=extra,
    )


_FUNCTION = b"<< /FunctionType 2 /Domain [0 1] /C0 [1] /C1 [1] /N 1 >>"
REVIEWED = {  # review of 2026-12-06: each drew the 950 line so that poppler's render shows nothing of it
    "dashed stroke": _pdf(_hidden(b"1 Tr [0 1000] 0 d " + _text_ops([HIDDEN], 500))),
    "transfer function": _gs(b"/TR 6 0 R", [_FUNCTION]),
    "soft mask": _gs(b"/SMask << /Type /Mask /S /Luminosity /G 6 0 R >>", [_FUNCTION]),
    "font in a graphics state": _gs(b"/Font [4 0 R 0.3]"),
    "colourant None": _pdf(
        _hidden(b"/CS0 cs 1 scn " + _text_ops([HIDDEN], 500)),
        resources=b"/ColorSpace << /CS0 [/Separation /None /DeviceGray 6 0 R] >>",
        objects=[_FUNCTION],
    ),
    "default gray remapped": _pdf(
        _hidden(b"0 g " + _text_ops([HIDDEN], 500)),
        resources=b"/ColorSpace << /DefaultGray [/CalGray << /WhitePoint [0.95 1 1.09] /Gamma 0.01 >>] >>",
    ),
    "squashed": _pdf(_hidden(b"50 0 0 0.02 0 500 cm BT /F1 10 Tf 1 0 Td (" + HIDDEN.encode() + b") Tj ET")),
    "past the right edge": _pdf(_hidden(b"BT /F1 10 Tf 604 500 Td (" + HIDDEN.encode() + b") Tj ET")),
    "risen away": _pdf(_hidden(b"BT /F1 10 Tf 5000 Ts 50 500 Td (" + HIDDEN.encode() + b") Tj ET")),
    "kerned away": _pdf(_hidden(b"BT /F1 10 Tf 50 500 Td [( ) -1000000 (" + HIDDEN.encode() + b")] TJ ET")),
    "word-spaced away": _pdf(_hidden(b"BT /F1 10 Tf 100000 Tw 50 500 Td ( " + HIDDEN.encode() + b") Tj ET")),
    "outside the media box": _page_pdf(
        _text_ops(SHOWN) + b"\nBT /F1 10 Tf 3000 500 Td (" + HIDDEN.encode() + b") Tj ET",
        page_extra=b"/CropBox [-5000 -5000 5595 5842]",
    ),
}


@pytest.mark.parametrize("how", sorted(REVIEWED))
def test_more_ways_to_draw_a_total_nobody_sees(tmp_path: Path, how: str) -> None:
    path = tmp_path / "attack.pdf"
    path.write_bytes(REVIEWED[how])
    with pytest.raises(Quarantined) as caught:
        parse_file(path, Limits())
    assert caught.value.reason == "total_not_largest", caught.value


def _contents_twice() -> bytes:
    """A page dictionary defining ``/Contents`` twice: pypdf reads the first (a 950 total), poppler draws the last."""
    return _page_pdf(
        _text_ops([*SHOWN[:3], HIDDEN]),
        page_extra=b"/Contents 6 0 R",
        objects=[b"<< /Length %d >>\nstream\n" % len(_text_ops(SHOWN)) + _text_ops(SHOWN) + b"\nendstream"],
    )


def test_what_one_reader_reads_and_another_shows_is_not_decided(tmp_path: Path) -> None:
    """Review of 2026-12-06: a page dictionary defining ``/Contents`` twice was read by pypdf from the first (a 950
    total) and drawn by poppler from the last (95,000): ``corrupt``. Past pypdf's bound on form draws (5,000 a
    page) the rest of the page was not read, a 95,000 total included: ``truncated``. A content stream nested past
    Python's recursion limit escaped the reader as a ``RecursionError``: ``corrupt``. Forms naming one another many
    times made the image test take hours on a 1 KB file; each form is now looked into once."""
    twice = _contents_twice()
    empty = b"<< /Type /XObject /Subtype /Form /BBox [0 0 1 1] /Length 0 >>\nstream\n\nendstream"
    total = _text_ops(["Total amount due: EUR 95,000.00"], 740)
    form = (
        b"<< /Type /XObject /Subtype /Form /BBox [0 0 595 842] /Resources << /Font << /F1 4 0 R >> >> "
        b"/Length %d >>\nstream\n" % len(total) + total + b"\nendstream"
    )
    capped = _pdf(
        _text_ops([*SHOWN[:3], "Deposit received with order: EUR 950.00"]) + b"\n" + b"/E Do " * 5001 + b"\n/T Do",
        resources=b"/XObject << /E 6 0 R /T 7 0 R >>",
        objects=[empty, form],
    )
    deep = _pdf(_text_ops(SHOWN) + b"\nBT /F1 10 Tf 50 500 Td " + b"[" * 3000 + b"]" * 3000 + b" TJ ET")
    names = b" ".join(b"/X%d 6 0 R" % i for i in range(30))
    fan = (
        b"<< /Type /XObject /Subtype /Form /BBox [0 0 1 1] /Resources << /XObject << " + names + b" >> >> /Length 0 >>"
    )
    fanned = _pdf(
        b"BT /F1 10 Tf 50 800 Td (Invoice) Tj ET",
        resources=b"/XObject << " + names + b" >>",
        objects=[fan + b"\nstream\n\nendstream"],
    )
    for name, data, reason in (
        ("twice", twice, "corrupt"),
        ("capped", capped, "truncated"),
        ("deep", deep, "corrupt"),
        ("fanned", fanned, "no_text"),
    ):
        path = tmp_path / f"{name}.pdf"
        path.write_bytes(data)
        with pytest.raises(Quarantined) as caught:
            parse_file(path, Limits())
        assert caught.value.reason == reason, (name, caught.value)
    assert total_in(_read(tmp_path, "under the cap", capped.replace(b"/E Do " * 5001, b"/E Do " * 10))) == 95000.0


@pytest.mark.parametrize("host_level", [logging.NOTSET, logging.ERROR])
def test_a_key_defined_twice_is_seen_whatever_level_the_host_set_for_pypdf(tmp_path: Path, host_level: int) -> None:
    """The check listens to pypdf's warnings: a host that silenced pypdf (ERROR) still has the page refused, and the
    level is left as the host set it, without touching it where warnings were already on (``setLevel`` clears every
    logger's cache: once a PDF, 17 ms of each 400-document run)."""
    path = tmp_path / "twice.pdf"
    path.write_bytes(_contents_twice())
    pypdf_log = logging.getLogger("pypdf")
    before = pypdf_log.level
    pypdf_log.setLevel(host_level)
    levels: list[int] = []
    real_set_level = logging.Logger.setLevel

    def set_level(logger: logging.Logger, level: int | str) -> None:
        if logger is pypdf_log:
            levels.append(int(level))
        real_set_level(logger, level)

    try:
        with mock.patch.object(logging.Logger, "setLevel", set_level), pytest.raises(Quarantined) as caught:
            parse_file(path, Limits())
        assert caught.value.reason == "corrupt"
        assert pypdf_log.level == host_level
        assert levels == ([] if host_level == logging.NOTSET else [logging.WARNING, host_level])
    finally:
        pypdf_log.setLevel(before)


def test_a_key_defined_twice_is_seen_by_a_block_another_one_left_and_by_a_logger_dict_config_disabled(
    tmp_path: Path,
) -> None:
    """Review of 2026-12-06 (evening): with the host's pypdf logger at ERROR, the first of two overlapping blocks (two
    threads reading PDFs) put ERROR back on leaving, and the second missed its PDF's disputed key; a logger that
    ``logging.config.dictConfig`` disabled (``disable_existing_loggers``, its default) left every block blind."""
    from tasks.documents.readers import _DisputedKeys

    pypdf_log = logging.getLogger("pypdf")
    before = (pypdf_log.level, pypdf_log.disabled)
    try:
        pypdf_log.setLevel(logging.ERROR)
        first, second = _DisputedKeys(), _DisputedKeys()
        first.__enter__()
        second.__enter__()
        first.__exit__(None, None, None)
        pypdf_log.warning("Multiple definitions in dictionary at byte 0x1 for key /Contents")
        second.__exit__(None, None, None)
        assert second.seen
        assert pypdf_log.level == logging.ERROR

        pypdf_log.setLevel(logging.NOTSET)
        pypdf_log.disabled = True  # what dictConfig does to a logger that exists when it runs
        path = tmp_path / "twice.pdf"
        path.write_bytes(_contents_twice())
        with pytest.raises(Quarantined) as caught:
            parse_file(path, Limits())
        assert caught.value.reason == "corrupt"
        assert pypdf_log.disabled
    finally:
        pypdf_log.setLevel(before[0])
        pypdf_log.disabled = before[1]


def test_a_pdf_is_not_read_unchecked_where_the_process_disabled_warnings(tmp_path: Path) -> None:
    """``logging.disable(logging.WARNING)`` drops pypdf's warning before any handler, whatever the logger's own
    settings: the page defining ``/Contents`` twice used to be read from the first definition (a 950 total while a
    viewer shows the last). The check cannot run then, so the PDF is quarantined unread, saying why; an honest PDF
    too, until the switch is lifted, and then both are read as before."""
    twice, honest = tmp_path / "twice.pdf", tmp_path / "honest.pdf"
    twice.write_bytes(_contents_twice())
    honest.write_bytes(_pdf(_text_ops(["Invoice 7781", "Total amount due: EUR 950.00"])))
    before = logging.root.manager.disable
    try:
        logging.disable(logging.WARNING)
        for path in (twice, honest):
            with pytest.raises(Quarantined) as caught:
                parse_file(path, Limits())
            assert caught.value.reason == "check_unavailable", (path.name, caught.value)
            assert "logging.disable" in caught.value.detail
    finally:
        logging.disable(before)
    with pytest.raises(Quarantined) as caught:
        parse_file(twice, Limits())
    assert caught.value.reason == "corrupt"
    assert total_in(parse_file(honest, Limits()).text) == 950.0


def test_annotations_a_viewer_draws_are_read_whatever_their_type(tmp_path: Path) -> None:
    """Review of 2026-12-06: a Stamp or free-text note flagged Invisible (which applies to unknown types only: viewers
    draw these) and a Link or Popup with an appearance stream were left out, and the 950 on the page was decided."""
    page = [*SHOWN[:3], "Total amount due: EUR 950.00"]
    for annot in (b"/Subtype /Stamp /F 5", b"/Subtype /FreeText /F 5", b"/Subtype /Link /F 4", b"/Subtype /Popup"):
        path = tmp_path / "annotated.pdf"
        path.write_bytes(_annotated(page, annot, "Total amount due: EUR 95,000.00"))
        with pytest.raises(Quarantined) as caught:
            parse_file(path, Limits())
        assert caught.value.reason == "hidden_text", (annot, caught.value)


@pytest.mark.skipif(not ocr_available(), reason="tesseract is not installed")
def test_pictures_of_a_total_under_text_a_person_may_not_see_are_read_by_ocr(tmp_path: Path) -> None:
    """Review of 2026-12-06: an image showing the 95,000 total under a white (not invisible) 950 line, the same as an
    inline image, and a tiling pattern whose cell draws the 95,000 line (pypdf does not read pattern content) were
    read from the text layer at 950. Such pages are now read by OCR."""
    image, pixels, place, (w, h) = _picture([*SHOWN[:3], "Total amount due: EUR 95,000.00"])
    white = b"q 1 g " + _text_ops([HIDDEN], 780) + b" Q"
    inline = b"BI /W %d /H %d /CS /G /BPC 8 /F /Fl ID " % (w, h) + pixels + b" EI"
    cell = _text_ops(["Total amount due: EUR 95,000.00"], 17)
    pattern = (
        b"<< /Type /Pattern /PatternType 1 /PaintType 1 /TilingType 1 /BBox [0 0 2000 20] /XStep 2000 /YStep 20 "
        b"/Matrix [1 0 0 1 0 735] /Resources << /Font << /F1 4 0 R >> >> /Length %d >>\nstream\n"
        % len(cell)
        + cell
        + b"\nendstream"
    )
    cases = {
        "image": _pdf(b"q " + place + b"/Im0 Do Q\n" + white, resources=b"/XObject << /Im0 6 0 R >>", objects=[image]),
        "inline image": _pdf(b"q " + place + inline + b" Q\n" + white),
        "pattern": _pdf(
            _text_ops([*SHOWN[:3], "Deposit received with order: EUR 950.00"])
            + b"\nq /Pattern cs /P0 scn 50 735 400 15 re f Q",
            resources=b"/Pattern << /P0 6 0 R >>",
            objects=[pattern],
        ),
    }
    for name, data in cases.items():
        assert total_in(_read(tmp_path, name, data)) == 95000.0, name


def test_a_docx_total_in_a_content_control_or_a_tracked_insertion_is_read(tmp_path: Path) -> None:
    """Review of 2026-12-06: python-docx's paragraph text leaves out runs inside an inline content control
    (``w:sdt``) or a tracked insertion (``w:ins``), which Word shows: 'Total amount due: ' was read without its
    EUR 95,000.00 and the document decided on a 950 deposit line. Every run of a paragraph is read now."""
    import copy

    import docx

    for wrapper in ("sdt", "ins"):
        document = docx.Document()
        for line in ["INVOICE No. INV-20431", "Deposit received with order: EUR 950.00"]:
            document.add_paragraph(line)
        paragraph = document.add_paragraph("Total amount due: ")
        run = paragraph.add_run("EUR 95,000.00")._r
        w = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
        outer = run.makeelement(f"{w}{wrapper}", {f"{w}id": "1", f"{w}author": "x"} if wrapper == "ins" else {})
        if wrapper == "sdt":
            content = outer.makeelement(f"{w}sdtContent", {})
            outer.append(content)
            content.append(copy.deepcopy(run))
        else:
            outer.append(copy.deepcopy(run))
        run.addnext(outer)
        paragraph._p.remove(run)
        path = tmp_path / f"{wrapper}.docx"
        document.save(str(path))
        text = parse_file(path, Limits()).text
        assert "Total amount due: EUR 95,000.00" in text and total_in(text) == 95000.0, (wrapper, text)
