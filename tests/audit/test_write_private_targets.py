"""``write_private`` (checkpoints, proofs, keys, ``--out`` of the audit commands) writes into what a name leads to and
never replaces it. The write was a temporary file renamed over the name: run as root, ``aios audit checkpoint --out
/dev/full`` put a regular file where the device was, and ``--out /dev/stdout`` would have replaced the system's
``/dev/stdout`` link; a link to a file was replaced by a file, the file it named left as it was. These tests use
names in their own folder only (a FIFO, links to a file, to /dev/null and to /dev/full): no system file is at risk."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from flytekitplugins.aios_audit.private_files import write_private


def test_a_link_to_a_file_writes_the_file_and_stays_a_link(tmp_path: Path) -> None:
    target, link = tmp_path / "target.json", tmp_path / "link.json"
    target.write_text("old")
    link.symlink_to(target)
    write_private(link, "new")
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_text() == "new" and stat.S_IMODE(target.stat().st_mode) == 0o600


def test_a_dangling_link_creates_the_file_it_names(tmp_path: Path) -> None:
    link = tmp_path / "link.json"
    link.symlink_to(tmp_path / "later" / "made.json")
    write_private(link, "x")
    assert link.is_symlink() and (tmp_path / "later" / "made.json").read_text() == "x"


def test_a_fifo_is_written_into_not_replaced(tmp_path: Path) -> None:
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo, 0o600)
    fifo.chmod(0o600)  # whatever the umask
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)
    reader.start()
    write_private(fifo, '{"proof": 1}')
    reader.join(timeout=10)
    assert got == [b'{"proof": 1}']
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_a_link_to_a_device_writes_the_device_and_stays_a_link(tmp_path: Path) -> None:
    link = tmp_path / "stdout-like"
    link.symlink_to("/dev/null")
    write_private(link, "proof")
    assert link.is_symlink() and os.readlink(link) == "/dev/null"


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full on this system")
def test_a_full_device_is_an_error_naming_the_path_asked_for(tmp_path: Path) -> None:
    link = tmp_path / "full"
    link.symlink_to("/dev/full")
    with pytest.raises(OSError, match="No space left") as caught:
        write_private(link, "proof")
    assert caught.value.filename == str(link)
    assert link.is_symlink()


@pytest.mark.parametrize("stdout", ["pipe", "file"])
def test_dev_stdout_is_written_into_a_pipe_or_a_file(tmp_path: Path, stdout: str) -> None:
    """``--out /dev/stdout``: root's link to ``/proc/self/fd/1``, a link into ``/proc`` whose target is no path where
    standard output is a pipe (``pipe:[N]``), written into that pipe; where it is a file, that file is written."""
    import subprocess
    import sys

    code = "from flytekitplugins.aios_audit.private_files import write_private; write_private('/dev/stdout', 'proof')"
    if stdout == "pipe":
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120)
        assert res.returncode == 0, res.stderr.decode()[-2000:]
        assert res.stdout == b"proof"
        return
    out = tmp_path / "captured.txt"
    with out.open("wb") as f:
        res = subprocess.run([sys.executable, "-c", code], stdout=f, stderr=subprocess.PIPE, timeout=120)
    assert res.returncode == 0, res.stderr.decode()[-2000:]
    assert out.read_bytes() == b"proof"


def _aios_to(stdout: Path, *args: str) -> str:
    """Run ``aios`` in a process of its own whose standard output is the file ``stdout``; return its stderr."""
    import subprocess
    import sys

    code = "from flytekitplugins.aios_core.cli import cli; cli()"
    with stdout.open("wb") as f:
        res = subprocess.run([sys.executable, "-c", code, *args], stdout=f, stderr=subprocess.PIPE, timeout=300)
    assert res.returncode == 0, res.stderr.decode()[-2000:]
    return res.stderr.decode()


def test_what_a_command_says_about_its_output_stays_out_of_it_when_that_is_stdout(
    aios_env: Path, tmp_path: Path
) -> None:
    """``--out /dev/stdout`` sends the output to the command's standard output; the line saying where it was written
    goes to stderr then. It followed the output into the same stream: ``aios audit public-key --out /dev/stdout >
    key.pem`` ended the PEM with "public key ... written to /dev/stdout", and a proof or checkpoint sent there was no
    longer one. Named as a file, the output's line stays on stdout."""
    import json

    from flytekitplugins.aios_audit import AuditEvent, audit_log
    from flytekitplugins.aios_audit.checkpoint import Checkpoint, load_signing_key, public_pem
    from flytekitplugins.aios_core.settings import get_settings

    ids = [audit_log(get_settings()).append(AuditEvent(kind="task", actor=f"a{i}")).record_id for i in range(5)]
    got = tmp_path / "stdout.bin"
    err = _aios_to(got, "audit", "public-key", "--out", "/dev/stdout")
    assert got.read_text() == public_pem(load_signing_key(get_settings().signing_key))
    assert "written to /dev/stdout" in err
    err = _aios_to(got, "audit", "checkpoint", "--out", "/dev/stdout")
    checkpoint = tmp_path / "cp.json"
    checkpoint.write_bytes(got.read_bytes())
    assert Checkpoint.load(checkpoint).tree_size == 5 and "checkpoint: 5 records" in err
    err = _aios_to(got, "audit", "prove", ids[2], "--checkpoint", str(checkpoint), "--out", "/dev/stdout", "--json")
    assert json.loads(got.read_text())["checkpoint"]["tree_size"] == 5  # the proof alone
    assert json.loads(err.strip().splitlines()[-1])["out"] == "/dev/stdout"
    for spelled in ("/dev/stdout/", "/dev/stdout/.", "/dev/fd/1/"):  # the name as written: /dev/stdout (R24)
        err = _aios_to(got, "audit", "public-key", "--out", spelled)
        assert got.read_text() == public_pem(load_signing_key(get_settings().signing_key)), spelled
        assert f"written to {spelled}" in err
    err = _aios_to(got, "audit", "public-key", "--out", str(tmp_path / "key.pem"))  # a file: the line on stdout
    assert got.read_text().startswith("public key ") and "written to" not in err


