"""State folders and files another local user made first, or may write, are refused, never used as found (review R9).

The attacker is another user of the host (a "local shell"). The cluster profile keeps its state in ``/tmp/aios``,
which any user can create first, and a step that made the state folder under umask 0 left it 0777. The review
reproduced: another user's 0666 ``system_of_record.db`` used as found (they read and changed posted payments, F4); a
planted ``keys/approvals-ed25519.pem`` signing the pack's approval decisions (F3); links planted at
``write_private``'s predictable temporary name overwriting a file of the pack's user (F7); and ``aios evidence
export`` writing into another user's file (kept theirs and readable) or through their link (F6). Files and folders
of "another user" are made here with ``os.chown`` to a spare uid, so these tests need root (as CI runs them).
"""

from __future__ import annotations

import grp
import logging
import os
import pwd
import re
import sqlite3
import stat
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from flytekitplugins.aios_audit.private_files import UnsafeFile, private_dir, touch_private, write_private
from flytekitplugins.aios_core.cli import cli
from flytekitplugins.aios_core.errors import AiosError, ConfigError
from flytekitplugins.aios_core.keys import ed25519_pem
from flytekitplugins.aios_core.settings import get_settings

OTHER = 65534  # the spare uid standing for another local user (nobody)
ROW = {
    "action_key": "act-1", "doc_digest": "sha256:aa", "decision_digest": "sha256:bb", "action": "post_payment",
    "doc_type": "invoice", "amount": 9400.0, "currency": "EUR", "request_id": "", "posted_at": "",
}  # fmt: skip


@pytest.fixture(autouse=True)
def _root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to make files and folders owned by another user")


@pytest.fixture
def umask0() -> Iterator[None]:
    old = os.umask(0)
    yield
    os.umask(old)


def _theirs(p: Path, mode: int) -> Path:
    """``p`` made another user's, with ``mode`` (a link: the link itself)."""
    if p.is_symlink():
        os.lchown(p, OTHER, OTHER)
    else:
        p.chmod(mode)
        os.chown(p, OTHER, OTHER)
    return p


def _shared(tmp_path: Path) -> Path:
    """A folder like /tmp: root's, 1777."""
    shared = tmp_path / "tmp"
    shared.mkdir(exist_ok=True)
    shared.chmod(0o1777)
    return shared


def own_private_group() -> int:
    """This user's primary group, where no one else is in it (the user-private-group scheme); the test is skipped
    otherwise."""
    uid = os.geteuid()
    own = pwd.getpwuid(uid).pw_gid
    name = pwd.getpwuid(uid).pw_name
    if (
        grp.getgrgid(own).gr_name != name
        or any(m for m in grp.getgrgid(own).gr_mem if m != name)
        or any(u.pw_gid == own and u.pw_uid != uid for u in pwd.getpwall())
    ):
        pytest.skip("this user's primary group is not a user-private group here (other members, or another name)")
    return own


def _mode(p: Path) -> int:
    return stat.S_IMODE(os.lstat(p).st_mode)


# ---- private_dir -----------------------------------------------------------------------------------------------


def test_a_state_folder_another_user_made_first_is_refused(tmp_path: Path) -> None:
    """``/tmp/aios`` created by another user before the pack: refused, naming it and what to do."""
    state = _shared(tmp_path) / "aios"
    state.mkdir()
    _theirs(state, 0o755)
    with pytest.raises(UnsafeFile) as err:
        private_dir(state / "keys")
    msg = str(err.value)
    assert f"{state} is a folder owned by uid {OTHER}" in msg and "chown it" in msg and "AIOS_STATE_DIR" in msg, msg
    assert isinstance(err.value, AiosError) and "\n" not in msg
    assert not (state / "keys").exists()  # nothing made in their folder


@pytest.mark.parametrize("mode", [0o777, 0o770, 0o1777, 0o722], ids=oct)
def test_a_state_folder_others_may_write_is_refused(tmp_path: Path, mode: int) -> None:
    """The folder itself open to others' writes (made under umask 0 by another step): refused, even sticky."""
    state = tmp_path / "state"
    state.mkdir()
    state.chmod(mode)
    os.chown(state, os.geteuid(), OTHER)  # a group of others (not this user's own group: see the test below)
    said = f"{state} is a folder others may write (mode {mode:04o}); chmod 700"
    if mode & 0o1000:  # sticky, as /tmp is: "chmod 700" would break a shared folder for its other users (R15)
        said = f"{state} is a folder others may write (mode {mode:04o}, sticky: a shared folder); keep the file in a "
    with pytest.raises(UnsafeFile, match=re.escape(said)):
        private_dir(state)
    assert _mode(state) == mode  # not changed behind the operator's back


