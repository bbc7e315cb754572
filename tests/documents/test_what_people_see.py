"""The pipeline decides on the text a person reading the document sees (re-review of 2026-12-05, finding 2).

An invoice whose visible total needs the payment sign-off was decided ``allow`` at EUR 950.00 in two ways: a
``multipart/alternative`` mail whose text/plain part (read) said 950 while its text/html part (what mail programs
show) said 95,000; and an HTML mail whose visible amount was 95,000 with a hidden ``Total amount due: EUR 950.00``
line (``display:none``, or the ``hidden`` attribute), the total the extractor then picked. Now a mail whose two
texts name different amounts is quarantined ``alternatives_differ``, and a page that hides an amount from its reader
``hidden_text``; hidden text without an amount is left out of what is decided. Real flytekit stages, real models.
"""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tasks.documents import stages
from tests.documents.conftest import options

BASE = (
    "INVOICE No. INV-20431\nIssued by: Northwind Trading GmbH\nBill to: Contoso Ltd\nInvoice date: 2024-03-11\n"
    "Description: security audit, 12 units\nPayment terms: net 30 days\nTotal amount due: {amt}\n"
    "Please transfer the amount due to the account below."
)
VISIBLE = BASE.format(amt="EUR 95,000.00")


def _html(body: str, extra: str = "", head: str = "") -> str:
    lines = "".join(f"<p>{line}</p>" for line in body.splitlines())
    return f"<html><head>{head}</head><body>{lines}{extra}</body></html>"


def _mail(plain: str | None, markup: str | None) -> bytes:
    m = EmailMessage()
    m["From"], m["To"], m["Subject"] = "billing@northwind.example", "accounts@example.org", "Invoice INV-20431"
    if plain is not None:
        m.set_content(plain)
        if markup is not None:
            m.add_alternative(markup, subtype="html")
    else:
        m.set_content(markup, subtype="html")
    return bytes(m)


def _decided(tmp_path: Path, files: dict[str, bytes]) -> dict[str, dict[str, object]]:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for name, data in files.items():
        (inbox / name).write_bytes(data)
    opts = options(chunk_size=64)
    (chunk,) = stages.ingest(source=str(inbox), options=opts)
    classified = stages.classify(docs=stages.parse_protect(chunk=chunk, options=opts), options=opts)
    decided: pd.DataFrame = stages.decide(docs=classified, options=opts)
    return {str(r["name"]): r for r in decided.to_dict("records")}


def test_what_is_decided_is_what_a_person_sees(tmp_path: Path) -> None:
    hidden_line = "Total amount due: EUR 950.00"
    shown = VISIBLE.replace("Total amount due", "Amount")  # no total word beside the visible amount
    by_class = _html(shown, f'<p class="x">{hidden_line}</p>', "<style>.x { display: none }</style>")
    by_rule = _html(shown, f"<div><p>{hidden_line}</p></div>", "<style>div > p{font-size:0}</style>")
    preheader = '<span style="display:none;max-height:0;overflow:hidden">Your March bill</span>'
    rows = _decided(
        tmp_path,
        {
            "html_only.eml": _mail(None, _html(VISIBLE)),
            "same_both.eml": _mail(VISIBLE, _html(VISIBLE)),
            "alternatives.eml": _mail(BASE.format(amt="EUR 950.00"), _html(VISIBLE)),
            "hidden_style.eml": _mail(None, _html(shown, f'<div style="display:none">{hidden_line}</div>')),
            "hidden_attribute.eml": _mail(None, _html(shown, f"<p hidden>{hidden_line}</p>")),
            "hidden_class.html": by_class.encode(),
            "unplaced_rule.html": by_rule.encode(),
            "preheader.html": _html(VISIBLE, preheader).encode(),
        },
    )
    for name in ("html_only.eml", "same_both.eml", "preheader.html"):  # the honest ones: the sign-off is asked
        row = rows[name]
        assert row["status"] == "ok" and row["amount"] == 95000.0, row
        assert row["effect"] == "require_approval" and row["gate"] == "payment-signoff", row
    assert rows["alternatives.eml"]["reason"] == "alternatives_differ", rows["alternatives.eml"]
    for name in ("hidden_style.eml", "hidden_attribute.eml", "hidden_class.html", "unplaced_rule.html"):
        row = rows[name]
        assert row["status"] == "quarantine" and row["reason"] == "hidden_text", row
        assert pd.isna(row["amount"]) and row["effect"] == "none" and row["policy_record"] == ""


