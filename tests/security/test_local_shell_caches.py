"""The classification cache, the document models' folder and lock, the corrections folder and the lineage file's
folders are this process's user's or refused (review R9, the "local shell" attacker: another local user).

F1: another user who created the state folder first (the cluster profile's is ``/tmp/aios``) planted
``cache/documents.db``, 0666, with a row keyed as the pack keys it (the text's digest and the router digest are
public): classify sealed ``correspondence, 0.99`` for an invoice the models gave ``invoice, 0.917``. F2: the models
folder's ``.lock`` was opened with ``open("w")``: a planted link truncated a file of the pack's user, a planted lock
held with ``flock -s`` (or a FIFO) stalled classify for ever. S6: these folders, and their parents (the state folder
among them), were created with the umask's mode, 0777 under umask 0. Files of another user are made with ``os.chown``
to a spare uid, as root (CI runs as root); those tests skip otherwise.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from flytekitplugins.aios_core.errors import GovernanceDenied
from flytekitplugins.aios_core.settings import get_settings
from tasks.documents import models
from tasks.documents.router import ResultCache, Routed, Router

NOBODY = 65534
FORGED = {"label": "correspondence", "confidence": 0.99, "route": "fast"}


def _as_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to make a file owned by another user")


def _mode(p: Path) -> int:
    return os.lstat(p).st_mode & 0o7777


@pytest.fixture
def umask0() -> Iterator[None]:
    """Umask 0, as the reviewer ran the pack: folders made by ``mkdir`` were 0777."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def _router() -> Router:
    """A router over stand-in models (its digest reads their digests and precision); it must not classify here."""
    enc = SimpleNamespace(precision="fp32")
    fake = SimpleNamespace(
        fast=SimpleNamespace(digest="sha256:" + "a" * 64, encoder=enc),
        strong=SimpleNamespace(digest="sha256:" + "b" * 64, encoder=enc),
    )
    router = Router(fake, 0.8, 0.7)  # type: ignore[arg-type]
    router.route = lambda texts, batch_size=32: [Routed("invoice", 0.917, "fast") for _ in texts]  # type: ignore[method-assign]
    return router


def _forged_db(path: Path, router: Router, key: str) -> None:
    """The attacker's cache: the pack's table, one row keyed as the pack keys it, with their answer."""
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE answers_by_text (doc TEXT, router TEXT, answer TEXT, PRIMARY KEY (doc, router))")
    conn.execute("INSERT INTO answers_by_text VALUES (?, ?, ?)", (key, router.digest, json.dumps(FORGED)))
    conn.commit()
    conn.close()


def _plant_file(state: Path, router: Router, key: str) -> Path:
    """Another user's 0666 ``documents.db`` in a cache folder of the state folder (the reviewer's S1)."""
    _as_root()
    (state / "cache").mkdir()
    db = state / "cache" / "documents.db"
    _forged_db(db, router, key)
    db.chmod(0o666)
    os.chown(db, NOBODY, NOBODY)
    return db


def _plant_folder(state: Path, router: Router, key: str) -> Path:
    """Another user's cache folder (0777), holding their database."""
    _as_root()
    folder = state / "cache"
    folder.mkdir()
    folder.chmod(0o777)
    _forged_db(folder / "documents.db", router, key)
    for p in (folder, folder / "documents.db"):
        os.chown(p, NOBODY, NOBODY)
    return folder


def _plant_link(state: Path, router: Router, key: str) -> Path:
    """``documents.db`` a link to a database elsewhere, holding the forged row."""
    (state / "cache").mkdir()
    elsewhere = state.parent / "elsewhere.db"
    _forged_db(elsewhere, router, key)
    db = state / "cache" / "documents.db"
    db.symlink_to(elsewhere)
    return db


CACHE_PLANTS: dict[str, Callable[[Path, Router, str], Path]] = {
    "another user's 0666 database": _plant_file,
    "another user's cache folder": _plant_folder,
    "a link": _plant_link,
}


@pytest.mark.parametrize("plant", list(CACHE_PLANTS))
def test_a_planted_classification_cache_is_refused_not_read(aios_env: Path, plant: str) -> None:
    router, key = _router(), "sha256:" + "c" * 64  # the text's digest: public, as is the router's
    bad = CACHE_PLANTS[plant](aios_env, router, key)
    answer: list[Routed] = []
    with pytest.raises(GovernanceDenied) as err:
        cache = ResultCache(aios_env / "cache" / "documents.db")
        answer = router.route_cached([key], ["INVOICE ..."], cache)  # the old code: the forged row, sealed as cached
        cache.close()
    assert answer == [], answer
    assert err.value.reason_code == "unsafe_state_file"
    msg = str(err.value)
    assert f"refusing the classification cache {aios_env / 'cache' / 'documents.db'}: {bad}" in msg, msg
    fix = msg.partition("; nothing was classified. ")[2].lower()  # then what to do
    assert "remove it" in fix or "chown it" in fix, msg
    assert "\n" not in msg and "Traceback" not in msg, msg