def test_a_group_of_this_user_alone_may_write_the_folders_above_the_state(tmp_path: Path) -> None:
    """Under umask 002 (the user-private-group scheme: RHEL's and Fedora's default) a user's checkout is 0775:
    group-writable, by a group only that user is in (its primary group, no other member; root's group here). A
    folder above the state folder may be so (what a group member could put in place of the state folder would be
    theirs, and refused); the state folder itself, and its files, may not: an ACL entry or a member NSS does not list
    made such a folder writable by another user while it looked private (re-review R10a)."""
    uid, own = os.geteuid(), own_private_group()
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    checkout.chmod(0o775)
    os.chown(checkout, uid, own)
    assert private_dir(checkout / ".aios" / "keys") == checkout / ".aios" / "keys"
    (checkout / ".aios").chmod(0o770)
    with pytest.raises(UnsafeFile, match=re.escape(f"{checkout / '.aios'} is a folder others may write (mode 0770)")):
        private_dir(checkout / ".aios")
    (checkout / ".aios").chmod(0o700)
    store = checkout / ".aios" / "audit.db"
    store.write_text("")
    store.chmod(0o664)
    with pytest.raises(UnsafeFile, match="writable by other users"):
        touch_private(store)
    os.chown(checkout, uid, OTHER)  # a group of others above it: refused
    with pytest.raises(UnsafeFile, match=rf"{checkout} is a folder others may write without the sticky bit"):
        private_dir(checkout / ".aios")


