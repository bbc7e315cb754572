"""Re-review R14 of the "another local user" fixes: what another user of the host could still plant after the checks.

The attacker has a shell on the host and no rights in the pack. R14 reproduced: a ``-wal`` linked in beside a SQLite
database between the pack's check of its files and SQLite's open (an inotify watcher did it on the open), in a folder
the attacker may write; ``sqlite://///localhost/...``, which SQLite reads as a URI's host while the checks looked at
``/localhost/...``; ``aios lineage report --out`` writing into the attacker's file or through their link; the
OpenLineage JSON-lines file followed through a link left in its folder; and a key read through another user's link
to a folder. Here the watcher is a hook on ``sqlite3.connect``, which runs after the checks and before SQLite opens
the files, as the watcher's link did. Files of "another user" are made with ``os.chown`` (root only, as CI runs).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from flytekitplugins.aios_audit.private_files import UnsafeFile
from flytekitplugins.aios_core.cli import cli
from flytekitplugins.aios_core.errors import ConfigError
from flytekitplugins.aios_core.settings import get_settings
from tests.security.test_local_shell_state import OTHER, _shared, _theirs, own_private_group

GENUINE = b"Invoice ACME GmbH  Pay to: ACME GmbH  IBAN DE89370400440532013000  Total EUR 950.00"
THEIRS = b"Invoice ACME GmbH  Pay to: MALLORY LTD  IBAN GB33BUKB20201555555555  Total EUR 950.00"


@pytest.fixture(autouse=True)
def _root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to make files and folders owned by another user")


def _their_wal(db: Path, scratch: Path, *sql: str) -> bytes:
    """A ``-wal`` that applies ``sql`` on top of ``db``, as another user makes one: from a copy of the database (0644:
    readable to them), taken before it is checkpointed."""
    scratch.mkdir()
    copy = scratch / db.name
    shutil.copyfile(db, copy)
    conn = sqlite3.connect(copy)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA wal_autocheckpoint=0")
    conn.execute("PRAGMA user_version=7")  # page 1 in the log too
    for stmt in sql:
        conn.execute(stmt)
    conn.commit()
    data = (scratch / (db.name + "-wal")).read_bytes()
    conn.close()
    return data


def _planted_at_open(monkeypatch: pytest.MonkeyPatch, db: Path, wal: bytes) -> list[str]:
    """Another user's ``-wal`` put beside ``db`` when the pack next calls ``sqlite3.connect``: after its checks, before
    SQLite opens the files (R14's watcher linked it in on the database's open). Returns where it was planted."""
    real = sqlite3.connect
    planted: list[str] = []

    def connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        target = db.with_name(db.name + "-wal")
        if not planted and not target.exists():
            target.write_bytes(wal)
            _theirs(target, 0o644)
            planted.append(str(target))
        return real(*args, **kwargs)

    monkeypatch.setattr(sqlite3, "connect", connect)
    return planted


def _source(folder: Path) -> Path:
    """This user's own SQLite document source (0644) holding one genuine invoice."""
    db = folder / "documents.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE documents (id INTEGER PRIMARY KEY, name TEXT, content BLOB)")
        conn.execute("INSERT INTO documents VALUES (1, 'inv.txt', ?)", (GENUINE,))
    conn.close()
    db.chmod(0o644)
    return db


def _read(url: str) -> bytes:
    from tasks.documents.sources import local_copy

    with local_copy(f"{url}#documents/1") as path:
        return Path(path).read_bytes()


