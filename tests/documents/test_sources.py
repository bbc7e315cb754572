"""Document sources (folder, fsspec URL, SQL table) and the nightly launch plan as Flyte serializes it."""

from __future__ import annotations

import sqlite3
from collections import OrderedDict
from pathlib import Path

import fsspec
import pytest

from tasks.documents.pipeline import iter_refs
from tasks.documents.schemas import ProcessingOptions
from tests.documents.conftest import options


def test_folder_source_skips_dotfiles_and_dedups(corpus: Path) -> None:
    refs = list(iter_refs(str(corpus), ProcessingOptions()))
    names = [r["name"] for r in refs]
    assert ".aios-labels.csv" not in names
    assert [r["status"] for r in refs].count("duplicate") == 1
    assert {r["reason"] for r in refs if r["status"] == "quarantine"} == {"too_large"}


def test_fsspec_url_source() -> None:
    fs = fsspec.filesystem("memory")
    fs.pipe("/inbox/a.txt", b"INVOICE No. INV-1 Total amount due: EUR 10.00 from Acme Labs Ltd")
    fs.pipe("/inbox/b.txt", b"INVOICE No. INV-1 Total amount due: EUR 10.00 from Acme Labs Ltd")
    refs = list(iter_refs("memory://inbox", ProcessingOptions()))
    assert [r["name"] for r in refs] == ["a.txt", "b.txt"]
    assert [r["status"] for r in refs] == ["ok", "duplicate"]


@pytest.mark.slow
def test_sql_table_source_end_to_end(tmp_path: Path) -> None:
    from workflows.document_processing import process_documents

    db = tmp_path / "docs.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE documents (id INTEGER PRIMARY KEY, name TEXT, content BLOB)")
        rows = [
            (1, "a.txt", b"INVOICE No. INV-77\nIssued by: Acme Labs Ltd\nTotal amount due: EUR 120.00"),
            (2, "b.txt", b""),
            (3, "c.txt", b"Subject: your feedback\nDear Anna, thank you for your letter. Best regards"),
        ]
        conn.executemany("INSERT INTO documents VALUES (?, ?, ?)", rows)
    summary, results, quarantine = process_documents(source=f"sqlite:///{db}", options=options())
    assert summary.documents_in == 3 and list(quarantine["reason"]) == ["empty"]
    assert set(results["label"]) <= {"invoice", "correspondence", "claim", "contract"}


def test_nightly_launch_plan_serializes_with_schedule_and_defaults() -> None:
    from flytekit.configuration import Image, ImageConfig, SerializationSettings
    from flytekit.tools.translator import get_serializable

    from workflows.document_processing import process_documents_nightly

    settings = SerializationSettings(image_config=ImageConfig(default_image=Image(name="d", fqn="img", tag="1")))
    lp = get_serializable(OrderedDict(), settings, process_documents_nightly)
    assert lp.id.name == "process_documents_nightly"
    assert lp.spec.entity_metadata.schedule.cron_schedule.schedule == "0 2 * * *"
    assert set(lp.spec.default_inputs.parameters) == {"source", "options"}


def test_options_reject_bad_values() -> None:
    with pytest.raises(ValueError, match="approval_timeout_s"):
        ProcessingOptions(approval_timeout_s=10 * 86_400)
    with pytest.raises(ValueError, match="principal"):
        ProcessingOptions(principal="user:bob")
