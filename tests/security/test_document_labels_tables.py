"""The last two reads a launcher chose unchecked: a labels file anywhere, and any table of an allowed database.

``summarize`` takes the batch's ``source`` as an input and read ``<source>/.aios-labels.csv`` without the sources
check, so a launcher made the worker read a labels file in any folder it can read, and its labels came back in the
results table. A SQL source is checked against ``AIOS_DOCUMENT_SOURCES``, but its table is the launch option
``options.sql_table``: any table of that database (credentials, the audit log) was read as documents and stored
with the run. Labels are now read only from an allowed source (nothing, not an error, elsewhere), and a table is
read only when the deployment lists it (``AIOS_DOCUMENT_TABLES``, default ``documents``).
"""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tasks.documents.schemas import ProcessingOptions

SECRET = "Rd-Passw0rd-42"


def _decided(names: list[str]) -> pd.DataFrame:
    """Decided rows (one per name) as ``summarize`` gets them, each labelled ``invoice``."""
    return pd.DataFrame(
        [
            {
                "doc_id": f"d{i}", "name": name, "digest": f"sha256:{i:064x}", "status": "ok", "reason": "",
                "fmt": "txt", "ocr": False, "pii": 0, "secrets": 0, "personal": False, "injection": False,
                "latency_ms": 10.0, "cpu_s": 0.1, "label": "invoice", "confidence": 0.9, "route": "fast",
                "cached": False, "amount": 12.5, "currency": "EUR", "parties": "", "dates": "", "action": "",
                "effect": "none", "gate": "", "request_id": "", "policy_record": "",
                "decision_digest": f"sha256:{i:064x}",
            }
            for i, name in enumerate(names)
        ]
    )  # fmt: skip


def _summarize(source: Path | str) -> tuple[Any, pd.DataFrame]:
    from tasks.documents.stages import summarize

    summary, results, _ = summarize(
        decided=_decided(["a.txt"]), payment=[], review=[], posted=[0] * 6, source=str(source),
        options=ProcessingOptions(progress="off"),
    )  # fmt: skip
    return summary, results


def _labelled(folder: Path, label: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / ".aios-labels.csv").write_text(f"name,label\na.txt,{label}\n")
    return folder


