"""A document is read whole or not at all, and a classification is reused only for the text it was made on.

The attacker has launch rights: ``max_chars`` and ``max_pages`` are launch options. A text cut at ``max_chars`` inside
``EUR 95,000.00`` left ``EUR 95``: the payment was decided ``allow`` at 95 (no sign-off) and would have been posted
(review of 2026-12-05, document finding 1). The classification cache was keyed by the document's digest, so the
label of a 40-character prefix was served for the whole text by the next run (finding 2).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tasks.documents import stages
from tasks.documents.corpus_files import pdf_bytes
from tasks.documents.readers import Quarantined, read_pdf
from tests.documents.conftest import options

INVOICE = (
    "INVOICE No. INV-20431\nIssued by: Northwind Trading GmbH\nBill to: Contoso Ltd\nInvoice date: 2024-03-11\n"
    "Description: security audit, 12 units\nPayment terms: net 30 days\nTotal amount due: EUR 95,000.00\n"
    "Please transfer the amount due to the account below."
)


def _decided(inbox: Path, **kw: object) -> pd.DataFrame:
    opts = options(chunk_size=64, **kw)
    (chunk,) = stages.ingest(source=str(inbox), options=opts)
    classified = stages.classify(docs=stages.parse_protect(chunk=chunk, options=opts), options=opts)
    return stages.decide(docs=classified, options=opts)


def _inbox(tmp_path: Path, name: str, data: bytes) -> Path:
    folder = tmp_path / "inbox"
    folder.mkdir(exist_ok=True)
    (folder / name).write_bytes(data)
    return folder


def test_a_text_over_max_chars_is_quarantined_not_cut_inside_its_amount(tmp_path: Path) -> None:
    inbox = _inbox(tmp_path, "invoice.txt", INVOICE.encode())
    (whole,) = _decided(inbox).to_dict("records")
    assert whole["status"] == "ok" and whole["amount"] == 95000.0 and whole["effect"] != "allow", whole

    cut = INVOICE.index("EUR 95,000.00") + len("EUR 95")
    (row,) = _decided(inbox, max_chars=cut).to_dict("records")
    assert row["status"] == "quarantine" and row["reason"] == "truncated", row
    assert pd.isna(row["amount"]) and row["effect"] == "none" and row["policy_record"] == ""


def test_a_pdf_with_more_pages_than_max_pages_is_quarantined_not_read_in_part(tmp_path: Path) -> None:
    filler = "\n".join(f"Line {i}: itemised service hours, see the schedule attached." for i in range(70))
    text = INVOICE.replace("Total amount due", filler + "\nTotal amount due")  # the total on page 2
    inbox = _inbox(tmp_path, "invoice.pdf", pdf_bytes(text))
    (whole,) = _decided(inbox).to_dict("records")
    assert whole["status"] == "ok" and whole["amount"] == 95000.0, whole

    (row,) = _decided(inbox, max_pages=1, ocr_pages=1).to_dict("records")
    assert row["status"] == "quarantine" and row["reason"] == "truncated", row
    with pytest.raises(Quarantined, match=r"2 pages, more than max_pages=1; raise it to read it whole"):
        read_pdf(inbox / "invoice.pdf", max_pages=1, ocr_pages=1, min_chars=20)


def test_a_cached_classification_is_not_served_for_another_text_of_the_same_document(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The parse of a document changed between two runs (here the old cut at 40 characters; equally a parser or
    redaction upgrade): the answer cached for the first text must not be served for the second."""
    from tasks.documents import parse

    contract = (
        "INVOICE header: Total amount due: EUR 9,400.00\n\nSERVICE AGREEMENT between Northwind Trading GmbH and "
        "Contoso Ltd. The parties agree on the terms below: term of twelve months, termination with ninety days "
        "notice, governing law of Germany, liability capped at the annual fees, confidentiality of both parties."
    )
    inbox = _inbox(tmp_path, "agreement.txt", contract.encode())
    finish = parse.finish

    def cut_at_40(parsed: parse.Parsed, limits: parse.Limits) -> parse.Parsed:
        parsed.text = parsed.text[:40]
        return finish(parsed, limits)

    monkeypatch.setattr(parse, "finish", cut_at_40)
    (prefix,) = _decided(inbox).to_dict("records")
    monkeypatch.setattr(parse, "finish", finish)
    (row,) = _decided(inbox).to_dict("records")
    assert prefix["status"] == row["status"] == "ok" and prefix["digest"] == row["digest"]
    assert not row["cached"], (prefix, row)  # classified on its own text, not served the prefix's answer


