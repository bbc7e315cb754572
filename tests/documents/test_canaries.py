"""Personal-data canaries planted in inputs never reach outputs, audit records, logs or error messages."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
import pytest

from tasks.documents import corpus_files as w
from tests.documents.conftest import options

pytestmark = pytest.mark.slow

CANARIES = {
    "email": "canary.7f3a9c@leak-test.example",
    "phone": "+44 20 7946 0321",
    "card": "4539 1488 0343 6467",
    "iban": "GB82 WEST 1234 5698 7654 32",
    "ssn": "523-45-6789",
    "key": "AKIAZZCANARY7F3A9C11",
}
VARIANTS = [v for c in CANARIES.values() for v in {c, c.replace(" ", ""), c.replace(" ", "-")}]


def _body(amount: str) -> str:
    pii = ", ".join(CANARIES.values())
    return (
        f"INVOICE No. INV-4242\nIssued by: Globex Trading Ltd\nBill to: Acme Labs Inc\nInvoice date: 2024-05-02\n"
        f"Contact: {pii}\nTotal amount due: EUR {amount}\nPlease transfer the amount due."
    )


def _write_corpus(out: Path) -> None:
    out.mkdir()
    (out / f"invoice-{CANARIES['email']}.txt").write_text(_body("1,200.00"), encoding="utf-8")
    (out / "canary.pdf").write_bytes(w.pdf_bytes(_body("2,300.00")))
    w.write_docx(out / "canary.docx", _body("3,400.00"))
    w.write_eml(out / "canary.eml", _body("4,500.00"), CANARIES["email"], attach_pdf=True)
    w.write_html(out / "canary.html", _body("15,600.00"))
    (out / "canary-garbage.txt").write_bytes(b"\x00\xff" * 100 + CANARIES["card"].encode() + b"\x00\x01" * 500)


def _hits(blob: bytes) -> list[str]:
    return [v for v in VARIANTS if v.encode() in blob or v.encode("utf-16-le") in blob]


def _scan_tree(root: Path) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for p in root.rglob("*"):
        if not p.is_file():
            continue
        try:  # parquet pages may be compressed: read tables back and scan their cells
            frame = pd.read_parquet(p)
        except Exception:
            hits = _hits(p.read_bytes())
        else:  # the ingest references' locators included: a name holding personal data is located by a handle
            hits = _hits(frame.astype(str).to_csv().encode())
        if hits:
            found[str(p)] = hits
    return found


def test_canaries_never_leak(
    tmp_path: Path, aios_env: Path, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    from workflows.document_processing import process_documents

    src = tmp_path / "canary-corpus"
    _write_corpus(src)
    caplog.set_level(logging.DEBUG)
    summary, results, quarantine = process_documents(source=str(src), options=options(approval_timeout_s=2))
    out, err = capfd.readouterr()
    assert summary.documents_in == 6 and summary.quarantined == 1
    assert results["pii"].sum() >= 5 * 5  # the detectors did fire on every processed copy
    assert _hits(results.astype(str).to_csv().encode() + quarantine.astype(str).to_csv().encode()) == []
    assert _hits((out + err + caplog.text).encode()) == []
    assert _scan_tree(aios_env) == {}  # audit DB (+WAL), system of record, caches, reports
    assert _scan_tree(tmp_path / "tmp") == {}  # Flyte's local sandbox: task outputs, decks