def test_summarize_reads_no_labels_outside_the_deployments_sources(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A ``.aios-labels.csv`` in a worker folder outside the sources was read and its labels shown in the results."""
    inbox = _labelled(tmp_path / "inbox", "invoice")
    outside = _labelled(tmp_path / "secrets", SECRET)
    (inbox / "out").symlink_to(outside)  # a link in the inbox leading out is outside too
    monkeypatch.setenv("AIOS_DOCUMENT_SOURCES", str(inbox))
    for source in (outside, inbox / "out", f"file://{outside}", inbox / ".." / "secrets"):
        summary, results = _summarize(source)
        assert list(results["true_label"]) == [""], source  # was the secret: the file was read
        assert (summary.labelled, summary.accuracy) == (0, -1.0)  # the batch goes on; no accuracy
        assert SECRET not in results.astype(str).to_csv()
    summary, results = _summarize(inbox)  # an allowed, labelled corpus keeps its ground truth
    assert list(results["true_label"]) == ["invoice"] and summary.accuracy == 1.0


def test_summarize_on_a_cluster_with_no_sources_reads_no_labels(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flytekit.core.context_manager import ExecutionState, FlyteContextManager

    folder = _labelled(tmp_path / "anywhere", SECRET)
    monkeypatch.delenv("AIOS_DOCUMENT_SOURCES", raising=False)
    ctx = FlyteContextManager.current_context()
    state = ctx.execution_state.with_params(mode=ExecutionState.Mode.TASK_EXECUTION)
    with FlyteContextManager.with_context(ctx.with_execution_state(state)):
        from tasks.documents.stages import summarize

        summary, results, _ = summarize.task_function(
            decided=_decided(["a.txt"]), payment=[], review=[], posted=[0] * 6, source=str(folder),
            options=ProcessingOptions(progress="off"),
        )  # fmt: skip
    assert list(results["true_label"]) == [""] and summary.labelled == 0


def test_labels_are_read_from_the_folder_that_was_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The allowed folder swapped for a link to a worker folder between the check and the open is not followed, nor
    is a labels file that is a link or not a regular file."""
    import os

    from tasks.documents import sources
    from tasks.documents.report import read_labels

    inbox, outside = tmp_path / "inbox", _labelled(tmp_path / "secrets", SECRET)
    batch = _labelled(inbox / "batch-7", "invoice")
    real_check = sources.check_allowed

    def check_then_swap(source: str, allowed: str, on_cluster: bool) -> None:
        real_check(source, allowed, on_cluster)
        batch.rename(tmp_path / "moved")
        batch.symlink_to(outside)

    monkeypatch.setattr(sources, "check_allowed", check_then_swap)
    assert read_labels(str(batch), str(inbox), on_cluster=True) == {}  # was {"a.txt": SECRET} (no check at all)
    monkeypatch.setattr(sources, "check_allowed", real_check)
    batch.unlink()
    (tmp_path / "moved").rename(batch)
    assert read_labels(str(batch), str(inbox), on_cluster=True) == {"a.txt": "invoice"}
    (batch / ".aios-labels.csv").unlink()
    (batch / ".aios-labels.csv").symlink_to(outside / ".aios-labels.csv")
    assert read_labels(str(batch), str(inbox), on_cluster=True) == {}
    (batch / ".aios-labels.csv").unlink()
    os.mkfifo(batch / ".aios-labels.csv")  # opened without waiting, refused as not a regular file
    assert read_labels(str(batch), str(inbox), on_cluster=True) == {}


def _database(path: Path) -> str:
    """A database holding the documents table and, beside it, a table of credentials."""
    with sqlite3.connect(path) as c:
        c.execute("CREATE TABLE documents (id TEXT, name TEXT, content BLOB)")
        c.execute("INSERT INTO documents VALUES ('1', 'a.txt', ?)", (b"Invoice 1. Total amount due: EUR 12.00",))
        c.execute("CREATE TABLE credentials (id TEXT, name TEXT, content BLOB)")
        c.execute("INSERT INTO credentials VALUES ('1', 'reader.txt', ?)", (f"aios_reader password {SECRET}".encode(),))
    return f"sqlite:///{path}"


def test_a_sql_source_is_read_only_from_the_deployments_document_tables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``options.sql_table=credentials`` on an allowed database listed and parsed that table's rows as documents."""
    from flytekit.core.context_manager import ExecutionState, FlyteContextManager

    from tasks.documents.stages import ingest

    url = _database(tmp_path / "docs.db")
    monkeypatch.setenv("AIOS_DOCUMENT_SOURCES", url)
    monkeypatch.delenv("AIOS_DOCUMENT_TABLES", raising=False)
    ctx = FlyteContextManager.current_context()
    state = ctx.execution_state.with_params(mode=ExecutionState.Mode.TASK_EXECUTION)
    with FlyteContextManager.with_context(ctx.with_execution_state(state)):
        for table in ("credentials", "sqlite_master", "DOCUMENTS"):
            with pytest.raises(ValueError, match=rf"sql_table '{table}' is not one of this deployment's document ta"):
                ingest.task_function(source=url, options=ProcessingOptions(sql_table=table))
        with pytest.raises(ValueError, match="AIOS_DOCUMENT_TABLES"):
            ingest.task_function(source=url, options=ProcessingOptions(sql_table="credentials"))
        [chunk] = ingest.task_function(source=url, options=ProcessingOptions())  # the default table: documents
        assert list(chunk["name"]) == ["a.txt"]
        monkeypatch.setenv("AIOS_DOCUMENT_TABLES", "documents, credentials")  # the operator's choice
        [chunk] = ingest.task_function(source=url, options=ProcessingOptions(sql_table="credentials"))
        assert list(chunk["name"]) == ["reader.txt"]
        monkeypatch.setenv("AIOS_DOCUMENT_TABLES", ",")  # a list of no table (an empty variable is unset)
        with pytest.raises(ValueError, match="names no document tables"):
            ingest.task_function(source=url, options=ProcessingOptions())


def test_a_hand_made_chunk_reads_no_other_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``parse_protect`` takes the table from a SQL locator (``URL#table/id``) or, for a handle, from
    ``options.sql_table``: a chunk naming the credentials table of an allowed database read its rows. Each is
    quarantined before a byte is read."""
    from flytekitplugins.aios_core.settings import get_settings
    from tasks.documents.pipeline import named_handle, parse_protect

    url = _database(tmp_path / "docs.db")
    secret = f"aios_reader password {SECRET}".encode()
    digest = "sha256:" + hashlib.sha256(secret).hexdigest()
    monkeypatch.setenv("AIOS_DOCUMENT_SOURCES", url)
    monkeypatch.delenv("AIOS_DOCUMENT_TABLES", raising=False)
    settings = get_settings()
    for uri, table, reason in (
        (f"{url}#credentials/1", "documents", "outside_source"),  # the locator's table is the one read
        (f"{url}#credentials/1", "credentials", "outside_source"),
        # a handle is resolved by listing its source's options.sql_table again: refused, so its row is not found
        (named_handle(url, f"{url}#credentials/1"), "credentials", "changed_since_listing"),
    ):
        chunk = pd.DataFrame(
            [{"doc_id": "d00000000", "uri": uri, "name": "doc.txt", "size": 10, "digest": digest, "status": "ok",
              "reason": ""}]
        )  # fmt: skip
        out = parse_protect(chunk, ProcessingOptions(progress="off", sql_table=table), settings)
        assert (out.iloc[0].status, out.iloc[0].reason) == ("quarantine", reason), uri  # was ok: the row was parsed
        assert SECRET not in out.to_csv()


@pytest.mark.parametrize("source", ["inbox\x00/../x", "inbox/\udcff"])
def test_a_source_the_system_cannot_name_has_no_labels_and_no_error(tmp_path: Path, source: str) -> None:
    """A NUL byte or an unencodable surrogate in ``source`` (a launch input) made the folder's open raise
    ValueError in a local run, and ``summarize`` failed after the whole batch had run."""
    from tasks.documents.report import read_labels

    assert read_labels(str(tmp_path / source), "", on_cluster=False) == {}