def test_routing_thresholds_below_the_deployments_floors_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review of 2026-12-05, document finding 3: ``fast_threshold`` and ``strong_threshold`` are launch options and
    choose which model's label counts; at ``fast_threshold=0.05`` the cheap model's label of a contract became the
    sealed one. Raising them is the launcher's; lowering them below the deployment's floors is refused."""
    from flytekitplugins.aios_core.errors import GovernanceDenied
    from flytekitplugins.aios_core.settings import reset_settings

    inbox = _inbox(tmp_path, "invoice.txt", INVOICE.encode())
    opts = options(chunk_size=64, fast_threshold=0.05)
    (chunk,) = stages.ingest(source=str(inbox), options=opts)
    protected = stages.parse_protect(chunk=chunk, options=opts)
    with pytest.raises(GovernanceDenied, match=r"fast_threshold=0.05 \(the floor is 0.8, AIOS_FAST_THRESHOLD_FLOOR\)"):
        stages.classify.task_function(docs=protected, options=opts)
    low_strong = options(chunk_size=64, strong_threshold=0.3)
    with pytest.raises(GovernanceDenied, match=r"strong_threshold=0.3 \(the floor is 0.7"):
        stages.classify.task_function(docs=protected, options=low_strong)

    (stricter,) = _decided(inbox, fast_threshold=0.95, strong_threshold=0.9).to_dict("records")  # more review: fine
    assert stricter["status"] == "ok" and stricter["amount"] == 95000.0

    monkeypatch.setenv("AIOS_FAST_THRESHOLD_FLOOR", "0.05")  # the deployment's choice, not the launch's
    reset_settings()
    (lowered,) = _decided(inbox, fast_threshold=0.05).to_dict("records")
    assert lowered["status"] == "ok"


PADDED = INVOICE.replace(
    "Total amount due",
    "\n".join(f"Line item {i}: consulting, workshop session {i}." for i in range(66)) + "\nTotal amount due",
)  # the total on page 2 of a PDF


def test_a_mail_whose_attachment_is_not_read_whole_is_quarantined_with_it(tmp_path: Path) -> None:
    """Re-review of 2026-12-05, finding 1: an attachment quarantined ``truncated`` (``max_pages=1``) was left out and
    the mail decided on its body's amount (950, ``allow``). Now the mail goes with its attachment."""
    from email.message import EmailMessage

    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "billing@northwind.example", "accounts@example.org", "Invoice INV-20431"
    msg.set_content("Hello,\n\nplease find invoice INV-20431 attached (EUR 950.00 of it is travel).\n\nRegards")
    msg.add_attachment(pdf_bytes(PADDED), maintype="application", subtype="pdf", filename="invoice.pdf")
    inbox = _inbox(tmp_path, "invoice.eml", bytes(msg))
    (whole,) = _decided(inbox).to_dict("records")
    assert whole["status"] == "ok" and whole["amount"] == 95000.0, whole
    (row,) = _decided(inbox, max_pages=1, ocr_pages=1).to_dict("records")
    assert row["status"] == "quarantine" and row["reason"] == "truncated", row
    assert pd.isna(row["amount"]) and row["policy_record"] == ""