def test_another_users_file_is_refused_even_where_this_process_cannot_write_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whether or not this process could write it, another user's file is not used (re-reviews R10a and R10b: an
    earlier version read such a file "as a reader's", and a cache another user left answered for the models). An
    auditor verifying another user's trail works on a copy of their own. (A second user cannot reach a test's private
    folder: this process is refused write access instead.)"""
    import flytekitplugins.aios_audit.private_files as pf

    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    p = state / "audit.db"
    p.write_text("")
    _theirs(p, 0o644)
    real = os.access
    monkeypatch.setattr(pf.os, "access", lambda path, mode, **kw: False if mode == os.W_OK else real(path, mode, **kw))
    with pytest.raises(UnsafeFile, match=f"owned by uid {OTHER}"):
        touch_private(p)


def test_a_writable_parent_needs_the_sticky_bit_and_an_owner_of_ours(tmp_path: Path) -> None:
    """An ancestor others may write is what /tmp is only with the sticky bit and root (or us) as owner."""
    parent = tmp_path / "parent"
    parent.mkdir()
    parent.chmod(0o1777)
    assert private_dir(parent / "state" / "keys") == parent / "state" / "keys"  # like /tmp/aios/keys
    assert _mode(parent / "state") == 0o700 and _mode(parent / "state" / "keys") == 0o700
    parent.chmod(0o777)  # no sticky bit: others may rename the state folder away and put theirs in its place
    with pytest.raises(UnsafeFile, match=rf"{parent} is a folder others may write without the sticky bit"):
        private_dir(parent / "state")
    parent.chmod(0o1777)
    os.chown(parent, OTHER, OTHER)  # sticky, but its owner may still remove what is in it
    with pytest.raises(UnsafeFile, match=rf"{parent} is a folder owned by uid {OTHER}"):
        private_dir(parent / "state")


def test_a_file_on_the_way_is_not_a_folder(tmp_path: Path) -> None:
    (tmp_path / "state").write_text("")
    with pytest.raises(UnsafeFile, match=rf"{tmp_path / 'state'} is not a folder; move it away"):
        private_dir(tmp_path / "state" / "keys")


def test_links_to_folders_are_followed_only_when_ours_and_to_a_folder_that_passes(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    ours = tmp_path / "ours"
    ours.symlink_to(real)
    private_dir(ours / "state")  # our link to our folder: fine, and the folder made where it leads
    assert _mode(real / "state") == 0o700
    planted = _shared(tmp_path) / "aios"
    planted.symlink_to(real)
    _theirs(planted, 0)  # another user's link, to a folder of ours: they chose where the state goes
    with pytest.raises(UnsafeFile, match=rf"{planted} is a symbolic link owned by uid {OTHER}"):
        private_dir(planted / "keys")
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    _theirs(theirs, 0o755)
    (tmp_path / "to-theirs").symlink_to(theirs)  # our link, to another user's folder
    with pytest.raises(UnsafeFile, match=rf"{theirs} is a folder owned by uid {OTHER}"):
        private_dir(tmp_path / "to-theirs" / "state")


def test_missing_folders_are_still_made_0700_whatever_the_umask(tmp_path: Path, umask0: None) -> None:
    private_dir(tmp_path / "a" / "b")
    assert _mode(tmp_path / "a") == 0o700 and _mode(tmp_path / "a" / "b") == 0o700
    private_dir(tmp_path / "a" / "b")  # existing and ours: used as it is


# ---- touch_private: the system of record (F4) ------------------------------------------------------------------


def _planted_sor(folder: Path) -> Path:
    """Another user's SQLite file with a table of theirs, 0666, where the pack's system of record goes."""
    import sqlite3

    db = folder / "system_of_record.db"
    with sqlite3.connect(db) as c:
        c.execute("CREATE TABLE planted (x)")
    c.close()
    return _theirs(db, 0o666)


def test_another_users_system_of_record_file_is_refused_and_nothing_is_posted(tmp_path: Path) -> None:
    """F4 as reproduced: the cluster profile's /tmp/aios made by another user, with their 0666 database in it."""
    from flytekitplugins.aios_connectors.system_of_record import post_rows

    state = _shared(tmp_path) / "aios"
    state.mkdir()
    db = _planted_sor(state)
    _theirs(state, 0o777)
    with pytest.raises(UnsafeFile, match=rf"{state} is a folder owned by uid {OTHER}"):
        post_rows(f"sqlite:///{db}", "document_actions", [ROW])
    os.chown(state, 0, 0)  # the folder ours (root's, 0700): their file in it is still theirs
    state.chmod(0o700)
    with pytest.raises(UnsafeFile) as err:
        post_rows(f"sqlite:///{db}", "document_actions", [ROW])
    assert f"{db} is owned by uid {OTHER}, not by this process's user (uid 0) or root; nothing was" in str(err.value)
    import sqlite3

    with sqlite3.connect(db) as c:  # nothing was written to their file
        assert [r[0] for r in c.execute("SELECT name FROM sqlite_master")] == ["planted"]
    c.close()


@pytest.mark.parametrize("plant", ["theirs 0600", "ours 0666", "ours 0620", "a link", "a named pipe"])
def test_touch_private_refuses_a_file_it_did_not_make_private(tmp_path: Path, plant: str) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    p = state / "edges.db"
    if plant == "theirs 0600":
        p.write_text("")
        _theirs(p, 0o600)
        reason = f"owned by uid {OTHER}"
    elif plant.startswith("ours"):
        mode = int(plant.split()[1], 8)
        p.write_text("")
        p.chmod(mode)
        os.chown(p, os.geteuid(), OTHER)  # a group of others (not this user's own group: see the test below)
        reason = f"writable by other users (mode {mode:04o}: they may have changed it)"
    elif plant == "a link":
        (tmp_path / "elsewhere").write_text("")
        p.symlink_to(tmp_path / "elsewhere")
        reason = "a symbolic link"
    else:
        os.mkfifo(p, 0o600)
        reason = "not a regular file"
    with pytest.raises(UnsafeFile, match=re.escape(f"{p} is {reason}")):
        touch_private(p)


def test_touch_private_keeps_its_own_file(tmp_path: Path, umask0: None) -> None:
    """Its own file, and one others may only read (a trail on a read-only mount, 0444), are used as they are."""
    p = touch_private(tmp_path / "state" / "system_of_record.db")
    assert _mode(p) == 0o600 and _mode(p.parent) == 0o700
    p.write_text("kept")
    assert touch_private(p).read_text() == "kept"
    p.chmod(0o444)
    assert touch_private(p).read_text() == "kept" and _mode(p) == 0o444


