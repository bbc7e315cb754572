"""Run by ``test_local_shell_races.test_dev_stdout_is_written_in_a_rootless_container`` (and, with ``null`` after the
root, by ``test_dev_null_is_an_output_in_a_rootless_container``): ``write_private`` of ``/dev/stdout`` (or of the
host's ``/dev/null``, bound into the container's ``/dev``) inside an unprivileged user namespace with its own root,
``/dev`` and ``/proc``, as a rootless container runtime makes them (the namespace's root mapped to the host's
``nobody``). Exit 77: no user namespaces here."""

from __future__ import annotations

import ctypes
import os
import sys
from typing import NoReturn

from flytekitplugins.aios_audit.private_files import write_private

NOBODY = 65534
CLONE_NEWUSER, CLONE_NEWNS, CLONE_NEWPID = 0x10000000, 0x00020000, 0x20000000
MS_BIND, MS_REC, MS_PRIVATE = 0x1000, 0x4000, 0x40000


def main() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    ready, go = os.pipe(), os.pipe()
    pid = os.fork()
    if pid == 0:
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)
        libc.prctl(4, 1, 0, 0, 0)  # PR_SET_DUMPABLE: the parent writes the maps
        if libc.unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID) != 0:
            os._exit(77)
        os.write(ready[1], b"u")
        os.read(go[0], 1)
        inner = os.fork()
        if inner == 0:
            libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None)
            root = sys.argv[1].encode()
            assert libc.mount(b"tmpfs", root, b"tmpfs", 0, b"mode=755") == 0, ctypes.get_errno()
            for d in (b"/dev", b"/proc"):
                os.mkdir(root + d, 0o755)
            assert libc.mount(b"tmpfs", root + b"/dev", b"tmpfs", 0, b"mode=755") == 0, ctypes.get_errno()
            os.symlink("/proc/self/fd/1", root + b"/dev/stdout")
            os.symlink("/proc/self/fd", root + b"/dev/fd")
            for device in (b"/dev/null", b"/dev/zero", b"/dev/urandom"):  # the host's, bound over empty files
                os.close(os.open(root + device, os.O_CREAT | os.O_WRONLY, 0o666))
                assert libc.mount(device, root + device, None, MS_BIND, None) == 0, ctypes.get_errno()
            if sys.argv[2:] == ["fakeproc"]:  # a plain /proc whose self link leads to a forged mount table
                _fake_proc(root)
            assert libc.mount(b"proc", root + b"/proc", b"proc", 0, None) == 0, ctypes.get_errno()
            if sys.argv[2:] == ["proc2"]:  # a second process file system, as the host's bound at /host/proc
                os.makedirs(root + b"/host/proc")
                assert libc.mount(b"proc", root + b"/host/proc", b"proc", 0, None) == 0, ctypes.get_errno()
            os.chroot(root)
            os.chdir("/")
            if sys.argv[2:] == ["null"]:  # the host's devices, shown as nobody's here
                for device in ("/dev/null", "/dev/zero", "/dev/urandom"):
                    write_private(device, "a proof\n")
                    os.write(1, f"written to {device}, owned by uid {os.stat(device).st_uid} here\n".encode())
                os._exit(0)
            if sys.argv[2:] == ["proc2"]:
                _second_proc()
            for name in ("/dev/stdout", "/dev/fd/1", "/proc/self/fd/1", "/proc/thread-self/fd/1"):
                write_private(name, f"written to {name}\n")
            os._exit(0)
        _, status = os.waitpid(inner, 0)
        os._exit(os.waitstatus_to_exitcode(status))
    os.read(ready[0], 1)
    for name, text in (("setgroups", "deny"), ("uid_map", f"0 {NOBODY} 1"), ("gid_map", f"0 {NOBODY} 1")):
        with open(f"/proc/{pid}/{name}", "w") as f:
            f.write(text)
    os.write(go[1], b"g")
    _, status = os.waitpid(pid, 0)
    sys.exit(os.waitstatus_to_exitcode(status))


def _second_proc() -> NoReturn:
    """``write_private`` of ``/host/proc/self/fd/N``, ``N`` this process's own open file ``/victim.txt``: "refused" or
    "written", then that file's text."""
    from flytekitplugins.aios_audit.private_files import UnsafeFile

    with open("/victim.txt", "w") as f:
        f.write("the audit store\n")
    fd = os.open("/victim.txt", os.O_RDONLY)
    try:
        write_private(f"/host/proc/self/fd/{fd}", "a checkpoint\n")
    except UnsafeFile as e:
        os.write(1, b"refused\n")
        os.write(2, f"{e}\n".encode())
    else:
        os.write(1, b"written\n")
    with open("/victim.txt") as f:
        os.write(1, f.read().encode())
    os._exit(0)


def _fake_proc(root: bytes) -> NoReturn:
    """``/proc`` a plain folder of the image whose ``self`` leads to a mount table saying the root file system is a
    process file system mounted there; ``write_private`` into a 0777 folder of that file system, judged without
    ``ctypes`` (by the mount table): "refused" or "written"."""
    import flytekitplugins.aios_audit.private_files as pf

    dev = os.stat(root).st_dev
    os.makedirs(root + b"/fakeself/fd")
    os.symlink("/fakeself", root + b"/proc/self")
    with open(root + b"/fakeself/mountinfo", "w") as f:
        f.write(f"1 0 {os.major(dev)}:{os.minor(dev)} / /proc rw - proc proc rw\n")
    os.mkdir(root + b"/shared", 0o777)
    os.chmod(root + b"/shared", 0o777)
    os.chroot(root)
    os.chdir("/")
    pf.ctypes = None  # type: ignore[assignment]  # a Python without _ctypes: the mount table decides
    pf._proc_device.cache_clear()
    try:
        write_private("/shared/out.txt", "the audit report")
    except pf.UnsafeFile:
        os.write(1, b"refused\n")
    else:
        os.write(1, b"written\n")
    os._exit(0)


if __name__ == "__main__":
    main()