def test_a_document_source_in_a_folder_others_may_write_is_refused_before_a_wal_can_appear(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """R14 F1: the source's files were checked, then opened; a ``-wal`` linked in between (the folder is a sticky
    shared one, which another user may write) rewrote the genuine invoice's payee and IBAN as read, which ingest
    seals. The folder is held to the state folders' rule now: the read is refused, naming the folder."""
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    assert _read(f"sqlite:///{_source(private)}") == GENUINE  # a folder only this user may write: read
    db = _source(_shared(tmp_path))
    planted = _planted_at_open(
        monkeypatch, db, _their_wal(db, tmp_path / "theirs", f"UPDATE documents SET content = X'{THEIRS.hex()}'")
    )
    with pytest.raises(sqlite3.DatabaseError, match=re.escape(f"refused: {db.parent} is a folder others may write")):
        _read(f"sqlite:///{db}")
    assert not planted  # refused before SQLite was asked to open anything


def test_the_store_probe_refuses_a_folder_others_may_write(
    aios_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """R14 F1, the read commands' probe: with a ``-wal`` that drops the log linked in after the probe's check,
    ``aios audit verify --allow-empty`` said OK for 0 records of a trail of 3 in a sticky shared folder. Refused now,
    as opening the store there is."""
    from flytekitplugins.aios_audit import AuditEvent
    from flytekitplugins.aios_audit.stores import open_store

    made = tmp_path / "made" / "audit.db"
    store = open_store(f"sqlite:///{made}")
    for _ in range(3):
        store.append(AuditEvent(kind="task", actor="service:pipeline"))
    store.close()
    db = _shared(tmp_path) / "audit.db"
    shutil.copyfile(made, db)
    db.chmod(0o644)
    planted = _planted_at_open(monkeypatch, db, _their_wal(db, tmp_path / "theirs", "DROP TABLE audit_log"))
    monkeypatch.setenv("AIOS_AUDIT_STORE", f"sqlite:///{db}")
    out = CliRunner().invoke(cli, ["audit", "verify", "--allow-empty"])
    assert out.exit_code != 0 and "OK" not in out.output, out.output
    assert f"refusing the SQLite audit store {db}: {db.parent} is a folder others may write" in out.output
    assert not planted and "Traceback" not in out.output


def test_a_sqlite_path_starting_with_two_slashes_is_refused(tmp_path: Path) -> None:
    """R14 F3: ``sqlite://///localhost/x/documents.db`` had the checks look at ``/localhost/x/...`` (nothing there)
    while SQLite read ``//localhost`` as a URI's host and opened ``/x/documents.db``, through another user's
    ``-wal`` beside it. Such a path is refused; the source is opened by the name the checks used."""
    src = tmp_path / "src"
    src.mkdir(mode=0o700)
    db = _source(src)
    wal = db.with_name(db.name + "-wal")
    wal.write_bytes(_their_wal(db, tmp_path / "theirs", f"UPDATE documents SET content = X'{THEIRS.hex()}'"))
    _theirs(wal, 0o644)  # (left before the folder was narrowed)
    with pytest.raises(sqlite3.DatabaseError, match=r"refused: .*starting with //"):
        _read(f"sqlite://///localhost{db}")
    with pytest.raises(sqlite3.DatabaseError, match=re.escape(f"refused: {wal} is owned by uid {OTHER}")):
        _read(f"sqlite:///{db}")


def test_lineage_report_replaces_a_planted_file_and_refuses_a_planted_link(aios_env: Path, tmp_path: Path) -> None:
    """R14 F2: ``aios lineage report --out`` wrote the report into another user's 0666 file in a shared folder (it
    stayed theirs, to edit the verdict it carries) and through their link (a file of this user's was overwritten).
    It writes as every ``--out`` does now (``write_private``)."""
    from flytekitplugins.aios_audit import audit_log
    from tests.lineage.synthetic import write_trail

    write_trail(audit_log(get_settings(), emit=False), 3, per_execution=3)
    shared = _shared(tmp_path)
    out = shared / "report.html"
    out.write_bytes(b"")
    _theirs(out, 0o666)
    res = CliRunner().invoke(cli, ["lineage", "report", "--out", str(out)])
    assert res.exit_code == 0, res.output
    st = os.lstat(out)
    assert (st.st_uid, st.st_mode & 0o777) == (0, 0o600) and "verification OK" in res.output
    notes = tmp_path / "victim" / "notes.txt"
    notes.parent.mkdir(mode=0o700)
    notes.write_text("this user's notes")
    link = shared / "report2.html"
    link.symlink_to(notes)
    _theirs(link, 0)
    res = CliRunner().invoke(cli, ["lineage", "report", "--out", str(link)])
    assert res.exit_code != 0 and f"{link} is a symbolic link owned by uid {OTHER}" in res.output, res.output
    assert notes.read_text() == "this user's notes" and "Traceback" not in res.output


def test_the_lineage_file_is_not_written_through_a_link_left_in_its_folder(tmp_path: Path) -> None:
    """R14 F4: the JSON-lines transport opened its file following links: one another user left in the folder while it
    was 0777 still took every event after the folder was narrowed to 0700. Each emit is refused now, naming it."""
    from flytekitplugins.aios_audit.lineage_datasets import JsonLinesTransport

    folder = tmp_path / "state" / "lineage"
    folder.mkdir(parents=True, mode=0o700)
    theirs = _shared(tmp_path) / "collected.jsonl"
    theirs.write_bytes(b"")
    _theirs(theirs, 0o666)
    link = folder / "events.jsonl"
    link.symlink_to(theirs)
    _theirs(link, 0)
    transport = JsonLinesTransport(link)
    with pytest.raises(UnsafeFile, match=re.escape(f"{link} is a symbolic link")):
        transport.emit({"eventType": "COMPLETE", "run": {"runId": "r"}})
    assert theirs.read_bytes() == b""
    mine = JsonLinesTransport(folder / "mine.jsonl")
    mine.emit({"eventType": "COMPLETE"})
    assert (folder / "mine.jsonl").read_bytes() == b'{"eventType":"COMPLETE"}\n'
    assert os.lstat(folder / "mine.jsonl").st_mode & 0o777 == 0o600


def test_a_key_is_not_read_through_another_users_link_to_a_folder(tmp_path: Path) -> None:
    """R14 F5: only the key file's own name was walked for links; another user's link in place of ``keys/``, leading
    to this user's other deployment's keys, had that deployment's approvals key read (and used to sign). A link
    among the folders is held to the rule too; this user's own links still work."""
    from flytekitplugins.aios_core.keys import read_key_file

    other = tmp_path / "other-deployment" / "keys"
    other.mkdir(parents=True, mode=0o700)
    (other / "approvals-ed25519.pem").write_bytes(b"the other deployment's key")
    (other / "approvals-ed25519.pem").chmod(0o600)
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    (state / "keys").symlink_to(other)
    _theirs(state / "keys", 0)
    with pytest.raises(ConfigError, match=re.escape(f"{state / 'keys'} is a symbolic link owned by uid {OTHER}")):
        read_key_file(state / "keys" / "approvals-ed25519.pem", "approvals signing key")
    os.lchown(state / "keys", 0, 0)  # the same link, this user's own: followed
    assert read_key_file(state / "keys" / "approvals-ed25519.pem", "approvals signing key") == (
        b"the other deployment's key"
    )


# ---- re-review R15 of the fixes above ------------------------------------------------------------------------------


def test_a_key_is_not_read_through_a_folder_link_swapped_in_after_the_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """R15 F1: the links on the key's path were checked, then the resolved name was opened with ``O_NOFOLLOW``, which
    guards its last name only. Another user who may write a folder on the way (a state folder made 0777 under umask
    0) swapped their link to this user's other deployment's ``keys/`` in and out, and 359 reads in 20,000 took that
    key. Here the swap comes right after the last check; the open, a name at a time without following links, refuses
    it."""
    from flytekitplugins.aios_audit import private_files
    from flytekitplugins.aios_core.keys import read_key_file

    other = tmp_path / "other-deployment" / "keys"
    other.mkdir(parents=True, mode=0o700)
    (other / "approvals-ed25519.pem").write_bytes(b"the other deployment's key")
    (other / "approvals-ed25519.pem").chmod(0o600)
    state = tmp_path / "state"
    (state / "keys").mkdir(parents=True, mode=0o700)
    # (made under umask 0, the reproduction's 0777 is refused on its own now, R16; sticky here, where the link is
    # put in by this test: the open never follows one, whoever could have put it there)
    state.chmod(0o1777)
    key = state / "keys" / "approvals-ed25519.pem"
    key.write_bytes(b"this deployment's key")
    key.chmod(0o600)
    assert read_key_file(key, "approvals signing key") == b"this deployment's key"
    real = private_files.checked_folder
    calls: list[Path] = []

    def resolve_then_swap(path: Any) -> Path:
        out = real(path)
        calls.append(out)
        if len(calls) == 1:  # the last check made (the name is no link: its folder's walk is the only one)
            (state / "keys").rename(state / "keys.mine")
            (state / "keys").symlink_to(other)
            _theirs(state / "keys", 0)
        return out

    monkeypatch.setattr(private_files, "checked_folder", resolve_then_swap)
    with pytest.raises(ConfigError, match=re.escape(f"{state / 'keys'} is a symbolic link or a file put on the way")):
        read_key_file(key, "approvals signing key")
    assert len(calls) == 1


def test_a_link_then_dotdot_is_walked_where_the_link_leads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """R15 F2: ``os.path.abspath`` took ``lnk/..`` away by spelling, so for ``mine/lnk/../documents.db`` the checks
    looked at ``mine`` (private) while SQLite and the kernel went up from where ``lnk`` leads, a sticky shared folder:
    R14's race read MALLORY LTD's payee again (54 of 200), and a store was made there. The walk keeps the ``..``."""
    from flytekitplugins.aios_audit.stores import AuditWriteError, open_store

    shared = _shared(tmp_path)
    (shared / "sub").mkdir(mode=0o700)
    mine = tmp_path / "mine"
    mine.mkdir(mode=0o700)
    (mine / "lnk").symlink_to(shared / "sub")
    db = _source(shared)
    planted = _planted_at_open(
        monkeypatch, db, _their_wal(db, tmp_path / "theirs", f"UPDATE documents SET content = X'{THEIRS.hex()}'")
    )
    with pytest.raises(sqlite3.DatabaseError, match=re.escape(f"refused: {shared} is a folder others may write")):
        _read(f"sqlite:///{mine}/lnk/../documents.db")
    assert not planted
    monkeypatch.undo()
    with pytest.raises(AuditWriteError, match=re.escape(f"{shared} is a folder others may write")):
        open_store(f"sqlite:///{mine}/lnk/../audit.db")
    assert not (shared / "audit.db").exists()


def test_the_lineage_file_refuses_a_named_pipe_instead_of_waiting_on_it(tmp_path: Path) -> None:
    """R15 F3: a named pipe another user left at the JSON-lines file (while its folder was 0777) had each emit wait
    in ``open`` forever, with no warning naming it. It is refused at once now."""
    import threading

    from flytekitplugins.aios_audit.lineage_datasets import JsonLinesTransport

    folder = tmp_path / "state" / "lineage"
    folder.mkdir(parents=True, mode=0o700)
    fifo = folder / "events.jsonl"
    os.mkfifo(fifo, 0o666)
    _theirs(fifo, 0o666)
    raised: list[BaseException] = []

    def emit() -> None:
        try:
            JsonLinesTransport(fifo).emit({"eventType": "COMPLETE"})
        except BaseException as e:  # (what it raised is the finding)
            raised.append(e)

    t = threading.Thread(target=emit, daemon=True)
    t.start()
    t.join(10)
    waited = t.is_alive()
    if waited:  # (the old code: release it, as a reader of the pipe would)
        fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        t.join(5)
        os.close(fd)
    assert not waited and raised, "emit waited on the pipe"
    assert isinstance(raised[0], UnsafeFile) and f"{fifo} is not a regular file" in str(raised[0]), raised


def test_lineage_report_makes_missing_folders_private_under_umask_0(aios_env: Path, tmp_path: Path) -> None:
    """R15 (a side note): ``aios lineage report --out new/dir/r.html`` under umask 0 made the folders 0777 with
    ``mkdir(parents=True)`` and then refused its own folder. They are made 0700 now, as every ``--out`` makes them."""
    from flytekitplugins.aios_audit import audit_log
    from tests.lineage.synthetic import write_trail

    write_trail(audit_log(get_settings(), emit=False), 3, per_execution=3)
    out = tmp_path / "reports" / "new" / "r.html"
    old = os.umask(0)
    try:
        res = CliRunner().invoke(cli, ["lineage", "report", "--out", str(out)])
    finally:
        os.umask(old)
    assert res.exit_code == 0 and out.is_file(), res.output
    assert [os.lstat(p).st_mode & 0o777 for p in (out.parent.parent, out.parent, out)] == [0o700, 0o700, 0o600]


# ---- re-review R16 of the fixes above ------------------------------------------------------------------------------


def test_a_key_is_not_read_from_a_deployment_renamed_into_the_others_place(tmp_path: Path) -> None:
    """R16 D1: two deployments of this user side by side in a folder others may write without the sticky bit; another
    user renamed them into each other's places (no link, nothing of theirs), and the approvals key of one was read as
    the other's. Such a folder on the way is refused now, as it is where a key would be made."""
    from flytekitplugins.aios_core.keys import read_key_file

    deployments = tmp_path / "deployments"
    for name in ("prod", "staging"):
        (deployments / name / "keys").mkdir(parents=True, mode=0o700)
        (deployments / name).chmod(0o700)
        key = deployments / name / "keys" / "approvals-ed25519.pem"
        key.write_bytes(f"the {name} key".encode())
        key.chmod(0o600)
    deployments.chmod(0o777)
    (deployments / "prod").rename(deployments / ".p")  # what the other user did
    (deployments / "staging").rename(deployments / "prod")
    (deployments / ".p").rename(deployments / "staging")
    prod = deployments / "prod" / "keys" / "approvals-ed25519.pem"
    said = f"{deployments} is a folder others may write without the sticky bit (mode 0777)"
    with pytest.raises(ConfigError, match=re.escape(said)):
        read_key_file(prod, "approvals signing key")
    deployments.chmod(0o755)  # no one else may rename them: read
    assert read_key_file(prod, "approvals signing key") == b"the staging key"


def test_a_key_path_starting_with_two_slashes_is_read(tmp_path: Path) -> None:
    """R16 D3 (a regression of R15's fix for honest users): ``file://tmp/...`` or a link whose target starts with
    ``//`` (a script's ``PREFIX=/``) ended in ``unexpected ValueError: not an absolute path``."""
    from flytekitplugins.aios_core.keys import read_key_file

    key = tmp_path / "keys" / "k.pem"
    key.parent.mkdir(mode=0o700)
    key.write_bytes(b"the key")
    key.chmod(0o600)
    assert read_key_file(Path("/" + str(key)), "signing key") == b"the key"
    (tmp_path / "via").symlink_to("/" + str(key.parent))
    assert read_key_file(tmp_path / "via" / "k.pem", "signing key") == b"the key"


def test_an_absolute_state_folder_is_checked_from_a_deleted_current_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """R16 D4: the walk asked for the current folder for every path, so a library caller whose current folder had
    been removed could no longer check an absolute one (``FileNotFoundError``)."""
    from flytekitplugins.aios_audit.private_files import private_dir, resolve_owned

    gone = tmp_path / "gone"
    gone.mkdir()
    monkeypatch.chdir(gone)
    gone.rmdir()
    assert private_dir(tmp_path / "state") == tmp_path / "state" and (tmp_path / "state").is_dir()
    assert resolve_owned(tmp_path / "state") == tmp_path / "state"


def test_a_key_is_not_read_through_this_users_links_in_a_folder_others_may_write(tmp_path: Path) -> None:
    """R17 F3: this user's own links ``prod`` and ``staging`` (to two deployments' ``keys/``, or to the key files) in a
    folder others may write without the sticky bit; another user swapped them, and prod's key read was staging's.
    The links' owners were judged, never the folder holding them; it is now."""
    from flytekitplugins.aios_core.keys import read_key_file

    private = tmp_path / "private"
    for name in ("prod", "staging"):
        (private / name / "keys").mkdir(parents=True, mode=0o700)
        key = private / name / "keys" / "approvals-ed25519.pem"
        key.write_bytes(f"the {name} key".encode())
        key.chmod(0o600)
    private.chmod(0o700)
    links = tmp_path / "links"
    links.mkdir()
    (links / "prod").symlink_to(private / "staging" / "keys")  # as the other user left them, swapped
    (links / "staging").symlink_to(private / "prod" / "keys")
    (links / "prod.pem").symlink_to(private / "staging" / "keys" / "approvals-ed25519.pem")
    links.chmod(0o777)
    said = f"{links} is a folder others may write without the sticky bit (mode 0777)"
    for path in (links / "prod" / "approvals-ed25519.pem", links / "prod.pem"):
        with pytest.raises(ConfigError, match=re.escape(said)):
            read_key_file(path, "approvals signing key")
    links.chmod(0o1777)  # sticky: no one else may rename this user's links
    assert read_key_file(links / "prod.pem", "approvals signing key") == b"the staging key"


def test_a_key_is_not_read_through_a_second_link_in_a_folder_others_may_write(tmp_path: Path) -> None:
    """R31a F1: the key named through this user's link to a second link of theirs, kept in a folder others may write
    without the sticky bit: the folder of the name and the key's own folder were checked, not the middle link's, so
    another user renamed the links there into each other's places and staging's key was read as prod's."""
    from flytekitplugins.aios_core.keys import read_key_file

    private = tmp_path / "private"
    for name in ("prod", "staging"):
        (private / name).mkdir(parents=True, mode=0o700)
        key = private / name / "signing.pem"
        key.write_bytes(f"the {name} key".encode())
        key.chmod(0o600)
    private.chmod(0o700)
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "current.pem").symlink_to(private / "staging" / "signing.pem")  # as the other user left it, swapped
    shared.chmod(0o777)
    cfg = tmp_path / "cfg"
    cfg.mkdir(mode=0o700)
    (cfg / "signing.pem").symlink_to(shared / "current.pem")  # the profile names cfg/signing.pem
    said = f"{shared} is a folder others may write without the sticky bit (mode 0777)"
    with pytest.raises(ConfigError, match=re.escape(said)):
        read_key_file(cfg / "signing.pem", "signing key")
    shared.chmod(0o1777)  # sticky: no one else may rename this user's links
    assert read_key_file(cfg / "signing.pem", "signing key") == b"the staging key"


def test_a_folder_with_an_acl_for_another_user_is_not_the_owners_own_group(tmp_path: Path) -> None:
    """R17 F3 (F): a folder above the state folder may be written by the owner's own group alone (umask 002), judged
    by its mode bits; with an access ACL ``user:<other>:rwx`` the group bits show the ACL's mask (0770) and the folder
    passed, so the other user swapped this user's deployments under it. An ACL'd folder gets no such allowance."""
    import struct

    from flytekitplugins.aios_audit.private_files import private_dir

    uid, own = os.geteuid(), own_private_group()
    above = tmp_path / "above"
    above.mkdir()
    os.chown(above, uid, own)
    above.chmod(0o770)
    assert private_dir(above / "state") == above / "state"  # the owner's own group alone: accepted

    def entry(tag: int, perm: int, ident: int = 0xFFFFFFFF) -> bytes:
        return struct.pack("<HHI", tag, perm, ident)

    acl = struct.pack("<I", 2) + entry(0x01, 7) + entry(0x02, 7, OTHER) + entry(0x04, 7) + entry(0x10, 7)
    try:
        os.setxattr(above, "system.posix_acl_access", acl + entry(0x20, 0))
    except OSError as e:
        pytest.skip(f"no POSIX ACLs on this file system: {e}")
    assert stat.S_IMODE(os.stat(above).st_mode) == 0o770  # the mode looks the same
    with pytest.raises(UnsafeFile, match=re.escape(f"{above} is a folder others may write without the sticky bit")):
        private_dir(above / "state")


@pytest.mark.parametrize("attribute", ["system.nfs4_acl", "system.nfs4_acl_xdr", "system.richacl"])
def test_a_folder_with_an_nfs4_acl_is_not_the_owners_own_group(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, attribute: str
) -> None:
    """An NFSv4 ACL (an NFS mount: ``nfs4_setfacl -a A::other@domain:rwaDx``) grants another user write with the mode
    bits unchanged, as a POSIX one does, but only POSIX's was read: such a folder above the state folder passed as its
    owner's own group's. Any access ACL takes the allowance away (NFSv4's is looked for by its attribute's name; this
    host has no NFS mount to set one on)."""
    import flytekitplugins.aios_audit.private_files as pf

    above = tmp_path / "above"
    above.mkdir()
    os.chown(above, os.geteuid(), own_private_group())
    above.chmod(0o770)
    assert pf.private_dir(above / "state") == above / "state"  # the owner's own group alone: accepted
    real = os.listxattr
    monkeypatch.setattr(
        pf.os,
        "listxattr",
        lambda p, *a, **k: [*real(p, *a, **k), attribute] if str(p) == str(above) else real(p, *a, **k),
    )
    with pytest.raises(UnsafeFile, match=re.escape(f"{above} is a folder others may write without the sticky bit")):
        pf.private_dir(above / "state2")


def _swapped_during_the_walk(monkeypatch: pytest.MonkeyPatch, out: Path, then: Any) -> None:
    """Another user's entry at ``out`` in a shared folder, swapped as R16's and R17's loops did: a file of theirs while
    ``write_private`` walks the name's links, then ``then(out)`` in its place once the walk is over."""
    import flytekitplugins.aios_audit.private_files as pf

    checked = pf.end_of_links

    def walk(p: Path, owners: object, **kw: Any) -> Path:
        out.unlink()
        out.write_bytes(b"")
        _theirs(out, 0o644)
        end = checked(p, owners, **kw)  # type: ignore[arg-type]
        out.unlink()
        then(out)
        return end

    monkeypatch.setattr(pf, "end_of_links", walk)


def _their_link_to_dev_null(out: Path) -> None:
    out.symlink_to("/dev/null")
    _theirs(out, 0o777)


def test_an_output_is_not_diverted_to_dev_null_by_a_link_swapped_in_after_the_walk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Re-reviews R16 and R17: in a shared folder, another user's link to ``/dev/null`` at the name (a special file:
    written into) and a file of theirs there during the walk of its links (nothing to refuse) had the output opened
    by name through their link again: 508 of 30,000 writes went to ``/dev/null``, each reported written. What is
    written into is now the object the walk judged, opened once and compared."""
    from flytekitplugins.aios_audit.private_files import write_private

    out = _shared(tmp_path) / "evidence.zip"
    _their_link_to_dev_null(out)
    _swapped_during_the_walk(monkeypatch, out, _their_link_to_dev_null)
    with pytest.raises(UnsafeFile, match="changed while it was checked") as caught:
        write_private(out, "the evidence bundle")
    assert "nothing was written" in str(caught.value)


def test_an_output_does_not_wait_on_another_users_pipe_swapped_in_after_the_walk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Re-reviews R16 and R17: the same swap with a named pipe of theirs put at the name after the walk blocked the
    command in the pipe's open, for as long as they liked (or until they read the output). Now the pipe is refused
    by what was opened, without opening it for writing."""
    import threading

    from flytekitplugins.aios_audit.private_files import write_private

    def their_pipe(p: Path) -> None:
        os.mkfifo(p, 0o666)
        _theirs(p, 0o666)

    out = _shared(tmp_path) / "evidence.zip"
    _their_link_to_dev_null(out)
    _swapped_during_the_walk(monkeypatch, out, their_pipe)
    raised: list[BaseException] = []

    def write() -> None:
        try:
            write_private(out, "the evidence bundle")
        except BaseException as e:  # handed to the test's thread
            raised.append(e)

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    writer.join(timeout=10)
    blocked = writer.is_alive()
    if blocked:  # release the writer: open the pipe for reading, as its maker would
        fd = os.open(out, os.O_RDONLY | os.O_NONBLOCK)
        writer.join(timeout=10)
        os.close(fd)
    assert not blocked, "the write waited on another user's pipe"
    assert len(raised) == 1 and isinstance(raised[0], UnsafeFile), raised
    assert f"owned by uid {OTHER}" in str(raised[0])


