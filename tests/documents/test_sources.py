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


@pytest.mark.parametrize(
    "principal", ["service:", "service: document-pipeline", "service:pipe\x1b[2Jline", "service:a\nb"]
)
def test_options_take_the_service_identity_rule_act_as_takes(principal: str) -> None:
    """Before, the options checked only the ``service:`` prefix: ``service:`` with no name, or a name with a newline
    or a terminal escape, was accepted and recorded as the actor of every record of the batch, where the other
    workflows' ``act_as`` refused it. One rule now (``tasks.acting.service_principal_problem``), the same message."""
    from tasks.acting import act_as

    with pytest.raises(ValueError, match=r"a launch input may name only a service identity") as err:
        ProcessingOptions(principal=principal)
    assert "\x1b" not in str(err.value) and "\n" not in str(err.value)  # quoted with its control characters escaped
    with pytest.raises(ValueError, match=r"a launch input may name only a service identity"):
        act_as(principal)
    assert ProcessingOptions(principal="service:document-pipeline").principal == "service:document-pipeline"


@pytest.mark.slow
@pytest.mark.parametrize("docs", [{"a.txt": b"", "b.pdf": b"\x00\x01garbage"}, {}], ids=["all quarantined", "none"])
def test_a_batch_with_nothing_to_process_ends_in_its_summary(tmp_path: Path, docs: dict[str, bytes]) -> None:
    """Every document quarantined, or none at all: the batch ended in a schema error (a result column of nothing is
    float64, an empty decided table's columns objects) instead of a summary whose counts add up."""
    from workflows.document_processing import process_documents

    src = tmp_path / "inbox"
    src.mkdir()
    for name, data in docs.items():
        (src / name).write_bytes(data)
    summary, results, quarantine = process_documents(source=str(src), options=options())
    assert (summary.documents_in, summary.processed, summary.quarantined) == (len(docs), 0, len(docs))
    assert summary.quarantine_reasons == ({"binary_content": 1, "empty": 1} if docs else {})
    assert len(results) == 0 and {"outcome", "true_label"} <= set(results.columns)
    assert sorted(quarantine["name"]) == sorted(docs)


@pytest.mark.parametrize("source", ["", "   "])
def test_an_empty_source_is_refused_not_read_as_the_working_directory(source: str) -> None:
    with pytest.raises(ValueError, match="source is empty: pass a folder"):
        list(iter_refs(source, options()))


@pytest.mark.parametrize(
    ("source", "shown"),
    [
        ("postgresql://app:s3cret-pw@127.0.0.1:5432/docs", "postgresql://app:***@127.0.0.1:5432/docs"),
        ("postgresql://app@127.0.0.1/docs?password=s3cret-pw", "postgresql://app@127.0.0.1/docs?password=***"),
        ("https://reader:s3cret-pw@files.example/inbox/", "https://***@files.example/inbox/"),
    ],
)
def test_a_source_holding_a_credential_is_refused_before_it_is_read(source: str, shown: str) -> None:
    """The source is a launch input: Flyte keeps it with the run and shows it, and the pack put it in every document's
    reference, in the batch summary and its AIOS_BATCH_SUMMARY log line. A credential in it is refused, masked in the
    message, before anything connects (127.0.0.1:5432 is never asked: the check comes first)."""
    with pytest.raises(ValueError) as err:
        list(iter_refs(source, options()))
    message = str(err.value)
    assert f"source {shown} holds a credential" in message and "PGPASSWORD" in message
    assert "s3cret-pw" not in message


def test_a_source_without_a_credential_is_read_as_before(tmp_path: Path) -> None:
    db = tmp_path / "docs.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE documents (id INTEGER PRIMARY KEY, name TEXT, content BLOB)")
        conn.execute("INSERT INTO documents VALUES (1, 'a.txt', x'68656c6c6f')")
    refs = list(iter_refs(f"sqlite:///{db}", options()))
    assert [(r["name"], r["status"]) for r in refs] == [("a.txt", "ok")]


def test_the_summary_names_the_source_with_any_credential_masked() -> None:
    import pandas as pd

    from tasks.documents.report import summarize

    cols = ["latency_ms", "cpu_s", "status", "true_label", "label", "outcome", "route", "request_id"]
    summary = summarize(
        pd.DataFrame(columns=cols), pd.DataFrame(columns=["reason"]), (0, 0, 0),
        "postgresql://app:s3cret-pw@db/docs", ProcessingOptions(),
    )  # fmt: skip
    assert summary.source == "postgresql://app:***@db/docs"