# ---- write_private (F7) --------------------------------------------------------------------------------------


def test_a_link_at_the_old_temporary_name_is_never_followed(tmp_path: Path) -> None:
    """F7: links planted at ``.NAME.tmp<pid>`` (the pids around the pack's) truncated and overwrote the pack user's
    file they named, and the link was renamed to NAME. The temporary name is unpredictable now, made O_EXCL."""
    victim = tmp_path / "victim" / "keep.txt"
    victim.parent.mkdir(mode=0o700)
    victim.write_text("the pack user's own file\n")
    shared = _shared(tmp_path)
    for pid in range(os.getpid() - 5, os.getpid() + 5):
        (shared / f".pub.pem.tmp{pid}").symlink_to(victim)
        _theirs(shared / f".pub.pem.tmp{pid}", 0)
    write_private(shared / "pub.pem", "-----BEGIN PUBLIC KEY-----\n")
    assert victim.read_text() == "the pack user's own file\n"
    out = shared / "pub.pem"
    assert not out.is_symlink() and out.read_text() == "-----BEGIN PUBLIC KEY-----\n" and _mode(out) == 0o600
    assert sorted(p.name for p in shared.iterdir() if not p.is_symlink()) == ["pub.pem"]  # no temporary file left


def test_another_users_link_or_pipe_at_the_name_is_refused(tmp_path: Path) -> None:
    """A link of theirs would choose which file of ours is overwritten; a pipe of theirs would read what we write."""
    victim = tmp_path / "victim.pem"
    victim.write_text("precious")
    victim.chmod(0o600)
    shared = _shared(tmp_path)
    link = shared / "cp.json"
    link.symlink_to(victim)
    _theirs(link, 0)
    with pytest.raises(UnsafeFile, match=rf"{link} is a symbolic link owned by uid {OTHER}.*; nothing was written"):
        write_private(link, "checkpoint")
    assert victim.read_text() == "precious"
    fifo = shared / "proof.json"
    os.mkfifo(fifo, 0o666)
    _theirs(fifo, 0o666)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # their reader: the old code wrote into it at once
    try:
        with pytest.raises(UnsafeFile, match=rf"{fifo} is a named pipe owned by uid {OTHER}"):
            write_private(fifo, "proof")
        assert os.read(reader, 100) == b""  # nothing written (no writer: end of file)
    finally:
        os.close(reader)


def test_write_private_replaces_another_users_file_and_writes_our_own_links_and_pipes(tmp_path: Path) -> None:
    """What still holds: a regular file at the name is replaced (theirs too: the rename), and our links are followed."""
    shared = _shared(tmp_path)
    planted = shared / "cp.json"
    planted.write_text("")
    _theirs(planted, 0o666)
    held = os.open(planted, os.O_RDONLY)  # a descriptor its maker kept
    try:
        write_private(planted, "checkpoint")
        assert os.read(held, 100) == b""
    finally:
        os.close(held)
    st = os.lstat(planted)
    assert (st.st_uid, _mode(planted), planted.read_text()) == (0, 0o600, "checkpoint")
    target = tmp_path / "target.json"
    (tmp_path / "ours.json").symlink_to(target)
    write_private(tmp_path / "ours.json", "via our link")
    assert target.read_text() == "via our link" and (tmp_path / "ours.json").is_symlink()


# ---- keys (F3) ----------------------------------------------------------------------------------------------


def _pem() -> bytes:
    return Ed25519PrivateKey.generate().private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())


def _keys(tmp_path: Path) -> Path:
    keys = tmp_path / "state" / "keys"
    keys.mkdir(parents=True, mode=0o700)
    return keys


def test_a_key_file_another_user_planted_is_refused(tmp_path: Path) -> None:
    key = _keys(tmp_path) / "approvals-ed25519.pem"
    key.write_bytes(_pem())
    _theirs(key, 0o600)
    with pytest.raises(ConfigError) as err:
        ed25519_pem(f"file:{key}", what="approvals signing key")
    msg = str(err.value)
    assert f"refusing the approvals signing key file {key}: it is owned by uid {OTHER}" in msg, msg
    assert "nothing was signed or verified with it" in msg and "chmod 600" in msg and "\n" not in msg
    assert b"PRIVATE" not in msg.encode()