def test_a_long_output_name_is_written_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    """R31a F3: the temporary file beside a 250-character output, ``.NAME.XXXXXXXX.tmp``, exceeded the file system's
    255 bytes and the output (which ``echo x > NAME`` writes) was refused with "File name too long"."""
    folder = tmp_path / "reports"
    folder.mkdir(mode=0o700)
    out = folder / ("r" * 250)
    write_private(out, "the report")
    assert out.read_text() == "the report" and stat.S_IMODE(out.stat().st_mode) == 0o600
    assert [p.name for p in folder.iterdir()] == [out.name]


def test_a_name_of_many_bytes_in_few_characters_is_written(tmp_path: Path) -> None:
    """Re-review R32b: the temporary name was shortened by characters, so a 64-character name of 244 bytes (emoji)
    was still refused "File name too long"."""
    folder = tmp_path / "reports"
    folder.mkdir(mode=0o700)
    out = folder / ("\U0001f600" * 60 + ".pem")
    assert len(out.name) == 64 and len(os.fsencode(out.name)) == 244
    write_private(out, "x")
    assert out.read_text() == "x" and [p.name for p in folder.iterdir()] == [out.name]


def test_a_named_pipe_others_may_open_is_not_written_into() -> None:
    """Re-reviews R31a, R32b: ``mkfifo`` under umask 022 makes a 0644 pipe; in a folder others may enter, another
    user who opened it for reading first read the whole report. Such a pipe is refused, nothing written; this user's
    alone (0600) is written into."""
    import shutil
    import tempfile

    from flytekitplugins.aios_audit.private_files import UnsafeFile

    folder = Path(tempfile.mkdtemp(prefix="aios-fifo-", dir="/tmp"))  # /tmp: every folder above lets others through
    try:
        folder.chmod(0o755)
        fifo = folder / "report.fifo"
        os.mkfifo(fifo, 0o600)
        fifo.chmod(0o644)
        refused = r"a named pipe others may open \(mode 0644, 1 link\(s\), or an ACL\).*mkfifo -m 600"
        with pytest.raises(UnsafeFile, match=refused):
            write_private(fifo, "the report")
        fifo.chmod(0o600)
        got: list[bytes] = []
        reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)
        reader.start()
        write_private(fifo, "the report")
        reader.join(timeout=10)
        assert got == [b"the report"]
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_a_named_pipe_with_an_acl_is_not_written_into(tmp_path: Path) -> None:
    """Re-review R33: the check read the mode bits alone, so a 0600 pipe whose ACL let another user read it (as a
    shared folder's default ACL gives one) was written into, and that user, who had opened it first, read the report.
    A pipe carrying an ACL is refused, nothing written."""
    import struct

    from flytekitplugins.aios_audit.private_files import UnsafeFile

    fifo = tmp_path / "report.fifo"
    os.mkfifo(fifo, 0o600)
    fifo.chmod(0o600)
    entry = struct.Struct("<HHI")
    everyone = 0xFFFFFFFF
    acl = struct.pack("<I", 2) + b"".join(
        entry.pack(*e) for e in ((0x01, 6, everyone), (0x02, 4, 65534), (0x04, 0, everyone), (0x10, 4, everyone))
    )
    try:
        os.setxattr(fifo, "system.posix_acl_access", acl + entry.pack(0x20, 0, everyone))
    except OSError as e:
        pytest.skip(f"no POSIX ACLs on this file system: {e}")
    with pytest.raises(UnsafeFile, match="a named pipe others may open"):
        write_private(fifo, "the report")


