"""Ingest stays inside its source: links out, FIFOs, devices, sockets and hidden files are counted, never read.

Every entry of a hostile folder ends in the accounting (processed or quarantined with a reason code),
nothing outside the folder reaches a table, a FIFO never blocks the batch, and a file swapped for a link
after listing is not followed when it is parsed. The fsspec and SQL sources get the same treatment.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import threading
from pathlib import Path
from typing import Any

import fsspec
import pytest

from flytekitplugins.aios_core.settings import get_settings
from tasks.documents.pipeline import iter_refs, parse_protect
from tasks.documents.schemas import ProcessingOptions

CANARY = "CANARY-OUTSIDE-7f3a9c"
LETTER = b"Subject: your feedback\nDear Anna, thank you for your letter of last week. Best regards, Bob"


def _opts() -> ProcessingOptions:
    return ProcessingOptions(progress="off", chunk_size=64, approval_timeout_s=2.0)


def _refs(source: str) -> dict[str, dict[str, Any]]:
    """Reference rows by name, listed in a daemon thread so that a FIFO that blocks fails instead of hanging."""
    out: list[dict[str, Any]] = []
    t = threading.Thread(target=lambda: out.extend(iter_refs(source, _opts())), daemon=True)
    t.start()
    t.join(60)
    assert not t.is_alive(), "ingest blocked (a FIFO was opened?)"
    return {r["name"]: r for r in out}


@pytest.fixture
def hostile(tmp_path: Path) -> Path:
    """A source folder with one good letter and every kind of entry that must not be read."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text(f"{CANARY} Dear Anna, this text lives outside the source folder.")
    src = tmp_path / "src"
    src.mkdir()
    (src / "letter.txt").write_bytes(LETTER)
    (src / "passwd.txt").symlink_to("/etc/passwd")
    (src / "secret.txt").symlink_to(outside / "secret.txt")
    (src / "up.txt").symlink_to("../outside/secret.txt")
    (src / "zz-copy.txt").symlink_to("letter.txt")
    os.mkfifo(src / "pipe.txt")
    (src / ".env").write_text(f"{CANARY} API_KEY=abc")
    (src / ".aios-labels.csv").write_text("name,label\nletter.txt,correspondence\n")
    (src / ".git").mkdir()
    (src / ".git" / "config").write_text(CANARY)
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(os.path.relpath(src / "s.sock"))  # relative: AF_UNIX paths are limited to 107 bytes
    except OSError:
        pass
    finally:
        sock.close()
    if os.geteuid() == 0:
        os.mknod(src / "null.dev", 0o600 | 0o020000, os.makedev(1, 3))  # a character device (/dev/null)
    return src


def test_links_out_fifos_devices_sockets_and_hidden_files_are_quarantined_unread(hostile: Path) -> None:
    refs = _refs(str(hostile))
    reasons = {n: (r["status"], r["reason"]) for n, r in refs.items()}
    assert reasons["letter.txt"] == ("ok", "")
    for name in ("passwd.txt", "secret.txt", "up.txt"):
        assert reasons[name] == ("quarantine", "symlink_outside_source"), name
    assert reasons["pipe.txt"] == ("quarantine", "not_a_regular_file")
    assert reasons[".env"] == ("quarantine", "hidden_file")
    assert reasons[".git/"] == ("quarantine", "hidden_file")
    assert ".aios-labels.csv" not in reasons  # metadata of a labelled corpus, not a document
    if (hostile / "s.sock").exists():
        assert reasons["s.sock"] == ("quarantine", "not_a_regular_file")
    if (hostile / "null.dev").exists():
        assert reasons["null.dev"] == ("quarantine", "not_a_regular_file")
    # a link that stays inside is followed once: it is the letter again, so a duplicate
    assert reasons["zz-copy.txt"] == ("duplicate", "duplicate")
    assert refs["zz-copy.txt"]["uri"] == str(hostile.resolve() / "letter.txt")
    assert all("/etc/passwd" != r["uri"] and "outside" not in r["uri"] for r in refs.values())


def test_nothing_outside_the_source_reaches_the_parsed_tables(hostile: Path) -> None:
    import pandas as pd

    refs = pd.DataFrame(list(_refs(str(hostile)).values()))
    parsed = parse_protect(refs, _opts(), get_settings())
    assert len(parsed) == len(refs)  # every row kept: processed or quarantined
    text = parsed.astype(str).to_csv()
    assert CANARY not in text and "root:x:0:0" not in text
    ok = parsed[parsed["status"] == "ok"]
    assert list(ok["name"]) == ["letter.txt"]