@pytest.mark.parametrize(
    ("markup", "visible", "hidden", "unresolved"),
    [
        ('<p>a</p><div hidden><p>b</p><br><img src="x">c</div><p>d</p>', "a d", "b c", False),
        ('<p style="font-size:0px">b</p><p style="font-size:0.5em">a</p>', "a", "b", False),
        ('<p style="opacity: 0 !important">b</p><p style="opacity:0.8">a</p>', "a", "b", False),
        ('<p style="max-height:0;overflow:hidden">b</p><p style="max-height:0">a</p>', "a", "b", False),
        ("<style>@media (max-width:480px){#m{display:none}}</style><p id=m>b</p><p>a</p>", "a", "b", False),
        (
            "<style>span.x, .y{visibility:hidden}</style><span class='x'>b</span> <i class='z y'>c</i> a",
            "a",
            "bc",
            False,
        ),
        ("<style>p:first-child{display:none}</style><p>a</p>", "a", "", True),
        ('<p style="d\\isplay:/**/none">b</p><p style="\\64 isplay : NONE">c</p>a', "a", "bc", False),
        ("<details><summary>b</summary>c</details><details open>a</details>", "a", "bc", False),
        ("<style>p{color:red}</style><p>a</p><script>b</script>", "a", "", False),
    ],
)
def test_html_views(markup: str, visible: str, hidden: str, unresolved: bool) -> None:
    from tasks.documents.parse import html_views

    views = html_views(f"<html><body>{markup}</body></html>")
    assert (" ".join(views.visible.split()), " ".join(views.hidden.split())) == (visible, hidden)
    assert views.unresolved is unresolved


HID = "Total amount due: EUR 950.00"
SHOWN = VISIBLE.replace("Total amount due", "Amount")
KEPT = BASE.format(amt="").replace("Total amount due: \n", "Deposit received: EUR 950.00\n")
TOTAL = "Total amount due: EUR 95,000.00"


def _alternatives(*parts: tuple[str, str]) -> bytes:
    from email.mime.multipart import MIMEMultipart
    from email.mime.text import MIMEText

    m = MIMEMultipart("alternative")
    m["From"], m["To"], m["Subject"] = "billing@northwind.example", "accounts@example.org", "Invoice INV-20431"
    for subtype, body in parts:
        m.attach(MIMEText(body, subtype, "utf-8"))
    return m.as_bytes()


def _forwarded() -> bytes:
    from email.mime.message import MIMEMessage
    from email.mime.multipart import MIMEMultipart
    from email.mime.text import MIMEText

    inner = EmailMessage()
    inner["Subject"] = "Invoice INV-20431"
    inner.set_content(VISIBLE)
    m = MIMEMultipart("mixed")
    m["From"], m["To"], m["Subject"] = "billing@northwind.example", "accounts@example.org", "Fw: invoice"
    m.attach(MIMEText("Deposit received: EUR 950.00. Please see the forwarded invoice below.", "plain", "utf-8"))
    m.attach(MIMEMessage(inner))
    return m.as_bytes()


REREVIEW = {  # re-review of 2026-12-05 (fourth): each was decided allow at 950 while a person saw 95,000
    "stray_end_tag.html": _html(SHOWN, f'<div style="display:none"></span>{HID}</div>'),
    "style_after.html": _html(SHOWN, f'<p class="x">{HID}</p><style>.x{{display:none}}</style>'),
    "css_string_brace.html": _html(SHOWN, f'<p class="x">{HID}</p>', '<style>.x{display:none;content:"{"}</style>'),
    "opacity_percent.html": _html(SHOWN, f'<p style="opacity:0%">{HID}</p>'),
    "scale_zero.html": _html(SHOWN, f'<p style="transform:scale(0)">{HID}</p>'),
    "off_screen.html": _html(SHOWN, f'<p style="position:absolute;left:-9999px">{HID}</p>'),
    "zero_width_currency.html": _html(
        SHOWN.replace("EUR", "E&#8203;UR"),
        f"<div><p>{HID.replace('EUR', 'E&#8203;UR')}</p></div>",
        "<style>div > p{display:none}</style>",
    ),
    "noscript_total.html": _html(KEPT, f"<noscript><p>{TOTAL}</p></noscript>"),
    "css_content_total.html": _html(KEPT, '<p class="t"></p>', f'<style>.t::after{{content:"{TOTAL}"}}</style>'),
    "input_value_total.html": _html(KEPT, '<p>Total amount due: <input value="EUR 95,000.00"></p>'),
    "abrupt_comment.html": _html(KEPT, f"<!--><p>{TOTAL}</p><!-- -->"),
    "swapped_totals.eml": _mail(
        BASE.format(amt="EUR 950.00") + "\nDeposit already paid: EUR 95,000.00",
        _html(VISIBLE + "\nDeposit already paid: EUR 950.00"),
    ),
    "two_html_alternatives.eml": _alternatives(
        ("plain", BASE.format(amt="EUR 950.00")),
        ("html", _html(BASE.format(amt="EUR 950.00"))),
        ("html", _html(VISIBLE)),
    ),
    "zero_width_in_amount.eml": _mail(BASE.format(amt="EUR 950.00"), _html(BASE.format(amt="EUR 950&#8203;00.00"))),
    "forwarded_invoice.eml": _forwarded(),
}