@pytest.mark.parametrize("plant", ["their link", "our link to their file", "writable by others", "a named pipe"])
def test_a_key_file_is_read_only_when_no_other_user_chose_it(tmp_path: Path, plant: str) -> None:
    keys = _keys(tmp_path)
    key = keys / "checkpoint-ed25519.pem"
    elsewhere = tmp_path / "their.pem"
    elsewhere.write_bytes(_pem())
    elsewhere.chmod(0o600)
    if plant == "their link":  # to a key file of ours: they chose which of our keys signs
        key.symlink_to(elsewhere)
        _theirs(key, 0)
        reason = f"{key} is a symbolic link owned by uid {OTHER}"
    elif plant == "our link to their file":
        _theirs(elsewhere, 0o600)
        key.symlink_to(elsewhere)
        reason = f"the file it links to, {elsewhere}, is owned by uid {OTHER}"
    elif plant == "writable by others":
        key.write_bytes(_pem())
        key.chmod(0o666)
        reason = r"it is writable by other users \(mode 0666: they may have changed it\)"
    else:
        os.mkfifo(key, 0o600)  # the old code waited on it for ever
        reason = "it is not a regular file"
    with pytest.raises(ConfigError, match=rf"refusing the signing key file {key}: {reason}"):
        ed25519_pem(f"file:{key}", what="signing key")


@pytest.mark.parametrize(
    "name", ["/dev/fd/{fd}", "/proc/self/fd/{fd}", "a link of ours to /dev/fd/{fd}", "a link of ours to /dev//fd/{fd}"]
)
def test_a_key_named_through_a_descriptor_is_refused_saying_so(tmp_path: Path, name: str) -> None:
    """A key file named through a process's open descriptor (``file:/dev/fd/3`` with ``3<key.pem``, ``/dev/stdin``)
    is refused, as it was, but the refusal said "a symbolic link put there since it was checked", a race that never
    happened. It names the descriptor now, and what to use instead."""
    key = _keys(tmp_path) / "checkpoint-ed25519.pem"
    key.write_bytes(_pem())
    key.chmod(0o600)
    fd = os.open(key, os.O_RDONLY)
    try:
        spec = name.format(fd=fd)
        if spec.startswith("a link"):  # (its text as written: /dev//fd/N too, re-review R25)
            link = tmp_path / "state" / "keys" / "via-fd.pem"
            link.symlink_to(spec.removeprefix("a link of ours to "))
            spec = str(link)
        with pytest.raises(ConfigError) as err:
            ed25519_pem(f"file:{spec}", what="signing key")
    finally:
        os.close(fd)
    msg = str(err.value)
    assert f"refusing the signing key file {spec}: it names a process's open descriptor" in msg, msg
    assert "file:PATH" in msg and "env:VAR" in msg and "since it was checked" not in msg


def test_a_trusted_checkpoint_key_another_user_planted_is_not_trusted(tmp_path: Path) -> None:
    """The local profile trusts the key in the state folder (``trusted_checkpoint_keys``): one another user planted
    there was trusted by ``aios audit verify --checkpoint``. A configured key file is read as a signing key is; a
    file named with ``--public-key`` is the verifier's own choice and is read as it is."""
    from cryptography.hazmat.primitives.serialization import PublicFormat

    from flytekitplugins.aios_audit.trust import TrustedKeys

    key = _keys(tmp_path) / "checkpoint-ed25519.pem"
    public = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    key.write_bytes(public)
    _theirs(key, 0o644)
    with pytest.raises(ConfigError, match=rf"refusing the trusted checkpoint key file {key}: it is owned by uid"):
        TrustedKeys.from_specs([f"file:{key}"], "trusted_checkpoint_keys of profile local")
    assert len(TrustedKeys.from_files([key]).keys) == 1  # --public-key: the verifier named it
    os.chown(key, os.geteuid(), os.getegid())
    assert len(TrustedKeys.from_specs([f"file:{key}"], "trusted_checkpoint_keys of profile local").keys) == 1