def _collector(fifo: Path) -> tuple[Any, list[bytes]]:
    """A reader of ``fifo`` in a thread (another deployment's collector): what it read, once joined."""
    import threading

    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)
    reader.start()
    return reader, got


def release_reader(fifo: Path, reader: Any) -> None:
    """End a reader's wait for a writer that never came: open ``fifo`` for writing (which fails until the reader's
    thread has opened it: tried again until it ends) and close it, an end of file."""
    import time

    deadline = time.monotonic() + 30
    while reader.is_alive() and time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        reader.join(timeout=0.05)


def test_an_output_pipe_in_a_folder_others_may_write_is_refused(tmp_path: Path) -> None:
    """Re-review R18: the folders on the way to an output that is a device or a pipe were not checked (a regular
    output's are): in a 0777 folder another user renamed this user's own link to ``/dev/null`` over this user's pipe,
    and the output went to ``/dev/null``, reported written. That folder is refused now, as for a regular output."""
    from flytekitplugins.aios_audit.private_files import write_private

    drop = tmp_path / "drop"
    drop.mkdir()
    drop.chmod(0o777)
    out = drop / "report.fifo"
    (drop / "discard").symlink_to("/dev/null")
    os.replace(drop / "discard", out)  # what the other user did, in place of this user's pipe
    with pytest.raises(UnsafeFile, match=re.escape(f"{drop} is a folder others may write without the sticky bit")):
        write_private(out, "the audit report")