@pytest.mark.parametrize("name", sorted(REREVIEW))
def test_an_amount_a_person_sees_but_the_text_read_lacks_is_never_decided(name: str, tmp_path: Path) -> None:
    """The reader's model of what a browser shows cannot be complete; the backstop does not depend on it: every
    amount anywhere in the document (its markup, its hidden text, each part of a mail) must be in the text read, and
    in HTML the total read must be its largest amount. Otherwise the document is quarantined, never decided."""
    from tasks.documents.parse import Limits, parse_file
    from tasks.documents.readers import Quarantined

    data = REREVIEW[name]
    path = tmp_path / name
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    with pytest.raises(Quarantined) as quarantined:
        parse_file(path, Limits())
    assert quarantined.value.reason in {"hidden_text", "total_not_largest", "alternatives_differ"}, quarantined.value
    honest = tmp_path / "honest.html"
    honest.write_text(_html(VISIBLE, '<p style="color:#333">Thank you for your business.</p>'))
    assert "EUR 95,000.00" in parse_file(honest, Limits()).text


def _docx(tmp_path: Path, name: str, hidden: str, *, shown: str = SHOWN) -> Path:
    import docx

    document = docx.Document()
    for line in shown.splitlines():
        document.add_paragraph(line)
    document.add_paragraph().add_run(hidden).font.hidden = True  # w:vanish: Word neither shows nor prints it
    path = tmp_path / name
    document.save(str(path))
    return path


def test_a_docx_run_word_does_not_show_is_no_total(tmp_path: Path) -> None:
    """The same attack in a DOCX: a hidden run (``w:vanish``) ``Total amount due: EUR 950.00`` under a shown
    ``Amount: EUR 95,000.00`` was read as the total. A hidden run holding an amount is ``hidden_text``; a hidden run
    without one is read as before, and then the total read must be the largest amount."""
    from tasks.documents.parse import Limits, parse_file
    from tasks.documents.readers import Quarantined

    with pytest.raises(Quarantined, match="hidden_text"):
        parse_file(_docx(tmp_path, "hidden_total.docx", HID), Limits())
    with pytest.raises(Quarantined, match="total_not_largest"):
        parse_file(_docx(tmp_path, "hidden_note.docx", "see terms", shown=f"{SHOWN}\n{HID}"), Limits())
    honest = parse_file(_docx(tmp_path, "honest.docx", "internal note: checked", shown=VISIBLE), Limits())
    assert "Total amount due: EUR 95,000.00" in honest.text


def test_a_docx_run_painted_white_or_too_small_to_read_is_no_total(tmp_path: Path) -> None:
    """Left open on 2026-12-05: a run Word shows but a person does not see on a white page (white, or the theme's
    background colour, half a point high, squeezed to 1%, directly or through a style) holding ``Total amount due: EUR
    950.00`` under a shown 95,000 was read as the total. Such a DOCX is now decided only when its total as read is its
    largest amount; an honest one with white text (a heading on a shaded cell) whose total is its largest is read."""
    import docx
    from docx.enum.dml import MSO_THEME_COLOR
    from docx.shared import Pt, RGBColor

    from tasks.documents.parse import Limits, parse_file
    from tasks.documents.readers import Quarantined

    def write(name: str, style: Any, shown: str = SHOWN, hidden: str = HID) -> Path:
        document = docx.Document()
        for line in shown.splitlines():
            document.add_paragraph(line)
        style(document, document.add_paragraph().add_run(hidden))
        path = tmp_path / name
        document.save(str(path))
        return path

    def styled(document: Any, run: Any) -> None:
        faint = document.styles.add_style("Faint", 2)  # WD_STYLE_TYPE.CHARACTER
        faint.font.color.rgb = RGBColor(0xFE, 0xFE, 0xFE)
        run.style = faint

    ways = {
        "white": lambda _d, run: setattr(run.font.color, "rgb", RGBColor(0xFF, 0xFF, 0xFF)),
        "background": lambda _d, run: setattr(run.font.color, "theme_color", MSO_THEME_COLOR.BACKGROUND_1),
        "half a point": lambda _d, run: setattr(run.font, "size", Pt(0.5)),
        "a white style": styled,
    }
    for name, style in ways.items():
        with pytest.raises(Quarantined, match="total_not_largest"):
            parse_file(write(f"{name.replace(' ', '_')}.docx", style), Limits())
    heading = write("heading.docx", ways["white"], shown=VISIBLE, hidden="INVOICE")
    assert "Total amount due: EUR 95,000.00" in parse_file(heading, Limits()).text