def test_the_cache_the_pack_makes_is_private_whatever_the_umask(aios_env: Path, umask0: None) -> None:
    state = aios_env / "fresh-state"  # a state folder the cache step creates (S6: it was 0777 under umask 0)
    router, key = _router(), "sha256:" + "d" * 64
    cache = ResultCache(state / "cache" / "documents.db")
    try:
        assert router.route_cached([key], ["INVOICE ..."], cache) == [Routed("invoice", 0.917, "fast")]
        assert router.route_cached([key], ["INVOICE ..."], cache) == [Routed("invoice", 0.917, "fast", True)]
    finally:
        cache.close()
    assert _mode(state) == 0o700 and _mode(state / "cache") == 0o700
    assert _mode(state / "cache" / "documents.db") == 0o600
    reopened = ResultCache(state / "cache" / "documents.db")  # its own file, found again: used
    try:
        assert reopened.get_many([key], router.digest) == {key: Routed("invoice", 0.917, "fast", True)}
    finally:
        reopened.close()


def test_an_earlier_versions_cache_others_could_write_is_discarded_not_read(aios_env: Path) -> None:
    """The old code made ``documents.db`` with the umask's mode: 0666 under umask 0, so others may have changed its
    rows. This user's own such cache is dropped (with its ``-wal``) and made again 0600, and classification goes on,
    from the models (it is only a cache)."""
    router, key = _router(), "sha256:" + "e" * 64
    db = aios_env / "cache" / "documents.db"
    (aios_env / "cache").mkdir()
    _forged_db(db, router, key)  # what another user may have written into it
    db.chmod(0o666)
    (aios_env / "cache" / "documents.db-wal").write_bytes(b"")
    (aios_env / "cache" / "documents.db-wal").chmod(0o666)
    cache = ResultCache(db)
    try:
        assert router.route_cached([key], ["INVOICE ..."], cache) == [Routed("invoice", 0.917, "fast")]
    finally:
        cache.close()
    assert _mode(db) == 0o600


# ---- the document models' folder and lock (F2) ---------------------------------------------------------------------