def test_an_output_pipe_is_not_reached_through_another_users_folder_link(tmp_path: Path) -> None:
    """Re-review R18: another user moved this user's ``prod/`` out of a 0777 folder and put their link ``prod ->
    staging`` in its place: ``prod``'s output went into ``staging``'s pipe (R17's swap of deployments, for an
    output), since only the output's own name was judged. Every folder on the way is judged now."""
    from flytekitplugins.aios_audit.private_files import write_private

    drop = tmp_path / "drop"
    drop.mkdir()
    drop.chmod(0o777)
    for name in ("prod", "staging"):
        (drop / name).mkdir(mode=0o700)
        os.mkfifo(drop / name / "out.fifo", 0o600)
    os.rename(drop / "prod", drop / "prod.moved")
    (drop / "prod").symlink_to(drop / "staging")
    os.lchown(drop / "prod", OTHER, OTHER)
    reader, got = _collector(drop / "staging" / "out.fifo")
    with pytest.raises(UnsafeFile):
        write_private(drop / "prod" / "out.fifo", "prod's audit report")
    release_reader(drop / "staging" / "out.fifo", reader)
    assert got == [b""], "prod's output went into staging's pipe"


def _own_group_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, plant: Any) -> None:
    """A 0770 folder of this user's own private group, refused while ``plant(own_gid, pf)`` (monkeypatches of what NSS
    or ``/etc/gshadow`` say) holds, and accepted again once they are undone."""
    import flytekitplugins.aios_audit.private_files as pf

    uid, own = os.geteuid(), own_private_group()
    above = tmp_path / "above"
    above.mkdir()
    os.chown(above, uid, own)
    above.chmod(0o770)
    plant(own, pf)
    pf._private_group.cache_clear()
    try:
        with pytest.raises(UnsafeFile, match=re.escape(f"{above} is a folder others may write without the sticky")):
            pf.private_dir(above / "state")
    finally:
        monkeypatch.undo()
        pf._private_group.cache_clear()
    assert pf.private_dir(above / "state") == above / "state"  # the owner's own group alone: accepted