def test_odd_names_are_accounted_not_dropped(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    names = [b"..%2f..%2fetc%2fpasswd.txt", b"new\nline.txt", b"bell\x07.txt", b"latin1-\xe9\xff.txt", b"ok.txt"]
    for i, raw in enumerate(names):
        (src / os.fsdecode(raw)).write_bytes(LETTER + b" #%d" % i)
    refs = _refs(str(src))
    assert len(refs) == len(names)
    assert refs["..%2f..%2fetc%2fpasswd.txt"]["reason"] == "hidden_file"  # a dotfile: counted, not read
    assert {"new\\nline.txt", "bell\\x07.txt", "latin1-\\xe9\\xff.txt"} <= set(refs)
    assert all(n.isprintable() for n in refs)
    for name in ("new\\nline.txt", "bell\\x07.txt", "latin1-\\xe9\\xff.txt", "ok.txt"):
        assert refs[name]["status"] == "ok", name
        refs[name]["uri"].encode("utf-8")  # the locator survives a parquet round trip (no lone surrogates)


def test_odd_names_cross_the_task_boundary_and_parse(tmp_path: Path) -> None:
    from tasks.documents.stages import ingest
    from tasks.documents.stages import parse_protect as parse_task

    src = tmp_path / "src"
    src.mkdir()
    (src / os.fsdecode(b"latin1-\xe9\xff\n.txt")).write_bytes(LETTER)
    chunks = ingest(source=str(src), options=_opts())
    assert sum(len(c) for c in chunks) == 1
    parsed = parse_task(chunk=chunks[0], options=_opts())
    assert list(parsed["status"]) == ["ok"] and "Anna" in parsed["text"][0]


def test_a_file_swapped_for_a_link_or_fifo_after_listing_is_not_read(hostile: Path, tmp_path: Path) -> None:
    import pandas as pd

    (hostile / "later.txt").write_bytes(LETTER + b" later")
    (hostile / "later2.txt").write_bytes(LETTER + b" later2")
    refs = pd.DataFrame([r for n, r in _refs(str(hostile)).items() if n in {"later.txt", "later2.txt"}])
    (hostile / "later.txt").unlink()
    (hostile / "later.txt").symlink_to(tmp_path / "outside" / "secret.txt")
    (hostile / "later2.txt").unlink()
    os.mkfifo(hostile / "later2.txt")
    out: list[Any] = []
    t = threading.Thread(target=lambda: out.append(parse_protect(refs, _opts(), get_settings())), daemon=True)
    t.start()
    t.join(60)
    assert not t.is_alive(), "parse blocked on a FIFO"
    parsed = out[0]
    assert list(parsed["reason"]) == ["not_a_regular_file", "not_a_regular_file"]
    assert CANARY not in parsed.astype(str).to_csv()


def test_local_fsspec_urls_are_contained_too(hostile: Path) -> None:
    refs = _refs(f"local://{hostile}")
    assert refs["secret.txt"]["reason"] == "symlink_outside_source"
    assert refs["pipe.txt"]["reason"] == "not_a_regular_file"
    assert refs["letter.txt"]["status"] == "ok"


def test_object_keys_that_leave_the_prefix_are_counted_not_fetched() -> None:
    fs = fsspec.filesystem("memory")
    fs.pipe("/inbox/a.txt", LETTER)
    fs.pipe("/inbox/../secret/x.txt", CANARY.encode())
    fs.pipe("/inbox/./b.txt", LETTER + b" b")
    fs.pipe("/inbox/.hidden.txt", CANARY.encode())
    fs.pipe("/inbox2/not-mine.txt", CANARY.encode())
    refs = _refs("memory://inbox")
    assert refs["a.txt"]["status"] == "ok"
    assert refs["../secret/x.txt"]["reason"] == "outside_source"
    assert refs["./b.txt"]["reason"] == "outside_source"
    assert refs[".hidden.txt"]["reason"] == "hidden_file"
    assert not any("not-mine" in n for n in refs)


def test_sql_rows_with_hostile_names_or_null_content_do_not_stop_the_batch(tmp_path: Path) -> None:
    db = tmp_path / "docs.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE documents (id INTEGER PRIMARY KEY, name TEXT, content BLOB)")
        rows = [(1, "a.t\x00xt", LETTER), (2, "nothing.txt", None), (3, "../../etc/x.txt\n", LETTER + b" 3")]
        conn.executemany("INSERT INTO documents VALUES (?, ?, ?)", rows)
    refs = list(iter_refs(f"sqlite:///{db}", _opts()))
    assert len(refs) == 3
    assert [r["status"] for r in refs] == ["ok", "ok", "ok"]
    assert refs[2]["name"] == "../../etc/x.txt\\n"
    import pandas as pd

    parsed = parse_protect(pd.DataFrame(refs), _opts(), get_settings())
    assert list(parsed["status"]) == ["ok", "quarantine", "ok"]
    assert list(parsed["reason"])[1] == "empty"