def test_a_docx_run_on_a_ground_of_its_own_colour_is_no_total(tmp_path: Path) -> None:
    """Left open on 2026-12-06: a run painted in the colour under it (yellow on its own yellow highlight, dark blue on
    a dark blue paragraph or cell shading, black on a black page, a style whose colour is its shading's) holding
    ``Total amount due: EUR 950.00`` under a shown 95,000 was read as the total. Such a DOCX is now held to the total
    rule; the same run in a colour that stands out from its ground is read as before (it is what a person sees)."""
    import docx
    from docx.oxml import parse_xml
    from docx.shared import RGBColor

    from tasks.documents.parse import Limits, parse_file
    from tasks.documents.readers import Quarantined

    W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
    w = f'xmlns:w="{W}"'

    def write(name: str, ink: str, ground: str, where: str) -> Path:
        document = docx.Document()
        # python-docx's template holds 56 table styles with white header text, none of which a blank document saved
        # by Word has; the reader no longer holds a document to the total rule for styles it does not use, and these
        # documents are made as Word makes them
        for style in list(document.styles.element.iter(f"{{{W}}}style")):
            if style.find(f"{{{W}}}tblStylePr") is not None:
                style.getparent().remove(style)
        for line in SHOWN.splitlines():
            document.add_paragraph(line)
        if where == "cell":
            paragraph = document.add_table(rows=1, cols=1).cell(0, 0).paragraphs[0]
            paragraph._p.getparent().get_or_add_tcPr().append(
                parse_xml(f'<w:shd {w} w:val="clear" w:fill="{ground}"/>')
            )
        else:
            paragraph = document.add_paragraph()
        run = paragraph.add_run(HID)
        run.font.color.rgb = RGBColor.from_string(ink)
        if where == "highlight":
            run._r.get_or_add_rPr().append(parse_xml(f'<w:highlight {w} w:val="{ground}"/>'))
        elif where == "paragraph":
            paragraph._p.get_or_add_pPr().append(parse_xml(f'<w:shd {w} w:val="clear" w:fill="{ground}"/>'))
        elif where == "page":
            document.element.insert(0, parse_xml(f'<w:background {w} w:color="{ground}"/>'))
        elif where == "style":
            style = document.styles.add_style("Boxed", 2)  # WD_STYLE_TYPE.CHARACTER
            style.font.color.rgb = RGBColor.from_string(ink)
            style.element.get_or_add_rPr().append(parse_xml(f'<w:shd {w} w:val="clear" w:fill="{ground}"/>'))
            run.font.color.rgb = None
            run.style = style
        path = tmp_path / f"{name}.docx"
        document.save(str(path))
        return path

    unseen = {
        "yellow_on_its_highlight": ("FFFF00", "yellow", "highlight"),
        "dark_blue_on_its_paragraph": ("1F3864", "1F3864", "paragraph"),
        "grey_on_its_cell": ("7F7F7F", "808080", "cell"),
        "black_on_a_black_page": ("000000", "000000", "page"),
        "a_style_on_its_own_shading": ("C00000", "C00000", "style"),
    }
    for name, (ink, ground, where) in unseen.items():
        with pytest.raises(Quarantined, match="total_not_largest"):
            parse_file(write(name, ink, ground, where), Limits())
    seen = {"black_on_yellow": ("000000", "yellow", "highlight"), "yellow_on_navy": ("FFFF00", "000080", "cell")}
    for name, (ink, ground, where) in seen.items():
        assert HID in parse_file(write(name, ink, ground, where), Limits()).text