def test_a_group_password_in_the_group_entry_itself_is_not_the_owners_own_group(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A group whose password is in its ``/etc/group`` entry itself (no ``/etc/gshadow`` entry: ``newgrp`` and ``sg``
    read it there) is anyone's who knows the password, but only gshadow's was looked at: such a group passed as its
    owner's own. A password in either place takes the allowance away."""
    import grp as grp_module

    def plant(own: int, pf: Any) -> None:
        real = grp_module.getgrgid(own)
        with_password = grp_module.struct_group((real.gr_name, "$6$salt$hashedgrouppassword", own, real.gr_mem))
        monkeypatch.setattr(grp_module, "getgrgid", lambda gid: with_password if gid == own else real)
        everyone = grp_module.getgrall()
        monkeypatch.setattr(grp_module, "getgrall", lambda: [g for g in everyone if g.gr_gid != own])

    _own_group_refused(tmp_path, monkeypatch, plant)


def test_a_second_group_of_the_same_number_is_not_the_owners_own_group(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Re-review R18: the owner's-own-group allowance read the members of the first group entry of the folder's gid
    only (``grp.getgrgid``), while another user listed in a second group of the same number (``groupadd -o``, or a
    local group and a directory group) had that gid and swapped this user's deployments in a 0770 folder above a
    key. Every entry of that number counts now."""
    import grp as grp_module

    def plant(own: int, pf: Any) -> None:
        real = grp_module.getgrall
        twin = grp_module.struct_group(("r18dup", "x", own, ["mallory"]))
        monkeypatch.setattr(grp_module, "getgrall", lambda: [*real(), twin])

    _own_group_refused(tmp_path, monkeypatch, plant)


@pytest.mark.parametrize("fd", [1, 2])
def test_dev_stdout_writes_into_this_process_own_descriptor_whoever_owns_what_it_leads_to(
    tmp_path: Path, fd: int
) -> None:
    """Re-review R18: ``--out /dev/stdout`` was judged by what it led to: root's output to a terminal another user
    owns (root after ``su`` from that user's terminal) was refused as "another user's device", a standard output
    appended to a file (``>> log``) replaced the log with a new file, and a socket could not be written. It is this
    process's own descriptor, pointed where its caller chose: written there, in place (appended here)."""
    import subprocess
    import sys

    log = tmp_path / "run.log"
    log.write_text("earlier line\n")
    _theirs(log, 0o666)  # another user's file, appended to by the caller's redirection
    name = "/dev/stdout" if fd == 1 else "/dev/stderr"
    code = f"from flytekitplugins.aios_audit.private_files import write_private; write_private({name!r}, 'proof\\n')"
    with log.open("ab") as f:
        res = subprocess.run([sys.executable, "-c", code], stdout=f, stderr=f, timeout=120)
    assert res.returncode == 0, log.read_text()[-2000:]
    assert log.read_text() == "earlier line\nproof\n"
    assert os.stat(log).st_uid == OTHER  # the same file, not a new one in its place


@contextlib.contextmanager
def _drop_and_collector(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    """A 0777 folder ``drop`` others may write, and the writing end of a pipe (another deployment's collector), which
    must have received nothing once the test's block is done."""
    read_end, write_end = os.pipe()
    os.set_blocking(read_end, False)
    try:
        drop = tmp_path / "drop"
        drop.mkdir()
        drop.chmod(0o777)
        yield drop, write_end
        with pytest.raises(BlockingIOError):  # nothing reached the collector
            os.read(read_end, 100)
    finally:
        os.close(read_end)
        os.close(write_end)


def test_an_output_is_not_sent_to_a_descriptor_through_another_users_folder_link(tmp_path: Path) -> None:
    """Re-review R19: an output whose walk of links reached this process's own descriptor was written there before
    any folder was checked: in a 0777 folder another user put their link ``prod -> staging`` in the place of
    ``prod/``, and ``prod``'s output went to the descriptor ``staging``'s own link names (``/dev/stderr`` there; a
    pipe here), reported written. The folders on the way are checked first, as for any output."""
    from flytekitplugins.aios_audit.private_files import write_private

    with _drop_and_collector(tmp_path) as (drop, collector):
        for name in ("prod", "staging"):
            (drop / name).mkdir(mode=0o700)
        os.mkfifo(drop / "prod" / "out.fifo", 0o600)
        (drop / "staging" / "out.fifo").symlink_to(f"/dev/fd/{collector}")  # staging's own: to its collector
        os.rename(drop / "prod", drop / "prod.moved")
        (drop / "prod").symlink_to(drop / "staging")
        os.lchown(drop / "prod", OTHER, OTHER)
        with pytest.raises(UnsafeFile):
            write_private(drop / "prod" / "out.fifo", "prod's audit report")


def test_a_group_a_directory_names_only_by_number_is_not_the_owners_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Re-review R19: R18's fix counted the members of the group entries ``grp.getgrall`` lists, and dropped those
    ``grp.getgrgid`` names: a directory that cannot be listed (sssd's default) names its members only there, and the
    folder counted as the owner's own group's again. Both count now."""
    import grp as grp_module

    def plant(own: int, pf: Any) -> None:
        real = grp_module.getgrgid(own)
        listed = grp_module.struct_group((real.gr_name, real.gr_passwd, own, [*real.gr_mem, "mallory"]))
        monkeypatch.setattr(grp_module, "getgrgid", lambda gid: listed if gid == own else real)
        monkeypatch.setattr(grp_module, "getgrall", lambda: [])  # a directory that cannot be listed

    _own_group_refused(tmp_path, monkeypatch, plant)


def _run_child(code: str, **kw: Any) -> Any:
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-c", code], timeout=120, **kw)


def test_dev_stdout_is_not_refused_for_a_name_another_user_made_like_its_deleted_file(tmp_path: Path) -> None:
    """Re-review R19: the walk of ``/dev/stdout`` went on past ``/proc/self/fd/1`` into the text of that link: for a
    standard output whose file was deleted (log rotation), ``/tmp/x.log (deleted)``, which another user had made (a
    pipe of theirs), and the output was refused. The walk stops at the descriptor; the output goes where it points."""
    import subprocess

    shared = _shared(tmp_path)
    log = shared / "job.log"
    theirs = shared / "job.log (deleted)"
    os.mkfifo(theirs, 0o666)
    _theirs(theirs, 0o666)
    code = (
        "import os, sys; from flytekitplugins.aios_audit.private_files import write_private; "
        f"os.unlink({str(log)!r}); write_private('/dev/stdout', 'proof'); print(os.fstat(1).st_size, file=sys.stderr)"
    )
    with log.open("wb") as f:
        res = _run_child(code, stdout=f, stderr=subprocess.PIPE)
    assert res.returncode == 0, res.stderr.decode()[-2000:]
    assert res.stderr.decode().split() == ["5"]


@pytest.mark.parametrize("fd", [1, 1500])
def test_a_non_blocking_standard_output_gets_the_whole_output(fd: int) -> None:
    """Re-review R19: written into the process's own descriptor, a standard output its caller made non-blocking took
    65,536 bytes of 200,000 and the rest was an error; the write waits for room now, as an opened ``/dev/stdout`` (a
    descriptor of its own, blocking) did. Re-review R20: that wait used ``select``, which takes no descriptor past
    1023: ``/dev/fd/1500`` got 65,536 bytes and an unexpected ``ValueError``."""
    import subprocess
    import sys
    import time

    name = "/dev/stdout" if fd == 1 else f"/dev/fd/{fd}"
    code = (
        f"import os; from flytekitplugins.aios_audit.private_files import write_private; os.dup2(1, {fd}); "
        f"os.set_blocking({fd}, False); write_private({name!r}, b'x' * 200_000)"
    )
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(3)  # the pipe fills while no one reads
    out, err = child.communicate(timeout=120)
    assert child.returncode == 0, err.decode()[-2000:]
    assert len(out) == 200_000


# ---- re-review R20 of the fixes above ------------------------------------------------------------------------------


def test_an_output_through_this_users_link_in_a_folder_others_may_write_is_refused(tmp_path: Path) -> None:
    """Re-review R20: a regular output had only the folder its links end in checked: in a 0777 folder holding this
    user's links ``prod.pem`` and ``staging.pem``, another user renamed ``staging.pem`` over ``prod.pem`` and
    ``prod``'s output replaced ``staging``'s file, reported written. The folder holding the link is checked too."""
    from flytekitplugins.aios_audit.private_files import write_private

    files = tmp_path / "files"
    files.mkdir(mode=0o700)
    drop = tmp_path / "drop"
    drop.mkdir()
    drop.chmod(0o777)
    for name in ("prod", "staging"):
        (files / f"{name}.pem").write_text(f"{name}'s key\n")
        (drop / f"{name}.pem").symlink_to(files / f"{name}.pem")
    os.replace(drop / "staging.pem", drop / "prod.pem")  # what the other user did
    with pytest.raises(UnsafeFile, match=re.escape(f"{drop} is a folder others may write without the sticky bit")):
        write_private(drop / "prod.pem", "prod's public key\n")
    assert (files / "staging.pem").read_text() == "staging's key\n"


@pytest.mark.parametrize("case", ["a shared primary group", "a group administrator"])
def test_a_group_others_may_take_is_not_the_owners_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    """Re-review R20: a primary group shared with users a directory does not list (Active Directory's "Domain
    Users") passed as the owner's own, and so did one whose ``/etc/gshadow`` entry names another user as its
    administrator (who may add themself, take the group with ``sg`` and leave again): in both, that user swapped
    this user's deployments in a 0770 folder above a key. The own group must be named as the user (the
    user-private-group scheme), and its administrators count as members."""
    import grp as grp_module

    def plant(own: int, pf: Any) -> None:
        real = grp_module.getgrgid(own)
        if case == "a shared primary group":
            shared = grp_module.struct_group(("domain users", real.gr_passwd, own, list(real.gr_mem)))
            by_number = grp_module.getgrgid
            monkeypatch.setattr(grp_module, "getgrgid", lambda gid: shared if gid == own else by_number(gid))
            monkeypatch.setattr(grp_module, "getgrall", lambda: [shared])
        else:
            gshadow = tmp_path / "gshadow"
            gshadow.write_text(f"{real.gr_name}:!:mallory:\n")
            monkeypatch.setattr(pf, "GSHADOW", gshadow, raising=False)

    _own_group_refused(tmp_path, monkeypatch, plant)


# ---- re-review R21 of the fixes above ------------------------------------------------------------------------------


def test_a_link_to_proc_in_a_folder_others_may_write_is_not_skipped(tmp_path: Path) -> None:
    """Re-review R21: R20 skipped the check of an output's folder when following its name reached ``/proc``, and so
    skipped everything above it too: this user's link ``fd -> /proc/self/fd`` in a 0777 folder was written through,
    and another user swapping their own links at ``fd`` (one to ``/proc/self/fd``, one to this user's other
    deployment's folder) had 541 of 3,000 outputs written into that deployment's pipe. Only a folder the walk itself
    reaches in ``/proc`` is the kernel's now."""
    from flytekitplugins.aios_audit.private_files import write_private

    with _drop_and_collector(tmp_path) as (drop, collector):
        (drop / "fd").symlink_to("/proc/self/fd")
        with pytest.raises(UnsafeFile, match=re.escape(f"{drop} is a folder others may write without the sticky")):
            write_private(drop / "fd" / str(collector), "the audit report")


def test_an_output_that_cannot_replace_the_name_is_named_by_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Re-review R21: where the rename over the name failed (another user's file in a sticky folder, for a user who
    is not root), the error named the temporary file beside it (``/tmp/.NAME.kj78bxhx.tmp``), not the output."""
    import flytekitplugins.aios_audit.private_files as pf

    out = _shared(tmp_path) / "report.json"

    def refused(src: Any, dst: Any) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(pf.os, "replace", refused)
    with pytest.raises(PermissionError) as caught:
        pf.write_private(out, "the audit report")
    assert caught.value.filename == str(out)
    assert not list(out.parent.glob(".report.json.*"))  # the temporary file is gone


# ---- re-review R22 of the fixes above ------------------------------------------------------------------------------


def _in_rootless_container(*args: str) -> str:
    """Run ``userns_stdout_child.py`` (a write inside an unprivileged user namespace with its own root, ``/dev`` and
    ``/proc``) with ``args`` after the root; its standard output (skipped where this host has no user namespaces)."""
    import subprocess
    import sys
    import tempfile

    # the container's root: a folder the namespace's user (the host's nobody) may reach, unlike pytest's 0700 ones
    root = Path(tempfile.mkdtemp(prefix="aios-userns-", dir="/tmp"))
    try:
        root.chmod(0o755)
        child = Path(__file__).with_name("userns_stdout_child.py")
        res = subprocess.run([sys.executable, str(child), str(root), *args], capture_output=True, timeout=120)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    if res.returncode == 77:
        pytest.skip("no user namespaces on this host")
    assert res.returncode == 0, res.stderr.decode()[-3000:]
    return res.stdout.decode()


def test_dev_stdout_is_written_in_a_rootless_container() -> None:
    """Re-reviews R20 and R22: in an unprivileged user namespace (rootless podman or docker, a pod with ``hostUsers:
    false``, ``unshare -r``) the kernel's ``/proc`` folders and its links ``/proc/self`` and ``/proc/thread-self``
    show as nobody's: ``--out /dev/stdout`` was refused there, first for ``/proc`` (R20), then, once folders of
    ``/proc`` were the kernel's, for ``/proc/self`` (R22). Both are the kernel's now."""
    names = ("/dev/stdout", "/dev/fd/1", "/proc/self/fd/1", "/proc/thread-self/fd/1")
    assert _in_rootless_container().splitlines() == [f"written to {n}" for n in names]


def test_dev_null_is_an_output_in_a_rootless_container() -> None:
    """A rootless container's ``/dev/null`` is the host's device bound into its ``/dev``, and shows as nobody's there:
    ``--out /dev/null`` was refused as "a device owned by uid 65534". The null device (character device 1:3) is the
    kernel's wherever its node is and whoever the node shows as owning it (a user namespace may make no device node),
    and nothing written into it can be read: it is written into. Any other device or pipe of another user's is still
    refused."""
    written = [f"written to {d}, owned by uid 65534 here" for d in ("/dev/null", "/dev/zero", "/dev/urandom")]
    assert _in_rootless_container("null").splitlines() == written  # (zero and urandom since re-review R25)


# ---- re-review R23 of the fixes above ------------------------------------------------------------------------------


def test_proc_is_recognized_without_ctypes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Re-review R23: ``ctypes`` was imported when ``/proc`` was first judged: a process that had changed its user or
    root since it imported the pack (or a Python without ``_ctypes``) failed every output with an unexpected
    ``ModuleNotFoundError``. It is imported with the module now, and without it the mount table decides."""
    import sys

    import flytekitplugins.aios_audit.private_files as pf

    monkeypatch.setitem(sys.modules, "ctypes", None)  # an import of it fails from here on
    monkeypatch.setattr(pf, "ctypes", None, raising=False)
    pf._proc_device.cache_clear()
    try:
        assert pf._proc_device() == os.lstat("/proc").st_dev
        assert not pf._is_procfs("/tmp")
    finally:
        monkeypatch.undo()
        pf._proc_device.cache_clear()


def test_proc_as_a_link_is_not_the_kernels(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Re-review R23: where ``/proc`` was a link to the process file system (an image made so), ``statfs`` followed
    it while the device taken was the link's own, the root file system's, and every folder on it (another user's 0777
    one too) passed as the kernel's. ``/proc`` must be the folder itself."""
    import flytekitplugins.aios_audit.private_files as pf

    link = tmp_path / "proc"
    link.symlink_to("/proc")
    as_link = os.lstat(link)
    real = os.lstat
    monkeypatch.setattr(pf.os, "lstat", lambda p, *a, **k: as_link if str(p) == "/proc" else real(p, *a, **k))
    pf._proc_device.cache_clear()
    try:
        assert pf._proc_device() is None
    finally:
        monkeypatch.undo()
        pf._proc_device.cache_clear()
    assert pf._proc_device() == os.lstat("/proc").st_dev


# ---- re-review R24 of the fixes above ------------------------------------------------------------------------------


def test_an_output_to_a_descriptor_not_passed_in_is_refused_and_the_store_is_untouched(
    aios_env: Path, tmp_path: Path
) -> None:
    """Re-review R24: ``--out /dev/fd/N`` for a number its caller did not pass (Python's ``subprocess`` and sudo close
    those above 2) named the command's own open file: ``aios audit checkpoint --out /dev/fd/6`` wrote the checkpoint
    over the SQLite audit store's database, exit 0, and the store no longer opened. Only a descriptor the process was
    started with is written into (the pack's own files are close-on-exec); one passed in still is."""
    import subprocess
    import sys

    from flytekitplugins.aios_audit import AuditEvent, audit_log

    for i in range(3):
        audit_log(get_settings()).append(AuditEvent(kind="task", actor=f"a{i}"))
    database = aios_env / "audit.db"
    before = database.read_bytes()[:16]
    aios = [sys.executable, "-c", "from flytekitplugins.aios_core.cli import cli; cli()"]
    for n in range(3, 13):  # whichever number the store, its -wal, -shm or lock files take in the child
        res = subprocess.run([*aios, "audit", "checkpoint", "--out", f"/dev/fd/{n}"], capture_output=True, timeout=300)
        assert res.returncode != 0, (n, res.stdout.decode()[-500:])
        assert b"Traceback" not in res.stderr, res.stderr.decode()[-2000:]
    assert database.read_bytes()[:16] == before == b"SQLite format 3\x00"
    res = subprocess.run([*aios, "audit", "verify"], capture_output=True, timeout=300)
    assert res.returncode == 0, res.stderr.decode()[-2000:]
    wanted = tmp_path / "cp.txt"
    fd = os.open(wanted, os.O_WRONLY | os.O_CREAT, 0o600)
    try:  # passed in: written there
        cmd = [*aios, "audit", "checkpoint", "--out", f"/dev/fd/{fd}"]
        res = subprocess.run(cmd, capture_output=True, timeout=300, pass_fds=(fd,))
    finally:
        os.close(fd)
    assert res.returncode == 0, res.stderr.decode()[-2000:]
    assert wanted.read_text().startswith("aios-audit/")


def test_an_out_option_never_asks_to_read_its_name() -> None:
    """Re-review R24: click's path type checks by default that a name which exists may be read: ``--out /dev/stdout``
    was refused ("File '/dev/stdout' is not readable") where standard output is a pipe or terminal the user may write
    but not read (one another user opened, after ``su`` or ``runuser`` to a service user), before the write that
    would have gone there. No output option of any command asks that."""
    import click

    def options(command: click.Command, path: str) -> Iterator[tuple[str, click.Parameter]]:
        for param in command.params:
            yield path, param
        if isinstance(command, click.Group):  # (its commands are loaded as they are asked for)
            ctx = click.Context(command)
            for name in command.list_commands(ctx):
                sub = command.get_command(ctx, name)
                if sub is not None:
                    yield from options(sub, f"{path} {name}")

    outs = [
        (p, o)
        for p, o in options(cli, "aios")
        if isinstance(o, click.Option) and "--out" in o.opts and isinstance(o.type, click.Path) and not o.type.dir_okay
    ]  # the outputs that are files (the demo's --out is a folder)
    assert len(outs) >= 6, outs  # checkpoint, prove, consistency, public-key, evidence export, lineage report
    for path, option in outs:
        assert isinstance(option.type, click.Path) and not option.type.readable, (path, option.opts)


def test_without_ctypes_a_plain_proc_folder_with_a_forged_mount_table_is_not_the_kernels() -> None:
    """Re-review R24: a Python without ``ctypes`` judged ``/proc`` by the mount table, read through whatever ``/proc``
    is: a plain folder there (an image made so) whose ``self`` led to a table saying the root file system was a
    process file system made every folder on it the kernel's again, as R22 had found, and another user's 0777 folder
    took the output. The table counts now only at a mount point whose ``self`` names this process."""
    assert _in_rootless_container("fakeproc").splitlines() == ["refused"]


# ---- re-review R25 of the fixes above ------------------------------------------------------------------------------


OWN_MOUNTS = """
import ctypes, os, sys
import flytekitplugins.aios_audit.private_files as pf
libc = ctypes.CDLL(None, use_errno=True)
if libc.unshare(0x00020000) != 0:  # CLONE_NEWNS: the mounts below are this process's alone
    sys.exit(77)
assert libc.mount(b"none", b"/", None, 0x4000 | 0x40000, None) == 0  # MS_REC | MS_PRIVATE
folder = sys.argv[1]
"""
"""The start of a child script (run as root) with a mount namespace of its own, its folder ``folder``."""

STORE_AND_PROC = """
os.mkdir(folder + "/P", 0o755)
assert libc.mount(b"proc", (folder + "/P").encode(), b"proc", 0, None) == 0, ctypes.get_errno()
with open(folder + "/audit.db", "w") as f:
    f.write("the audit store")
fd = os.open(folder + "/audit.db", os.O_RDONLY)
"""
"""Then a second process file system at ``folder/P`` and an "audit store" open as ``fd``."""

SECOND_PROC = (
    OWN_MOUNTS
    + STORE_AND_PROC
    + """
if sys.argv[2:] == ["noctypes"]:  # a Python without _ctypes: the mount table decides
    pf.ctypes = None
try:
    pf.write_private(f"{folder}/P/self/fd/{fd}", "a checkpoint")
except pf.UnsafeFile as e:
    print("refused:", e, file=sys.stderr)
with open(folder + "/audit.db") as f:
    print(f.read())
"""
)


@pytest.mark.skipif(os.geteuid() != 0, reason="mounts a second process file system (root, in a mount namespace)")
def test_a_descriptor_named_through_a_second_process_file_system_is_refused(tmp_path: Path) -> None:
    """Re-review R25: the walk of an output's links stopped at a link of ``/proc``'s own device only: through a
    second process file system (the host's ``/proc`` bound at ``/host/proc``, as monitoring agents run, root's),
    ``/host/proc/self/fd/6`` was followed by its text to the file descriptor 6 had open, the audit store's database,
    and the checkpoint replaced it. The walk stops at a link of any process file system, and one that is not this
    process's own descriptor is refused (in a rootless container too, where that mount shows as nobody's)."""
    import subprocess
    import sys

    for mode in ("ctypes", "noctypes"):  # (without ctypes since re-review R26: the mount table, by device)
        folder = tmp_path / mode
        folder.mkdir()
        cmd = [sys.executable, "-c", SECOND_PROC, str(folder), mode]
        res = subprocess.run(cmd, capture_output=True, timeout=120)
        if res.returncode == 77:
            pytest.skip("no mount namespaces here")
        assert res.returncode == 0, res.stderr.decode()[-2000:]
        assert res.stdout.decode().splitlines() == ["the audit store"], mode
        assert "a link of a process file system" in res.stderr.decode(), mode
    assert _in_rootless_container("proc2").splitlines() == ["refused", "the audit store"]


def test_without_ctypes_proc_counts_where_its_self_is_another_pid_namespaces(monkeypatch: pytest.MonkeyPatch) -> None:
    """Re-review R25: without ``ctypes``, R24's check required ``/proc/self`` to read as ``os.getpid()``; where
    ``/proc`` is the parent pid namespace's (``bwrap``, ``unshare -p`` without a new one) the two differ, and
    ``--out /dev/stdout`` was refused. The check is now that ``/proc/self/fd`` shows this process its own pipe."""
    import flytekitplugins.aios_audit.private_files as pf

    monkeypatch.setattr(pf, "ctypes", None)
    monkeypatch.setattr(pf.os, "getpid", lambda: 1)  # this process's id in its own pid namespace
    pf._proc_device.cache_clear()
    try:
        assert pf._proc_device() == os.lstat("/proc").st_dev
    finally:
        monkeypatch.undo()
        pf._proc_device.cache_clear()


# ---- re-review R26 of the fixes above ------------------------------------------------------------------------------

SHARED_MOUNT = (
    OWN_MOUNTS
    + """
pf.ctypes = None  # a Python without _ctypes: the mount table decides
mt = folder + "/shm"
os.mkdir(mt)
assert libc.mount(b"tmpfs", mt.encode(), b"tmpfs", 0, b"mode=1777") == 0, ctypes.get_errno()
dev = os.stat(mt).st_dev
os.mkdir(mt + "/self")  # another user's, in a shared mount point: this process's own descriptors, a forged table
os.symlink("/proc/self/fd", mt + "/self/fd")
with open(mt + "/self/mountinfo", "w") as f:
    f.write(f"1 0 {os.major(dev)}:{os.minor(dev)} / {mt} rw - proc proc rw\\n")
os.mkdir(folder + "/private", 0o700)
os.symlink(folder + "/private/out.txt", mt + "/out")  # this user's link, in the shared folder
pf.write_private(mt + "/out", "the report")
print(open(folder + "/private/out.txt").read())
"""
)


@pytest.mark.skipif(os.geteuid() != 0, reason="mounts a tmpfs (root, in a mount namespace)")
def test_without_ctypes_a_shared_mount_point_is_not_made_a_process_file_system(tmp_path: Path) -> None:
    """Re-review R26: without ``ctypes``, R25 judged a folder by the ``self`` and the mount table read through it:
    in a shared mount point (``/dev/shm``) another user's ``self/fd -> /proc/self/fd`` and forged ``self/mountinfo``
    made it a process file system, and this user's link there was refused (with a pipe there, the command hung; with
    ``/dev/zero``, it read until memory ran out). A folder counts by its device in ``/proc``'s own mount table."""
    import subprocess
    import sys

    res = subprocess.run([sys.executable, "-c", SHARED_MOUNT, str(tmp_path)], capture_output=True, timeout=120)
    if res.returncode == 77:
        pytest.skip("no mount namespaces here")
    assert res.returncode == 0, res.stderr.decode()[-2000:]
    assert res.stdout.decode().splitlines() == ["the report"]


TO_PARENT = """
import subprocess, sys
child = "import os; from flytekitplugins.aios_audit.private_files import write_private; "
child += "write_private(f'/proc/{os.getppid()}/fd/1', 'a line for the log\\\\n')"
res = subprocess.run([sys.executable, "-c", child], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
sys.stderr.write(res.stderr.decode())
"""


def test_a_parents_pipe_named_through_proc_is_written_and_another_processs_is_not(tmp_path: Path) -> None:
    """Re-review R26: R25's fix refused every name that stops at a link of a process file system other than this
    process's own descriptor, and ``--out /proc/1/fd/1`` (a job in a container writing to its main process's
    standard output, what ``docker logs`` shows) or its parent's standard output was refused. Such a link to a pipe,
    socket or device is written as any such output is; one to a regular file is still refused, never replaced.
    Re-review R28: only PID 1's and the processes' this command runs under: a child of root's whose standard output
    was relayed to another user (inetd's, a cron job's mail) took root's report, its ids all root's."""
    import subprocess
    import sys

    from flytekitplugins.aios_audit.private_files import write_private

    res = subprocess.run([sys.executable, "-c", TO_PARENT], capture_output=True, timeout=120)
    assert res.stdout == b"a line for the log\n", res.stderr.decode()[-2000:]  # the parent's pipe
    log = tmp_path / "job.log"
    with log.open("w") as f:  # the parent's standard output a file: refused, not replaced
        res = subprocess.run([sys.executable, "-c", TO_PARENT], stdout=f, stderr=subprocess.PIPE, timeout=120)
    assert "a link of a process file system" in res.stderr.decode() and "to a file" in res.stderr.decode()
    assert log.read_text() == ""
    relay = subprocess.Popen(["sleep", "60"], stdout=subprocess.PIPE)  # root's child, read by someone else
    try:
        with pytest.raises(UnsafeFile, match="neither PID 1 nor one this command runs under"):
            write_private(f"/proc/{relay.pid}/fd/1", "root's audit report")
    finally:
        relay.kill()
        relay.wait()
    assert relay.stdout is not None and relay.stdout.read() == b""


def test_a_locked_group_password_is_no_password(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Re-review R26: ``/etc/gshadow``'s ``!*`` (systemd-sysusers writes it) and a locked hash ``!$6$...`` were taken
    for group passwords, and run as root the owner's own group lost its allowance. A field beginning ``!`` or ``*``
    is locked: no password matches it."""
    import grp as grp_module

    import flytekitplugins.aios_audit.private_files as pf

    uid, own = os.geteuid(), own_private_group()
    above = tmp_path / "above"
    above.mkdir()
    os.chown(above, uid, own)
    above.chmod(0o770)
    gshadow = tmp_path / "gshadow"
    monkeypatch.setattr(pf, "GSHADOW", gshadow)
    name = grp_module.getgrgid(own).gr_name
    for field in ("!*", "!$6$salt$lockedhash", "*"):
        gshadow.write_text(f"{name}:{field}::\n")
        pf._private_group.cache_clear()
        assert pf.private_dir(above / "state") == above / "state", field
    gshadow.write_text(f"{name}:$6$salt$hash::\n")  # a password: anyone who knows it takes the group
    pf._private_group.cache_clear()
    try:
        with pytest.raises(UnsafeFile):
            pf.private_dir(above / "state2")
    finally:
        pf._private_group.cache_clear()


# ---- re-review R27 of the fixes above ------------------------------------------------------------------------------

NO_PROC = (
    OWN_MOUNTS
    + STORE_AND_PROC
    + """
assert libc.umount2(b"/proc", 2) == 0, ctypes.get_errno()  # MNT_DETACH: no /proc here, a process file system at P
pf.ctypes = None  # a Python without _ctypes
pf._proc_device.cache_clear()
os.symlink(f"{folder}/P/self/fd", folder + "/fds")  # a link of this user's to that folder (re-review R30)
for name in (f"{folder}/P/self/fd/{fd}", f"{folder}/fds/{fd}"):
    try:
        pf.write_private(name, "a checkpoint")
    except pf.UnsafeFile as e:
        print("refused:", e, file=sys.stderr)
    with open(folder + "/audit.db") as f:
        print(f.read())
import mmap  # a file the process maps (as SQLite maps its -shm), named through map_files (re-review R29)
with open(folder + "/audit.db-shm", "wb") as f:
    f.write(b"the shared memory".ljust(4096, b"."))
shm = open(folder + "/audit.db-shm", "r+b")
mapped = mmap.mmap(shm.fileno(), 4096)
with open(f"{folder}/P/self/maps") as f:
    (span,) = [line.split()[0] for line in f if line.rstrip().endswith("/audit.db-shm")]
try:
    pf.write_private(f"{folder}/P/self/map_files/{span}", "a checkpoint")
except pf.UnsafeFile as e:
    print("refused:", e, file=sys.stderr)
print(bytes(mapped[:17]).decode(), os.stat(folder + "/audit.db-shm").st_ino == os.fstat(shm.fileno()).st_ino)
"""
)


@pytest.mark.skipif(os.geteuid() != 0, reason="unmounts /proc and mounts another (root, in a mount namespace)")
def test_without_ctypes_or_proc_a_descriptor_link_elsewhere_is_not_followed(tmp_path: Path) -> None:
    """Re-review R27: without ``ctypes`` and with no ``/proc`` mounted (a chroot, a build root), a process file
    system mounted elsewhere was judged by nothing, and ``--out <it>/self/fd/6`` was followed by its text to the
    audit store's database, which the checkpoint replaced. There a link whose mode is not 0777 (a descriptor's shows
    its open mode) is taken for the kernel's, and one to a file is refused."""
    import subprocess
    import sys

    res = subprocess.run([sys.executable, "-c", NO_PROC, str(tmp_path)], capture_output=True, timeout=120)
    if res.returncode == 77:
        pytest.skip("no mount namespaces here")
    assert res.returncode == 0, res.stderr.decode()[-2000:]
    assert res.stdout.decode().splitlines() == ["the audit store", "the audit store", "the shared memory True"]
    assert res.stderr.decode().count("refused: ") == 3


@pytest.mark.skipif(os.geteuid() != 0, reason="runs a process as another user (root)")
def test_a_descriptor_of_another_users_process_is_refused_even_where_it_looks_like_roots() -> None:
    """Re-review R27: a non-dumpable process shows its descriptor links as root's; another user's such process whose
    standard output was a pipe root had made (a cron job's, ``su -c``) took root's report through ``--out
    /proc/<its pid>/fd/1``, every owner check passing. Another process's descriptor is written only where all of
    that process's user ids are this user's or root's (read through the process folder the descriptor is opened
    through)."""
    import signal
    import time

    from flytekitplugins.aios_audit.private_files import write_private

    read_end, write_end = os.pipe()  # root's pipe, which the other user's process writes to and they read
    ready_read, ready_write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the other user's process: root's fork, its ids changed (which makes it non-dumpable), no exec
        try:
            os.dup2(write_end, 1)
            os.setgroups([])
            os.setgid(OTHER)
            os.setuid(OTHER)
            os.write(ready_write, b"r")
            time.sleep(60)
        finally:
            os._exit(0)
    os.close(write_end)
    try:
        assert os.read(ready_read, 1) == b"r"
        with open(f"/proc/{pid}/status") as f:  # its descriptor links show as root's
            assert [line.split()[1:] for line in f if line.startswith("Uid:")] == [[str(OTHER)] * 4]
        assert os.lstat(f"/proc/{pid}/fd/1").st_uid == 0
        with pytest.raises(UnsafeFile, match="a descriptor of another user's process"):
            write_private(f"/proc/{pid}/fd/1", "root's audit report")
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(ready_read)
        os.close(ready_write)
    os.set_blocking(read_end, False)
    try:
        assert os.read(read_end, 100) == b""  # nothing reached them (the pipe is closed, and empty)
    finally:
        os.close(read_end)


# ---- re-review R28 of the fixes above ------------------------------------------------------------------------------


def test_this_processs_own_descriptor_through_another_threads_folder_is_not_written() -> None:
    """Re-review R28: this process's own descriptor named through another thread's folder
    (``/proc/self/task/<tid>/fd/N``) went the way of another process's, past the check that a descriptor was passed
    in, and a close-on-exec pipe of its own was written. It is this process's descriptor, held to that check
    (re-review R29: refused as another process's, the standard output passed in was refused too)."""
    import threading

    from flytekitplugins.aios_audit.private_files import write_private

    read_end, write_end = os.pipe()  # close-on-exec: the process's own, not passed in
    started, done = threading.Event(), threading.Event()
    tid: list[int] = []

    def other_thread() -> None:
        tid.append(threading.get_native_id())
        started.set()
        done.wait(30)

    thread = threading.Thread(target=other_thread, daemon=True)
    thread.start()
    try:
        assert started.wait(30)
        with pytest.raises(UnsafeFile, match="a file this process opened itself"):  # (the check R24 added)
            write_private(f"/proc/self/task/{tid[0]}/fd/{write_end}", "a checkpoint")
        os.set_blocking(read_end, False)
        with pytest.raises(BlockingIOError):  # nothing was written into it
            os.read(read_end, 100)
    finally:
        done.set()
        thread.join(30)
        os.close(read_end)
        os.close(write_end)


# ---- re-review R29 of the fixes above ------------------------------------------------------------------------------

OWN_STDOUT_VIA_THREAD = """
import threading
from flytekitplugins.aios_audit.private_files import write_private
tid, started, done = [], threading.Event(), threading.Event()
def other():
    tid.append(threading.get_native_id())
    started.set()
    done.wait(30)
thread = threading.Thread(target=other, daemon=True)
thread.start()
started.wait(30)
write_private(f"/proc/self/task/{tid[0]}/fd/1", "written through another thread's folder")
done.set()
"""


def test_this_processs_standard_output_through_another_threads_folder_is_written() -> None:
    """Re-review R29: R28's fix took this process's own descriptor named through another thread's folder
    (``/proc/self/task/<tid>/fd/1``) for another process's, and refused the standard output it was started with.
    It is this process's descriptor: written where it was passed in, refused where it was not."""
    import subprocess
    import sys

    res = subprocess.run([sys.executable, "-c", OWN_STDOUT_VIA_THREAD], capture_output=True, timeout=120)
    assert res.returncode == 0, res.stderr.decode()[-2000:]
    assert res.stdout == b"written through another thread's folder"
