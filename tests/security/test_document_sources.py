"""A document batch reads only where the deployment keeps documents (review of 2026-12-06, launch rights).

``source`` is a launch input and the worker reads it with its own rights. ``source=~/.pgpass`` (the libpq passfile
docs/security.md tells operators to mount) was listed and parsed as a document, its lines passed the secret patterns,
and the worker's database passwords reached ``classify``'s input, which Flyte stores where the launcher can read it;
``/proc/self/environ`` did the same with the worker's environment. Now a file named as the source is held to the
folder rule (a hidden file is quarantined unread), a deployment lists its sources (``AIOS_DOCUMENT_SOURCES``), and a
task on a cluster with no list reads nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tasks.documents.pipeline import iter_refs
from tasks.documents.schemas import ProcessingOptions

PGPASS = "db.internal:5432:documents:aios_reader:Rd-Passw0rd-42\n"


def test_a_hidden_file_named_as_the_source_is_quarantined_unread(tmp_path: Path) -> None:
    home = tmp_path / "worker-home"
    home.mkdir()
    (home / ".pgpass").write_text(PGPASS)
    (home / "link-to-pgpass.txt").symlink_to(home / ".pgpass")
    for given in (home / ".pgpass", home / "link-to-pgpass.txt"):
        [ref] = list(iter_refs(str(given), ProcessingOptions()))
        assert (ref["status"], ref["reason"]) == ("quarantine", "hidden_file"), ref  # was ok: read as a document


def test_a_source_outside_the_deployments_sources_is_refused(tmp_path: Path) -> None:
    from tasks.documents.sources import check_allowed

    inbox, secrets = tmp_path / "inbox", tmp_path / "secrets"
    for d in (inbox / "batch-7", secrets):
        d.mkdir(parents=True)
    (secrets / "pgpass.txt").write_text(PGPASS)
    (inbox / "out").symlink_to(secrets)
    allowed = f"{inbox},s3://docs/inbox,postgresql://db.internal/documents"
    for ok in (str(inbox), str(inbox / "batch-7"), f"file://{inbox}", "s3://docs/inbox", "s3://docs/inbox/2026/"):
        check_allowed(ok, allowed, on_cluster=True)
    check_allowed("postgresql://db.internal/documents", allowed, on_cluster=True)
    for bad in (
        str(secrets / "pgpass.txt"),
        str(inbox / "out"),  # a link in the inbox leading out
        str(inbox / ".." / "secrets"),
        "/proc/self/environ",
        "s3://docs/inbox-other",  # a prefix is a folder, not a string's start
        "s3://docs/inbox/../payroll",
        "s3://docs/inbox/%2e%2e/payroll",  # a client decodes it into ..
        "s3://docs/inbox/x?versionId=1",
        "simplecache::s3://docs/inbox",
        "postgresql://db.internal/documents?host=elsewhere.example",
        "sqlite:///tmp/other.db",
    ):
        with pytest.raises(ValueError, match="is not one of this deployment's document sources"):
            check_allowed(bad, allowed, on_cluster=False)
    with pytest.raises(ValueError, match="is not one of this deployment's document sources"):
        list(iter_refs(str(secrets / "pgpass.txt"), ProcessingOptions(), allowed=allowed))


def test_a_local_run_reads_anywhere_and_a_cluster_task_nowhere_without_a_list(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("Invoice 7. Total amount due: EUR 12.00")
    [ref] = list(iter_refs(str(tmp_path), ProcessingOptions()))  # a local run: its launcher owns the machine
    assert ref["status"] == "ok"
    with pytest.raises(ValueError, match="names no document sources; its operator sets AIOS_DOCUMENT_SOURCES"):
        list(iter_refs(str(tmp_path), ProcessingOptions(), on_cluster=True))


def test_the_ingest_task_on_a_cluster_takes_the_list_from_the_deployment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flytekit.core.context_manager import ExecutionState, FlyteContextManager

    from tasks.documents.stages import ingest

    inbox, outside = tmp_path / "inbox", tmp_path / "outside"
    for d in (inbox, outside):
        d.mkdir()
        (d / "a.txt").write_text(f"Invoice from {d.name}. Total amount due: EUR 12.00")
    ctx = FlyteContextManager.current_context()
    state = ctx.execution_state.with_params(mode=ExecutionState.Mode.TASK_EXECUTION)
    with FlyteContextManager.with_context(ctx.with_execution_state(state)):
        monkeypatch.delenv("AIOS_DOCUMENT_SOURCES", raising=False)
        with pytest.raises(ValueError, match="names no document sources"):
            ingest.task_function(source=str(inbox), options=ProcessingOptions())
        monkeypatch.setenv("AIOS_DOCUMENT_SOURCES", str(inbox))
        with pytest.raises(ValueError, match="is not one of this deployment's document sources"):
            ingest.task_function(source=str(outside), options=ProcessingOptions())
        [chunk] = ingest.task_function(source=str(inbox), options=ProcessingOptions())
    assert list(chunk["status"]) == ["ok"]


def _chunk(rows: list[tuple[str, str]]) -> Any:
    import pandas as pd

    return pd.DataFrame(
        [
            {"doc_id": f"d{i:08d}", "uri": uri, "name": f"doc-{i}.txt", "size": 10, "digest": digest,
             "status": "ok", "reason": ""}
            for i, (uri, digest) in enumerate(rows)
        ]
    )  # fmt: skip


def test_a_hand_made_chunk_reads_nothing_outside_the_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``parse_protect`` is a task a launcher can start with any chunk: its locators were read unchecked (a worker
    file outside the sources, parsed when its digest was guessed; a database URL to which libpq sent the worker's
    password). Each is quarantined ``outside_source`` before a byte is read."""
    import hashlib
    import sqlite3

    from flytekitplugins.aios_core.settings import get_settings
    from tasks.documents.pipeline import parse_protect

    inbox, outside = tmp_path / "inbox", tmp_path / "outside"
    inbox.mkdir()
    outside.mkdir()
    secret = outside / "pin.txt"
    secret.write_text("Invoice 1. Total amount due: EUR 12.00. vault unseal pin 7319")
    db = outside / "other.db"
    with sqlite3.connect(db) as c:
        c.execute("CREATE TABLE documents (id TEXT, name TEXT, content BLOB)")
        c.execute("INSERT INTO documents VALUES ('1', 'a.txt', ?)", (secret.read_bytes(),))
    digest = "sha256:" + hashlib.sha256(secret.read_bytes()).hexdigest()
    monkeypatch.setenv("AIOS_DOCUMENT_SOURCES", str(inbox))
    settings = get_settings()
    assert settings.document_sources == str(inbox)
    chunk = _chunk([(str(secret), digest), (f"file://{secret}", digest), (f"sqlite:///{db}#documents/1", digest)])
    out = parse_protect(chunk, ProcessingOptions(progress="off"), settings)
    assert [(r.status, r.reason) for r in out.itertuples()] == [("quarantine", "outside_source")] * 3
    # nothing of the secret in any text cell (the whole CSV held a timing of 6.690999955731968e-06 s once: a number
    # column's digits are not the file's)
    text = " ".join(str(v) for v in out.select_dtypes(exclude="number").to_numpy().ravel())
    assert "unseal" not in out.to_csv() and "7319" not in text