def test_a_secret_volume_key_and_a_shared_readable_key_are_still_used(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A Kubernetes secret volume's file is root's link into its ``..data`` folder; a 0644 key is a leak (warned),
    not a key someone else chose."""
    mount = tmp_path / "secret"
    (mount / "..2026_12_07").mkdir(parents=True)
    pem = _pem()
    (mount / "..2026_12_07" / "key.pem").write_bytes(pem)
    (mount / "..2026_12_07" / "key.pem").chmod(0o644)
    (mount / "..data").symlink_to("..2026_12_07")
    (mount / "key.pem").symlink_to("..data/key.pem")
    with caplog.at_level(logging.WARNING):
        assert ed25519_pem(f"file:{mount / 'key.pem'}", what="signing key") == pem
    assert any("mode 644" in m and "chmod 600" in m for m in caplog.messages), caplog.messages


def test_the_approvals_key_planted_in_a_state_folder_made_under_umask_0_is_refused(
    aios_env: Path, umask0: None
) -> None:
    """F3 as reproduced: classify's cache made the state folder 0777 under umask 0, another user put their key in
    keys/, and the pack signed approval decisions with it."""
    from flytekitplugins.aios_approvals import signing

    state = aios_env
    state.chmod(0o777)
    attacker = Ed25519PrivateKey.generate()
    (state / "keys").mkdir(mode=0o755)
    key = state / "keys" / "approvals-ed25519.pem"
    key.write_bytes(attacker.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    _theirs(key, 0o644)
    _theirs(state / "keys", 0o755)
    refused = f"{state} is a folder others may write without the sticky bit"  # (the folder, before their file: R16)
    with pytest.raises(ConfigError, match=rf"refusing the approvals signing key file {key}: {refused}"):
        signing.private_key(get_settings())
    key.unlink()
    (state / "keys").rmdir()
    with pytest.raises(AiosError, match=refused):  # no key yet: none is read, looked for or made there
        signing.private_key(get_settings())
    assert not key.exists()


# ---- evidence export (F6) ------------------------------------------------------------------------------------


def test_evidence_export_replaces_a_planted_file_and_refuses_a_planted_link(tmp_path: Path) -> None:
    from flytekitplugins.aios_audit import audit_log
    from tests.lineage.synthetic import write_trail

    write_trail(audit_log(get_settings(), emit=False), 3, per_execution=3)
    shared = _shared(tmp_path)
    out = shared / "run-0.zip"
    out.write_bytes(b"")
    _theirs(out, 0o666)
    held = os.open(out, os.O_RDONLY)  # the other user's descriptor
    try:
        res = CliRunner().invoke(cli, ["evidence", "export", "--execution", "run-0", "-o", str(out)])
        assert res.exit_code == 0, res.output
        assert os.read(held, 100) == b""  # they read nothing of the bundle
    finally:
        os.close(held)
    st = os.lstat(out)
    assert (st.st_uid, _mode(out)) == (0, 0o600) and "manifest.json" in zipfile.ZipFile(out).namelist()

    victim = tmp_path / "victim" / "approvals-ed25519.pem"
    victim.parent.mkdir(mode=0o700)
    victim.write_bytes(b"-----BEGIN PRIVATE KEY-----\nstand-in\n-----END PRIVATE KEY-----\n")
    link = shared / "run-0-b.zip"
    link.symlink_to(victim)
    _theirs(link, 0)
    res = CliRunner().invoke(cli, ["evidence", "export", "--execution", "run-0", "-o", str(link)])
    assert res.exit_code != 0
    assert f"{link} is a symbolic link owned by uid {OTHER}" in res.output and "Traceback" not in res.output
    assert victim.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")


def test_evidence_export_still_writes_into_a_pipe_of_ours(tmp_path: Path) -> None:
    """``--out /dev/stdout``-style names are written into, not replaced."""
    import threading

    from flytekitplugins.aios_audit import audit_log
    from tests.lineage.synthetic import write_trail

    write_trail(audit_log(get_settings(), emit=False), 3, per_execution=3)
    fifo = tmp_path / "bundle.fifo"
    os.mkfifo(fifo, 0o600)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)
    reader.start()
    res = CliRunner().invoke(cli, ["evidence", "export", "--execution", "run-0", "-o", str(fifo)])
    reader.join(timeout=30)
    assert res.exit_code == 0, res.output
    assert got and got[0][:4] == b"PK\x03\x04" and stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_a_pipe_swapped_in_after_the_check_is_not_written_to(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Re-review R10a: ``write_private`` judged a special file by its name, then opened the name: another user who
    swapped their own pipe in between (a rename in a shared folder) read the bundle from it. What was opened decides
    now. The swap is made at the moment it raced (after the name's check)."""
    import threading

    import flytekitplugins.aios_audit.private_files as pf

    out = tmp_path / "out"
    os.mkfifo(out, 0o600)  # our own pipe at the name: a special file, written into
    theirs = tmp_path / "theirs"
    os.mkfifo(theirs, 0o666)
    os.chown(theirs, OTHER, OTHER)
    checked = pf.end_of_links

    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(out.read_bytes()), daemon=True)  # the other user reads

    def swap(p: Path, owners: object, **kw: Any) -> Path:
        end = checked(p, owners, **kw)  # type: ignore[arg-type]
        os.replace(theirs, out)  # their pipe in its place, after the check
        reader.start()
        return end

    monkeypatch.setattr(pf, "end_of_links", swap)
    with pytest.raises(UnsafeFile, match=f"owned by uid {OTHER}"):
        write_private(out, "the evidence bundle")
    from tests.security.test_local_shell_races import release_reader

    release_reader(out, reader)  # (the pipe is no longer opened for writing at all: end the reader's wait)
    assert got == [b""]


