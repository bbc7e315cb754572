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