def _scan(tmp_path: Path, name: str, text: str, size: tuple[int, int] | None = None) -> bytes:
    """A one-page PDF holding ``text`` as an image only (a scan)."""
    from tasks.documents.corpus_files import render_image

    image = render_image(text).convert("RGB")
    if size is not None:
        image = image.resize(size)
    image.save(tmp_path / name, format="PDF", resolution=150.0)
    return (tmp_path / name).read_bytes()


def test_a_scanned_page_after_a_text_page_is_read(tmp_path: Path) -> None:
    """Re-review finding 3: OCR ran only when the whole text layer was short, so a scanned page 2 holding the total
    was never read, in an honest default run, and the invoice was decided at 950."""
    from pypdf import PdfReader, PdfWriter

    page1 = INVOICE.replace("Total amount due: EUR 95,000.00", "Travel expenses: EUR 950.00\nTotal: see page 2.")
    (tmp_path / "p1.pdf").write_bytes(pdf_bytes(page1))
    _scan(tmp_path, "p2.pdf", "Payment terms: net 30 days\nTotal amount due: EUR 95,000.00")
    writer = PdfWriter()
    for name in ("p1.pdf", "p2.pdf"):
        writer.add_page(PdfReader(str(tmp_path / name)).pages[0])
    (tmp_path / "mixed.pdf").write_bytes(b"")
    writer.write(str(tmp_path / "mixed.pdf"))
    text, pages, ocr = read_pdf(tmp_path / "mixed.pdf", max_pages=50, ocr_pages=3, min_chars=20)
    assert pages == 2 and ocr and "950.00" in text and "95,000" in text.replace(".", ","), text
    with pytest.raises(Quarantined, match=r"truncated: 1 page\(s\) without a text layer, and OCR is off"):
        read_pdf(tmp_path / "mixed.pdf", max_pages=50, ocr_pages=0, min_chars=20)  # it once rendered every page


def test_a_scanned_page_too_large_to_render_is_refused_not_cropped(tmp_path: Path) -> None:
    """Re-review finding 2: pages were rendered cropped to the square root of the launch's ``max_expanded_mb``, so a
    wide scan lost its right side (``EUR 95,`` read, 95 decided). A page is rendered whole or not at all."""
    from tasks.documents.containers import Budget

    path = tmp_path / "wide.pdf"
    path.write_bytes(_scan(tmp_path, "wide.pdf", "Total amount due: EUR 95,000.00", size=(2400, 300)))
    text, _pages, ocr = read_pdf(path, max_pages=50, ocr_pages=3, min_chars=20)
    assert ocr and "95" in text
    with pytest.raises(Quarantined, match=r"decompression_bomb: page 1 renders to 2400x300 pixels"):
        read_pdf(path, max_pages=50, ocr_pages=3, min_chars=20, budget=Budget(max_bytes=1 << 19, max_ratio=100.0))


def test_footers_nested_tables_and_text_boxes_of_a_docx_are_read(tmp_path: Path) -> None:
    """Re-review finding 4: only body paragraphs and top-level table cells were read, so a total in the footer or
    in a nested table never reached the amount extraction."""
    import docx

    from tasks.documents.readers import read_docx

    doc = docx.Document()
    for line in ("INVOICE No. INV-20431", "Issued by: Northwind Trading GmbH", "Travel expenses: EUR 950.00"):
        doc.add_paragraph(line)
    doc.sections[0].footer.paragraphs[0].text = "Total amount due (footer): EUR 95,000.00"
    outer = doc.add_table(rows=1, cols=1)
    outer.cell(0, 0).add_table(rows=1, cols=1).cell(0, 0).text = "Total amount due (nested): EUR 96,000.00"
    doc.save(str(tmp_path / "inv.docx"))
    text = read_docx(tmp_path / "inv.docx")
    assert "EUR 950.00" in text and "EUR 95,000.00" in text and "EUR 96,000.00" in text, text
    assert text.count("EUR 96,000.00") == 1  # once, not again as the outer cell's text