def test_a_folder_swapped_for_a_link_after_listing_is_not_followed(tmp_path: Path) -> None:
    """O_NOFOLLOW guards a path's last name only: ``inbox/zzz`` replaced by a link to a worker folder after the walk
    led the digest and the parse to the file outside, which then matched its own digest."""
    from tasks.documents.readers import Quarantined
    from tasks.documents.sources import content_digest, list_documents, local_copy

    inbox, outside = tmp_path / "inbox", tmp_path / "outside"
    (inbox / "zzz").mkdir(parents=True)
    outside.mkdir()
    (inbox / "zzz" / "db-password.txt").write_text("an invoice")
    (outside / "db-password.txt").write_text("db.internal:5432:documents:aios_reader:Rd-Passw0rd-42")
    [listed] = list(list_documents(str(inbox), allowed=str(inbox)))
    (inbox / "zzz").rename(tmp_path / "moved")
    (inbox / "zzz").symlink_to(outside)
    with pytest.raises(Quarantined) as got:
        content_digest(listed.uri)
    assert got.value.reason == "symlink_outside_source"
    with pytest.raises(Quarantined), local_copy(listed.uri):
        pass


def test_a_hidden_folder_under_a_source_is_not_a_source(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    (inbox / ".credentials").mkdir(parents=True)
    (inbox / ".credentials" / "db.txt").write_text("password: Hunter2Hunter2")
    for source in (inbox / ".credentials", inbox / ".credentials" / "db.txt"):
        [ref] = list(iter_refs(str(source), ProcessingOptions(), allowed=str(inbox), on_cluster=True))
        assert (ref["status"], ref["reason"]) == ("quarantine", "hidden_file"), ref
