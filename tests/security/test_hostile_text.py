"""Text that is not Unicode a table can hold, from whoever writes a document or a source row, costs one document at
most: it is read, escaped or quarantined with a reason, and the batch goes on.

Before, a PDF whose ToUnicode map sent a glyph to a lone UTF-16 surrogate, or a SQLite source row whose ``TEXT`` held
bytes that are not UTF-8, failed the whole batch with a traceback (``UnicodeEncodeError: surrogates not allowed``
writing the chunk's table; ``Could not decode to UTF-8 column 'name'`` listing the source).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tasks.documents.schemas import ProcessingOptions

LETTER = "Dear Anna, thank you for your letter of last week about the invoice. Best regards, Bob"


def _opts(**kw: object) -> ProcessingOptions:
    return ProcessingOptions(progress="off", chunk_size=64, approval_timeout_s=2.0, **kw)  # type: ignore[arg-type]


def _surrogate_pdf() -> bytes:
    """One page of text in which glyph 0x01 maps to U+D800 (a lone high surrogate) through its ToUnicode CMap."""
    cmap = (
        b"/CIDInit /ProcSet findresource begin 12 dict begin begincmap /CMapName /X def "
        b"1 begincodespacerange <00> <FF> endcodespacerange 1 beginbfchar <01> <D800> endbfchar "
        b"1 beginbfrange <20> <7E> <0020> endbfrange endcmap CMapName currentdict /CMap defineresource pop end end"
    )
    text = b"BT /F1 12 Tf 72 720 Td (" + LETTER.encode() + b" \x01\x01 end) Tj ET"
    objs = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%b\nendstream" % (len(text), text),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /ToUnicode 6 0 R >>",
        b"<< /Length %d >>\nstream\n%b\nendstream" % (len(cmap), cmap),
    ]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for i, body in enumerate(objs, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%b\nendobj\n" % (i, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
    return bytes(out)


def test_a_pdf_mapping_glyphs_to_lone_surrogates_is_read_and_the_chunk_crosses_its_task_boundary(
    tmp_path: Path,
) -> None:
    from tasks.documents.parse import Limits, parse_file
    from tasks.documents.stages import ingest
    from tasks.documents.stages import parse_protect as parse_task

    src = tmp_path / "src"
    src.mkdir()
    (src / "vendor.pdf").write_bytes(_surrogate_pdf())
    (src / "letter.txt").write_text(LETTER, encoding="utf-8")
    text = parse_file(src / "vendor.pdf", Limits()).text
    assert "\ufffd\ufffd" in text and "Anna" in text
    text.encode("utf-8")  # no surrogate left
    chunks = ingest(source=str(src), options=_opts())
    parsed = parse_task(chunk=chunks[0], options=_opts())  # the table is written and read back by flytekit
    rows = {r["name"]: r for r in parsed.to_dict(orient="records")}
    assert rows["vendor.pdf"]["status"] == "ok" and rows["letter.txt"]["status"] == "ok"
    assert "\ufffd" in rows["vendor.pdf"]["text"]


def test_a_surrogate_pair_is_made_whole_and_a_lone_one_replaced() -> None:
    from tasks.documents.parse import no_surrogates

    assert no_surrogates("a\ud83d\ude00b") == "a\U0001f600b"  # a pair split over two glyphs: one character
    assert no_surrogates("a\udcffb\ud800") == "a\ufffdb\ufffd"
    plain = "nothing to do"
    assert no_surrogates(plain) is plain


def _sqlite_source(path: Path) -> str:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE documents (id INTEGER, name TEXT, content BLOB)")  # an id of type TEXT fits too
    rows = [
        (1, b"good.txt", LETTER.encode()),
        (2, b"bad-\xff\n.txt", LETTER.encode() + b" two"),  # a name that is not UTF-8, with a newline
        (b"id-\xfe", b"odd-id.txt", LETTER.encode() + b" three"),  # an id that is not UTF-8
        (4, b"latin1.txt", (LETTER + " caf\xe9").encode("latin-1")),  # content TEXT that is not UTF-8
    ]
    for row_id, name, content in rows:
        conn.execute(
            "INSERT INTO documents VALUES (CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS TEXT))"
            if isinstance(row_id, bytes)
            else "INSERT INTO documents VALUES (?, CAST(? AS TEXT), CAST(? AS TEXT))",
            (row_id, name, content),
        )
    conn.commit()
    conn.close()
    return f"sqlite:///{path}"


def test_a_sql_source_whose_rows_hold_bytes_that_are_not_utf8_is_listed_and_accounted(tmp_path: Path) -> None:
    from tasks.documents.stages import ingest
    from tasks.documents.stages import parse_protect as parse_task

    url = _sqlite_source(tmp_path / "docs.db")
    chunks = ingest(source=url, options=_opts())
    assert sum(len(c) for c in chunks) == 4
    parsed = parse_task(chunk=chunks[0], options=_opts())
    rows = {r["name"]: r for r in parsed.to_dict(orient="records")}
    assert set(rows) == {"good.txt", "bad-\\xff\\n.txt", "odd-id.txt", "latin1.txt"}  # escaped, printable
    assert rows["good.txt"]["status"] == "ok" and rows["bad-\\xff\\n.txt"]["status"] == "ok"
    assert rows["latin1.txt"]["status"] == "ok" and "caf\xe9" in rows["latin1.txt"]["text"]  # the bytes, decoded
    assert (rows["odd-id.txt"]["status"], rows["odd-id.txt"]["reason"]) == ("quarantine", "not_found")


@pytest.mark.parametrize("table", ["documents", "docs"])
def test_a_sql_source_that_cannot_be_read_is_named_with_what_to_check_and_never_created(
    tmp_path: Path, table: str
) -> None:
    from tasks.documents.sources import list_documents

    missing = tmp_path / "typo.db"
    with pytest.raises(ValueError, match=r"could not be read .*: check that the database exists") as err:
        list(list_documents(f"sqlite:///{missing}", table))
    assert f"table {table!r}" in str(err.value)
    assert not missing.exists()  # a mistyped path made an empty database before
    url = _sqlite_source(tmp_path / "docs.db")
    if table != "documents":
        with pytest.raises(ValueError, match=rf"no such table: {table}"):
            list(list_documents(url, table))


def test_a_source_named_in_bytes_that_are_not_utf8_is_refused_by_name_before_the_task_runs(tmp_path: Path) -> None:
    """``pyflyte run ... --source $'/data/caf\\xe9'`` (a Latin-1 folder name): the task recorder's digest of the input
    raised ``UnicodeEncodeError`` from inside the digest, a traceback that named no input."""
    import os

    from flytekitplugins.aios_audit.recorder import NotUnicode, digest_io
    from tasks.documents.stages import ingest

    folder = tmp_path / os.fsdecode(b"caf\xe9")
    folder.mkdir()
    (folder / "letter.txt").write_text(LETTER, encoding="utf-8")
    with pytest.raises(NotUnicode, match=r"'source' holds text that is not Unicode \('\\udce9'"):
        digest_io({"options": _opts(), "source": str(folder)})
    with pytest.raises(Exception, match=r"'source' holds text that is not Unicode") as err:
        ingest(source=str(folder), options=_opts())
    str(err.value).encode("utf-8")  # the message holds the character escaped, never itself