def test_a_named_pipe_in_a_folder_a_shared_group_may_enter_is_not_written_into() -> None:
    """Re-review R34: a 0644 pipe in a 0710 folder whose group is shared (not its owner's own) was judged out of others'
    reach, and a member of that group, who had opened it first, read the report."""
    import grp
    import shutil
    import tempfile

    from flytekitplugins.aios_audit.private_files import UnsafeFile

    try:
        shared = grp.getgrnam("nogroup").gr_gid
    except KeyError:
        pytest.skip("no group 'nogroup' here")
    top = Path(tempfile.mkdtemp(prefix="aios-fifo-", dir="/tmp"))  # /tmp: every folder above lets others through
    try:
        top.chmod(0o755)
        team = top / "team"
        team.mkdir()
        os.chown(team, os.getuid(), shared)
        team.chmod(0o710)
        fifo = team / "report.fifo"
        os.mkfifo(fifo, 0o600)
        fifo.chmod(0o644)
        with pytest.raises(UnsafeFile, match="a named pipe others may open"):
            write_private(fifo, "the report")
    finally:
        shutil.rmtree(top, ignore_errors=True)


@pytest.mark.parametrize("reach", ["folder of this user's alone", "second hard link", "owner's own group"])
def test_a_named_pipe_is_written_into_only_when_it_is_0600_with_one_name(tmp_path: Path, reach: str) -> None:
    """Re-review R35: the folders above a pipe did not keep other users out. A 0644 pipe in a 0700 folder was read
    through a bind mount of that folder (a container's volume), a 0600 pipe through a second hard link to it, and a
    0640 pipe of the owner's own private group by a process given that group at run time (``setgroups``, as
    Kubernetes' ``supplementalGroups`` does, nothing in ``/etc/group``). Each is refused now, nothing written."""
    from flytekitplugins.aios_audit.private_files import UnsafeFile

    folder = tmp_path / "private"
    folder.mkdir(mode=0o700)
    fifo = folder / "report.fifo"
    os.mkfifo(fifo, 0o600)
    fifo.chmod({"folder of this user's alone": 0o644, "second hard link": 0o600, "owner's own group": 0o640}[reach])
    if reach == "second hard link":
        os.link(fifo, tmp_path / "elsewhere.fifo")
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # a reader that opened it first: nothing may reach it
    try:
        with pytest.raises(UnsafeFile, match=r"a named pipe others may open .*mkfifo -m 600"):
            write_private(fifo, "the report")
        assert os.read(reader, 100) == b""
    finally:
        os.close(reader)