def test_a_state_folder_link_another_user_made_first_is_refused_when_the_settings_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Re-review R10a: the settings resolved the state folder with ``Path.resolve``, which followed a link another
    user made first at the cluster profile's ``/tmp/aios`` to a folder of their choosing among this user's own
    (another deployment's, whose approvals key then signed): ``private_dir`` only ever saw the target. The link is
    judged as ``private_dir`` judges one; this user's own link is still followed."""
    from flytekitplugins.aios_core.settings import load_settings

    shared = _shared(tmp_path)
    other_deployment = tmp_path / "other-deployment"
    other_deployment.mkdir(mode=0o700)
    link = shared / "aios"
    link.symlink_to(other_deployment)
    os.lchown(link, OTHER, OTHER)
    monkeypatch.setenv("AIOS_STATE_DIR", str(link))
    with pytest.raises(UnsafeFile, match=re.escape(f"{link} is a symbolic link owned by uid {OTHER}")):
        load_settings()
    os.lchown(link, os.geteuid(), os.getegid())
    assert load_settings().state_dir == other_deployment


def test_a_journal_another_user_left_beside_the_audit_store_is_refused(tmp_path: Path) -> None:
    """Re-review R11: a hot rollback journal another user left beside this user's own 0600 ``audit.db`` was rolled back
    into it at open (SQLite copies the journal's pages in and deletes it): the honest trail was replaced by theirs.
    The store refuses to open beside one, nothing written."""
    from flytekitplugins.aios_audit import AuditEvent
    from flytekitplugins.aios_audit.stores import AuditWriteError, open_store

    state = tmp_path / "state"
    store = open_store(f"sqlite:///{state / 'audit.db'}")
    store.append(AuditEvent(kind="task", actor="service:pipeline"))
    store.close()
    journal = state / "audit.db-journal"
    journal.write_bytes(b"\xd9\xd5\x05\xf9\x20\xa1\x63\xd7" + bytes(504))  # a journal header's magic
    _theirs(journal, 0o666)
    before = (state / "audit.db").read_bytes()
    with pytest.raises(AuditWriteError, match=re.escape(f"{journal} is owned by uid {OTHER}")):
        open_store(f"sqlite:///{state / 'audit.db'}")
    assert (state / "audit.db").read_bytes() == before and journal.exists()


def test_a_link_swapped_in_for_a_pipe_is_refused_before_its_file_is_emptied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Re-review R11: the pipe path opened the name with ``"wb"``, which empties a regular file before the check of
    what was opened refused it: a link to this user's own file, swapped in after the name's check, emptied that file."""
    import flytekitplugins.aios_audit.private_files as pf

    out = tmp_path / "out"
    os.mkfifo(out, 0o600)
    notes = tmp_path / "notes.txt"
    notes.write_text("this user's notes")
    checked = pf.end_of_links

    def swap(p: Path, owners: object, **kw: Any) -> Path:
        end = checked(p, owners, **kw)  # type: ignore[arg-type]
        out.unlink()
        out.symlink_to(notes)  # after the check
        return end

    monkeypatch.setattr(pf, "end_of_links", swap)
    with pytest.raises(UnsafeFile, match="a regular file"):
        write_private(out, "the evidence bundle")
    assert notes.read_text() == "this user's notes"


def _their_wal(db: Path) -> Path:
    wal = db.with_name(db.name + "-wal")
    wal.write_bytes(b"")
    _theirs(wal, 0o644)
    return wal


def test_the_read_only_probes_refuse_another_users_wal_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Re-review R12: the read-only probe every read command makes before opening the store, and the lineage trace's
    read of the system of record, opened the database without the companion check: another user's ``-wal`` (left
    before the folder was narrowed) made ``aios audit verify --allow-empty`` say OK for 0 records of a trail of 3,
    and showed their row as the posted one. Both refuse it now, naming it."""
    from flytekitplugins.aios_audit import AuditEvent
    from flytekitplugins.aios_audit.lineage_sor import attach_rows
    from flytekitplugins.aios_audit.stores import open_store

    state = tmp_path / "state"
    store = open_store(f"sqlite:///{state / 'audit.db'}")
    store.append(AuditEvent(kind="task", actor="service:pipeline"))
    store.close()
    wal = _their_wal(state / "audit.db")
    monkeypatch.setenv("AIOS_STATE_DIR", str(state))
    monkeypatch.setenv("AIOS_AUDIT_STORE", f"sqlite:///{state / 'audit.db'}")
    out = CliRunner().invoke(cli, ["audit", "verify", "--allow-empty"])
    assert out.exit_code != 0 and "OK" not in out.output, out.output
    assert f"refusing the SQLite audit store {state / 'audit.db'}: {wal} is owned by uid {OTHER}" in out.output
    sor = state / "system_of_record.db"
    with sqlite3.connect(sor) as conn:
        conn.execute("CREATE TABLE document_actions (action_key TEXT, amount REAL)")
        conn.execute("INSERT INTO document_actions VALUES ('k1', 950.0)")
    _their_wal(sor)
    cases = [{"actions": [{"kind": "action", "action_key": "k1", "system_of_record": "document_actions"}]}]
    attach_rows(cases, f"sqlite:///{sor}")
    row = cases[0]["actions"][0]["row"]
    assert "refusing the system of record" in row["note"] and "amount" not in row, row


def test_a_sqlite_uri_as_a_store_path_is_refused(tmp_path: Path) -> None:
    """Re-review R12: SQLite reads a name starting with ``file:`` as a URI whatever the caller asked, so for
    ``sqlite:///file:/x/audit.db`` the checks looked at a folder named ``file:`` while SQLite opened ``/x/audit.db``
    (another user's 0666 database in their folder took this user's trail). Such a name is refused."""
    from flytekitplugins.aios_audit.stores import AuditWriteError, open_store

    with pytest.raises(AuditWriteError, match="a SQLite URI"):
        open_store(f"sqlite:///file:{tmp_path / 'audit.db'}")
    assert not (tmp_path / "audit.db").exists()


def test_a_sqlite_document_source_is_not_read_through_another_users_wal(tmp_path: Path) -> None:
    """Re-review R13: a SQLite document source was opened read-only without the state files' rule, and a ``-wal``
    another user left beside this user's own 0600 database (before its folder was narrowed) rewrote the payee and IBAN
    of a genuine invoice as read, which ingest then sealed. The listing and the read refuse it, naming it."""
    from tasks.documents.sources import _list_sql, local_copy

    src = tmp_path / "src"
    src.mkdir(mode=0o700)
    db = src / "documents.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE documents (id INTEGER PRIMARY KEY, name TEXT, content BLOB)")
        conn.execute("INSERT INTO documents VALUES (1, 'inv.txt', 'Invoice ACME GmbH Total EUR 950.00')")
    db.chmod(0o600)
    wal = _their_wal(db)
    with pytest.raises(sqlite3.DatabaseError, match=re.escape(f"refused: {wal} is owned by uid {OTHER}")):
        with local_copy(f"sqlite:///{db}#documents/1"):
            pass
    with pytest.raises(Exception, match=re.escape(f"{wal} is owned by uid {OTHER}")):
        list(_list_sql(f"sqlite:///{db}", "documents"))