@pytest.fixture
def no_training(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """``train`` writes stand-in manifests (no minute of training) and ``TextClassifier.load`` returns its folder."""
    trained: list[Path] = []

    def train(folder: Path, encoder: Any = None) -> None:
        trained.append(folder)
        for name in (models.FAST, models.STRONG):
            (folder / name).mkdir(exist_ok=True)
            (folder / name / "aios_model.json").write_text("{}")

    monkeypatch.setattr(models, "train", train)
    monkeypatch.setattr(models.TextClassifier, "load", staticmethod(lambda folder, bf16=None: folder))
    return trained


def _load(folder: Path, timeout: float = 20.0) -> BaseException | models.DocumentModels:
    """``load_or_train(folder)`` in a thread: what it returned or raised; a test failure if it is still blocked."""
    out: list[BaseException | models.DocumentModels] = []

    def run() -> None:
        try:
            out.append(models.load_or_train(folder, bf16=False))
        except BaseException as e:  # handed to the test
            out.append(e)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(timeout)
    assert out, f"load_or_train({folder}) still blocked after {timeout} s"
    return out[0]


def _refused(result: object, folder: Path, bad: Path, reason: str) -> None:
    assert isinstance(result, GovernanceDenied), result
    assert result.reason_code == "unsafe_state_file"
    msg = str(result)
    assert f"refusing the document models folder {folder}: {bad} is {reason}" in msg, msg
    assert f"Remove {bad}" in msg and "nothing was loaded" in msg, msg
    assert "\n" not in msg and "Traceback" not in msg, msg


def test_a_lock_link_is_refused_and_the_file_it_names_untouched(aios_env: Path, no_training: list[Path]) -> None:
    folder = aios_env / "models" / "documents"
    folder.mkdir(parents=True)
    precious = aios_env.parent / "precious.db"  # any file of the pack's user (its audit trail, a key)
    precious.write_bytes(b"SQLite format 3\x00" + b"x" * 4000)
    (folder / ".lock").symlink_to(precious)
    _refused(_load(folder), folder, folder / ".lock", "a symbolic link")
    assert precious.stat().st_size == 4016  # the old open("w") truncated it
    assert no_training == []


HOLDER = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDONLY)
fcntl.flock(fd, fcntl.LOCK_SH)
print("held", flush=True)
time.sleep(60)
"""


@pytest.mark.timeout(120)
def test_a_lock_another_user_holds_is_refused_not_waited_on(aios_env: Path, no_training: list[Path]) -> None:
    _as_root()
    folder = aios_env / "models" / "documents"
    folder.mkdir(parents=True)
    lock = folder / ".lock"
    lock.write_text("")
    lock.chmod(0o666)
    os.chown(lock, NOBODY, NOBODY)
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(lock)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        _refused(_load(folder), folder, lock, f"owned by uid {NOBODY}")
    finally:
        holder.kill()
        holder.wait(timeout=10)


@pytest.mark.timeout(120)
def test_a_lock_fifo_is_refused_not_blocked_on(aios_env: Path, no_training: list[Path]) -> None:
    folder = aios_env / "models" / "documents"
    folder.mkdir(parents=True)
    os.mkfifo(folder / ".lock", 0o600)
    try:
        _refused(_load(folder, timeout=10), folder, folder / ".lock", "not a regular file")
    finally:
        fd = os.open(folder / ".lock", os.O_RDONLY | os.O_NONBLOCK)  # releases an old-code open("w") still blocked
        os.close(fd)


def test_a_models_folder_another_user_made_is_refused(aios_env: Path, no_training: list[Path]) -> None:
    """The reviewer's set-up: another user created the folder and copied heads into it, which were then loaded and
    catalogued. Now it is refused before anything in it is read, and nothing is trained into it."""
    _as_root()
    folder = aios_env / "models" / "documents"
    folder.mkdir(parents=True)
    folder.chmod(0o777)
    os.chown(folder, NOBODY, NOBODY)
    for name in (models.FAST, models.STRONG):
        (folder / name).mkdir()
        (folder / name / "aios_model.json").write_text("{}")
    result = _load(folder)
    assert isinstance(result, GovernanceDenied), result
    assert result.reason_code == "unsafe_state_file" and f"refusing the document models folder {folder}" in str(result)
    assert not (folder / ".lock").exists()


def test_the_models_folder_the_pack_makes_is_private(aios_env: Path, umask0: None, no_training: list[Path]) -> None:
    state = aios_env / "fresh-state"
    folder = state / "models" / "documents"
    loaded = _load(folder)
    assert isinstance(loaded, models.DocumentModels), loaded
    assert no_training == [folder]
    assert loaded.fast == folder / models.FAST and loaded.strong == folder / models.STRONG  # type: ignore[comparison-overlap]
    for d in (state, state / "models", folder, folder / models.FAST, folder / models.STRONG):
        assert _mode(d) == 0o700, (d, oct(_mode(d)))
    assert _mode(folder / ".lock") == 0o600
    assert isinstance(_load(folder), models.DocumentModels)  # found again: used, not trained again
    assert no_training == [folder]


def test_an_earlier_versions_open_lock_of_ours_is_narrowed_and_used(aios_env: Path, no_training: list[Path]) -> None:
    """``open("w")`` left ``.lock`` 0644 (the umask's mode) in every existing models folder: it is set to 0600 and
    used, not refused."""
    folder = aios_env / "models" / "documents"
    folder.mkdir(parents=True)
    (folder / ".lock").write_text("")
    (folder / ".lock").chmod(0o644)
    assert isinstance(_load(folder), models.DocumentModels)
    assert _mode(folder / ".lock") == 0o600


# ---- the corrections folder and the lineage file's folders (S6) ------------------------------------------------------


def test_the_corrections_folder_is_private_whatever_the_umask(aios_env: Path, umask0: None) -> None:
    from tasks.ml.feedback import append_correction, feedback_path

    state = aios_env / "fresh-state"
    settings = get_settings().model_copy(update={"state_dir": state})
    append_correction("great film", "positive", "user:alice", settings=settings)
    assert _mode(state) == 0o700 and _mode(feedback_path(settings).parent) == 0o700
    assert _mode(feedback_path(settings)) == 0o600


def test_a_corrections_folder_another_user_made_is_refused_before_the_review_is_recorded(aios_env: Path) -> None:
    _as_root()
    from flytekitplugins.aios_audit import audit_log
    from tasks.ml.feedback import append_correction, feedback_path

    settings = get_settings()
    folder = feedback_path(settings).parent
    folder.mkdir()
    folder.chmod(0o777)
    os.chown(folder, NOBODY, NOBODY)
    before = audit_log(settings).size()
    with pytest.raises(GovernanceDenied) as err:
        append_correction("great film", "positive", "user:alice", settings=settings)
    assert err.value.reason_code == "unsafe_state_file"
    msg = str(err.value)
    assert f"refusing the corrections folder {folder}: {folder}" in msg and "was not recorded" in msg, msg
    assert audit_log(settings).size() == before  # no review record without its line
    assert not feedback_path(settings).exists()


def test_a_corrections_file_another_user_left_is_not_written_through(aios_env: Path) -> None:
    """Re-review R10b: with the folder narrowed after another user left a link at ``corrections.jsonl`` (to a file of
    theirs, world-readable), the reviewed text (an IBAN, a name) was appended to their file. The file must be this
    user's own regular file: checked before the review is recorded, and never opened through a link."""
    _as_root()
    from flytekitplugins.aios_audit import audit_log
    from tasks.ml.feedback import append_correction, feedback_path

    settings = get_settings()
    target = feedback_path(settings)
    target.parent.mkdir(mode=0o700)
    theirs = aios_env / "theirs.jsonl"
    theirs.write_text("")
    theirs.chmod(0o666)
    os.chown(theirs, NOBODY, NOBODY)
    target.symlink_to(theirs)
    before = audit_log(settings).size()
    with pytest.raises(GovernanceDenied) as err:
        append_correction("IBAN DE89 3704 0044 0532 0130 00", "invoice", "user:alice", settings=settings)
    assert err.value.reason_code == "unsafe_state_file" and f"{target} is a symbolic link" in str(err.value)
    assert theirs.read_text() == "" and audit_log(settings).size() == before


def test_a_cache_another_user_left_is_refused_where_this_user_cannot_write_it(
    aios_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Re-review R10b: another user's cache (0644, left before the folder was narrowed) that this user cannot write
    was taken as a reader's file, and in WAL mode it answered with their rows. Only an audit store may be read as
    another user's (an auditor's account); a cache is this user's own or refused. (A second user cannot reach a
    test's private folder: this process is refused write access instead.)"""
    import flytekitplugins.aios_audit.private_files as pf

    router, key = _router(), "sha256:" + "c" * 64
    db = _plant_file(aios_env, router, key)
    db.chmod(0o644)
    real = os.access
    monkeypatch.setattr(pf.os, "access", lambda p, mode, **kw: False if mode == os.W_OK else real(p, mode, **kw))
    with pytest.raises(GovernanceDenied) as err:
        ResultCache(aios_env / "cache" / "documents.db")
    assert err.value.reason_code == "unsafe_state_file" and f"{db} is owned by uid {NOBODY}" in str(err.value)


@pytest.mark.parametrize("suffix", ["-wal", "-journal"])
def test_a_wal_or_journal_another_user_left_beside_the_cache_is_refused(aios_env: Path, suffix: str) -> None:
    """SQLite reads a ``-wal`` file beside the database as the database's newest pages, and rolls a hot ``-journal``
    back into it at open (then deletes it): one another user left there (before the folder was narrowed) answered with
    their rows (re-review R11 reproduced the journal). Both are held to the file's own rule."""
    _as_root()
    db = aios_env / "cache" / "documents.db"
    ResultCache(db).close()
    wal = db.with_name(db.name + suffix)
    wal.write_bytes(b"")
    os.chown(wal, NOBODY, NOBODY)
    with pytest.raises(GovernanceDenied) as err:
        ResultCache(db)
    assert err.value.reason_code == "unsafe_state_file" and f"{wal} is owned by uid {NOBODY}" in str(err.value)


def test_the_lineage_files_folders_are_private_whatever_the_umask(aios_env: Path, umask0: None) -> None:
    from flytekitplugins.aios_audit.lineage_events import JsonLinesTransport

    state = aios_env / "fresh-state"
    t = JsonLinesTransport(state / "lineage" / "events.jsonl")
    t.emit({"eventType": "START"})
    assert _mode(state) == 0o700 and _mode(state / "lineage") == 0o700  # the parents were 0777
    assert _mode(state / "lineage" / "events.jsonl") == 0o600


def test_a_lineage_folder_another_user_made_turns_emission_off(
    aios_env: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _as_root()
    from flytekitplugins.aios_audit.emit import lineage_client

    folder = aios_env / "lineage"
    folder.mkdir()
    folder.chmod(0o777)
    os.chown(folder, NOBODY, NOBODY)
    monkeypatch.setenv("AIOS_LINEAGE_URL", f"file:{folder / 'events.jsonl'}")
    with caplog.at_level(logging.WARNING):
        assert lineage_client(get_settings()) is None
    assert f"OpenLineage emission disabled: {folder}" in caplog.text, caplog.text
    assert not (folder / "events.jsonl").exists()