@pytest.mark.slow
def test_hostile_folder_end_to_end_conserves_rows(hostile: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from workflows.document_processing import process_documents

    (hostile / "second.txt").write_bytes(LETTER.replace(b"Anna", b"Maria"))
    summary, results, quarantine = process_documents(source=str(hostile), options=_opts())
    listed = {p.name for p in hostile.iterdir()} - {".aios-labels.csv"}
    assert summary.documents_in == len(listed) == summary.processed + summary.quarantined
    assert summary.quarantine_reasons["symlink_outside_source"] == 3
    assert summary.quarantine_reasons["hidden_file"] == 2
    assert CANARY not in results.astype(str).to_csv() + quarantine.astype(str).to_csv()


def test_labels_file_that_links_out_or_is_not_a_labels_file_is_ignored(tmp_path: Path) -> None:
    from tasks.documents.corpus import LABELS_FILE
    from tasks.documents.report import read_labels
    from tasks.documents.source_local import LABELS_FILE as LISTED_LABELS_FILE

    assert LISTED_LABELS_FILE == LABELS_FILE  # the file ingest leaves out is the one the corpus writes
    src = tmp_path / "src"
    src.mkdir()
    (src / ".aios-labels.csv").symlink_to("/etc/passwd")
    assert read_labels(str(src)) == {}
    (src / ".aios-labels.csv").unlink()
    (src / ".aios-labels.csv").write_text("no,labels,here\n1,2,3\n")
    assert read_labels(str(src)) == {}
    (src / ".aios-labels.csv").write_text("name,label\nletter.txt,correspondence\n")
    assert read_labels(str(src)) == {"letter.txt": "correspondence"}


def test_a_pinned_file_is_readable_by_child_processes_too(tmp_path: Path) -> None:
    """pdftoppm and tesseract run as child processes on the path the parser gets."""
    import subprocess

    from tasks.documents.sources import local_copy

    doc = tmp_path / "scan.pdf"
    doc.write_bytes(LETTER)
    with local_copy(str(doc)) as path:
        assert path.suffix == ".pdf"
        assert subprocess.run(["cat", str(path)], capture_output=True, check=True).stdout == LETTER


def test_the_content_digest_reads_through_a_pinned_descriptor_too(hostile: Path, tmp_path: Path) -> None:
    """Ingest's digest no longer makes a link per document: it reads the pinned descriptor itself, with the same
    refusals (a file swapped for a link or a FIFO after listing is neither followed nor waited on)."""
    import hashlib

    from tasks.documents.readers import Quarantined
    from tasks.documents.sources import content_digest

    (hostile / "now.txt").write_bytes(LETTER)
    assert content_digest(str(hostile / "now.txt")) == "sha256:" + hashlib.sha256(LETTER).hexdigest()
    (hostile / "now.txt").unlink()
    (hostile / "now.txt").symlink_to(tmp_path / "outside" / "secret.txt")
    os.mkfifo(hostile / "pipe-now.txt")
    for name in ("now.txt", "pipe-now.txt"):
        out: list[BaseException] = []

        def digest(n: str = name) -> None:
            try:
                content_digest(str(hostile / n))
            except BaseException as e:  # handed to the test thread
                out.append(e)

        t = threading.Thread(target=digest, daemon=True)
        t.start()
        t.join(30)
        assert not t.is_alive(), f"the digest blocked on {name}"
        assert isinstance(out[0], Quarantined) and out[0].reason == "not_a_regular_file", out


def test_a_pinned_link_lives_in_a_private_folder_and_is_gone_after_its_block(tmp_path: Path) -> None:
    """One folder per process (mode 0700, reused: no folder made and removed per document); each link is removed
    when its block ends, also when the parser fails."""
    import stat

    from tasks.documents.sources import local_copy

    doc = tmp_path / "letter.pdf"
    doc.write_bytes(LETTER)
    with local_copy(str(doc)) as first:
        folder = first.parent
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
        assert first.read_bytes() == LETTER
    assert not first.exists() and not first.is_symlink()
    with pytest.raises(RuntimeError), local_copy(str(doc)) as second:
        assert second.parent == folder and second != first
        raise RuntimeError("parser failed")
    assert not second.is_symlink() and list(folder.iterdir()) == []
