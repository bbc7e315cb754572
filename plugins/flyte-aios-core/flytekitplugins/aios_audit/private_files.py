"""Audit state files readable by their owner only: mode 0600 files in 0700 folders, whatever the umask.

The audit database (and SQLite's ``-wal``/``-shm``, which SQLite creates with the database's mode), its lock
files (:func:`open_owned`, which also refuses one another user made), checkpoints, proofs and keys are created
through these helpers. Existing folders keep their mode (a shared parent such as ``/tmp`` is not ours to change);
files this pack writes are always set to 0600.

Nothing another local user made or may change is used as found (review R9, the "local shell" attacker: another
user of the host). The cluster profile's state folder is ``/tmp/aios``, which any user can create first, and a
folder that a step made under umask 0 was 0777: that user then owned, or could write, the folders and files the pack
kept there, and read and changed posted payments (a ``system_of_record.db`` of theirs, 0666, was used as found),
planted the approvals signing key, and had their links followed by ``--out`` writes. Now :func:`private_dir` refuses
a folder on the way that another user owns or may write (:class:`UnsafeFolder`), :func:`touch_private` a file that
is not this user's (or root's) own private regular file, and :func:`write_private` a link or a named pipe at the
name that another user made; its temporary file has an unpredictable name and is never opened through a link.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import grp
import os
import pwd
import select
import stat
import tempfile
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import NoReturn

from flytekitplugins.aios_core.errors import AiosError, GovernanceDenied

try:  # imported with the module: a process that then changes its user or root may no longer read the library
    import ctypes
except ImportError:  # a Python built without _ctypes: /proc is judged by the mount table instead
    ctypes = None  # type: ignore[assignment]

FILE_MODE = 0o600
DIR_MODE = 0o700
MAX_LINKS = 40  # links followed on one path, as the kernel's own limit: more is a loop


def trusted_owners() -> frozenset[int]:
    """Whose folders and files the pack uses as found: this process's (effective) user's, and root's."""
    return frozenset({os.geteuid(), 0})


def _owned_by_other(uid: int, what: str) -> str:
    return f"{what} owned by uid {uid}, not by this process's user (uid {os.geteuid()}) or root"


class UnsafeFile(AiosError):
    """A file :func:`open_owned` refuses: ``path`` is ``reason`` (a link, not a regular file, another user's...).

    ``fix`` (optional) says what to do, after the reason. An :class:`~flytekitplugins.aios_core.errors.AiosError`: the
    command line shows it as one line, never a traceback."""

    def __init__(self, path: str | os.PathLike[str], reason: str, fix: str = "") -> None:
        super().__init__(f"{path} is {reason}" + (f"; {fix}" if fix else ""))
        self.path = Path(path)
        self.reason = reason
        self.fix = fix


class UnsafeFolder(UnsafeFile):
    """A folder :func:`private_dir` refuses: another user owns it or may write it, or it is not a folder."""


STATE_FOLDER_FIX = "or choose another folder (AIOS_STATE_DIR, the profile's state_dir, or the path given)"
SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")
"""The files SQLite opens beside a database without being asked, whose pages it takes as the database's: the
write-ahead log and its index, and a hot rollback journal (rolled back into the database at open, then deleted: one
another user left had their pages copied into this user's own 0600 database; re-review R11). Held to the database
file's own rule (:func:`touch_private`'s ``companions``)."""


def state_refusal(e: UnsafeFile, what: str, risk: str, fallback: str) -> GovernanceDenied:
    """The ``GovernanceDenied`` (``unsafe_state_file``) a governed step raises where a state file or folder it needs
    was refused: ``what`` names it, ``risk`` says what another user could do with it and what was not done, and the
    fix is the refusal's own, else ``fallback``. One line, no traceback (fail closed)."""
    fix = e.fix or fallback
    fix = fix[:1].upper() + fix[1:]  # a sentence of its own
    msg = f"refusing {what}: {e.path} is {e.reason}, so {risk}. {fix}"
    return GovernanceDenied(msg, reason_code="unsafe_state_file")


def private_dir(path: str | os.PathLike[str]) -> Path:
    """Create ``path`` and any missing parents with mode 0700 (``mkdir -p`` would give parents 0755); check those
    that exist, and refuse (:class:`UnsafeFolder`) one that another local user could use to swap or read what the
    pack keeps below it.

    Each existing folder on the way, from ``/`` down (one ``lstat`` each), must be a folder owned by this process's
    user or root; one that its group or others may write is accepted only with the sticky bit (as ``/tmp``: they
    cannot rename or remove what is not theirs), and ``path`` itself not at all. A symbolic link on the way is
    followed only when it is this user's or root's (as ``fs.protected_symlinks`` does in a sticky folder), and then
    what it leads to is checked the same way. Review R9: another user who created ``/tmp/aios`` (the cluster profile's
    state folder) first, or could write a state folder made 0777 under umask 0, owned or could replace the audit
    store, the system of record and the signing keys kept in it; such a folder was used as found. Missing folders are
    still created 0700, whatever the umask; existing ones keep their mode.
    """
    _check_dirs(Path(path), shared=False)
    return Path(path)


def resolve_owned(path: str | os.PathLike[str]) -> Path:
    """``path`` made absolute with its symbolic links resolved, each followed only when it is this user's or root's
    (:class:`UnsafeFolder` otherwise); nothing is created or checked beyond the links (:func:`private_dir` does that
    where the pack keeps files). The settings' state folder is resolved so when they load: ``Path.resolve`` followed a
    link another user made first at the cluster profile's ``/tmp/aios`` to a folder of this user's choosing-by-them
    (another deployment's, with its keys), before :func:`private_dir` ever saw the link (re-review R10a)."""
    return Path(_check_dirs(Path(path), shared=True, resolve_only=True))


def checked_folder(path: str | os.PathLike[str]) -> Path:
    """``path``, an existing folder, with its links resolved: every folder on the way (and every link followed) held
    to the rule for the folders above a state folder (this user's or root's; one others may write only with the
    sticky bit), the folder itself too; nothing is created (``FileNotFoundError`` where a folder is missing). Where a
    key is read: :func:`resolve_owned` judged the links but not the folders holding them, and this user's own links
    ``prod`` and ``staging`` in a 0777 folder, renamed into each other's places by another user, had one deployment's
    key read as the other's (re-review R17)."""
    return Path(_check_dirs(Path(path), shared=True, create=False))


def _check_dirs(path: Path, *, shared: bool, resolve_only: bool = False, create: bool = True) -> str:
    """:func:`private_dir`'s walk; ``shared``: ``path`` itself may be a sticky folder others write (an output's
    folder, such as ``/tmp``), as its parents may; ``resolve_only``: follow the links as the walk does and return
    where the path leads, creating and checking nothing else (:func:`resolve_owned`); ``create=False``: check, and
    raise ``FileNotFoundError`` for a missing folder instead of making it (:func:`check_sqlite_files`,
    :func:`checked_folder`)."""
    owners = trusted_owners()
    # names still to walk, the next one last; a ".." kept where it is written: os.path.abspath took "lnk/.." away by
    # spelling, so the walk checked the folder holding the link while SQLite and the kernel went up from where the
    # link leads (a shared folder; re-review R15)
    todo = list(reversed((Path(path) if os.path.isabs(path) else Path(os.getcwd(), path)).parts))
    cur, last, hops = "", -1, 0  # cur: the folder reached (no link in it); last: -1 after a "..", else its mode
    while todo:
        name = todo.pop()
        if name == "..":  # from a link's target: cur holds no link, so its parent is the lexical one
            cur, last = os.path.dirname(cur) or "/", -1
            continue
        nxt = os.path.join(cur, name) if cur else name
        try:
            st = os.lstat(nxt)
        except OSError as e:
            if resolve_only:  # nothing below a missing (or unreadable) folder is followed, as Path.resolve does
                return os.path.normpath(os.path.join(nxt, *reversed(todo)))
            if not isinstance(e, FileNotFoundError):
                raise
            if not create:
                raise
            try:
                os.mkdir(nxt, DIR_MODE)
            except FileExistsError:
                todo.append(name)  # made meanwhile by another process: check it as found
                continue
            os.chmod(nxt, DIR_MODE)  # mkdir's mode is filtered by the umask; chmod is not
            cur, last = nxt, DIR_MODE
            continue
        if stat.S_ISLNK(st.st_mode):
            # /proc/self and /proc/thread-self are the kernel's own links, which a user namespace shows owned by
            # nobody (re-review R22: --out /dev/stdout was refused there); no other link of /proc is exempt
            kernel = cur == "/proc" and name in ("self", "thread-self") and st.st_dev == _proc_device()
            if st.st_uid not in owners and not kernel:
                fix = "remove it, or name the folder it leads to if that is where it should be, " + STATE_FOLDER_FIX
                raise UnsafeFolder(nxt, _owned_by_other(st.st_uid, "a symbolic link"), fix)
            hops += 1
            if hops > MAX_LINKS:
                raise UnsafeFolder(
                    nxt, f"a symbolic link in a loop (more than {MAX_LINKS} links)", "remove it, " + STATE_FOLDER_FIX
                )
            todo.extend(reversed(Path(os.readlink(nxt)).parts))  # an absolute target starts again from "/"
            continue
        if not resolve_only:
            _check_folder(nxt, st, owners, final=not todo and not shared)
        cur, last = nxt, st.st_mode
    if last == -1 and not resolve_only:  # the walk ended with a "..": check where it ended
        _check_folder(cur, os.lstat(cur), owners, final=not shared)
    return cur or "/"


def _check_folder(path: str, st: os.stat_result, owners: Collection[int], *, final: bool) -> None:
    """Refuse ``path`` (status ``st``, not a link) unless it is a folder of ``owners`` that no other user may write:
    with the sticky bit they may, unless it is the ``final`` one (where the pack keeps its files)."""
    if not stat.S_ISDIR(st.st_mode):
        raise UnsafeFolder(path, "not a folder", "move it away, " + STATE_FOLDER_FIX)
    if st.st_dev == _proc_device():
        # a folder of /proc, reached by the walk itself (/proc/self/fd): the kernel's, where no one makes or renames
        # anything; a user namespace shows it owned by nobody (re-review R20: --out /dev/stdout was refused there; a
        # skip decided by following the folder's name instead let another user swap a link above it, R21)
        return
    if st.st_uid not in owners:
        fix = "chown it to this user, " + STATE_FOLDER_FIX
        raise UnsafeFolder(
            path, _owned_by_other(st.st_uid, "a folder") + ": that user could swap what is kept in it", fix
        )
    mode = stat.S_IMODE(st.st_mode)
    # a folder above it group-writable by the owner's own group alone counts as the owner's (umask 002): at worst
    # such a group member renames what is below it, and what they put in its place is theirs and refused; the folder
    # itself, where the pack keeps its files, is held to its mode bits (an ACL entry, or a member NSS does not list,
    # made a group-writable folder "private": re-review R10a)
    # (a folder with an access ACL is not one: its group bits show the ACL's mask, and 0770 with user:other:rwx
    # passed as the owner's own group's; re-review R17)
    # (looked up only where it decides something: a folder its group may write)
    own_group = not final and st.st_mode & 0o020 and _private_group(st.st_uid, st.st_gid) and not _has_acl(path)
    writable = st.st_mode & (0o002 if own_group else 0o022)
    if writable and final and st.st_mode & stat.S_ISVTX:  # a shared folder such as /tmp: "chmod 700" breaks it
        fix = (
            "keep the file in a folder of this user's own instead (or, only if no one else uses this one, chmod 700 "
            "it), " + STATE_FOLDER_FIX
        )
        raise UnsafeFolder(path, f"a folder others may write (mode {mode:04o}, sticky: a shared folder)", fix)
    if writable and final:
        fix = "chmod 700 it (and check what others may have put in it), " + STATE_FOLDER_FIX
        raise UnsafeFolder(path, f"a folder others may write (mode {mode:04o})", fix)
    if writable and not st.st_mode & stat.S_ISVTX:
        fix = "chmod go-w it (or +t, as /tmp), " + STATE_FOLDER_FIX
        raise UnsafeFolder(path, f"a folder others may write without the sticky bit (mode {mode:04o})", fix)


ACL_ATTRIBUTES = frozenset({"system.posix_acl_access", "system.nfs4_acl", "system.nfs4_acl_xdr", "system.richacl"})
"""Extended attributes that carry an access ACL: POSIX's, NFSv4's (an NFS mount; ``nfs4_setfacl`` grants another
user write there with the mode bits unchanged; OpenZFS names it ``system.nfs4_acl_xdr``) and richacl's. The NFS client
shows ``system.nfs4_acl`` on every file of a server that supports ACLs, so there no group-writable folder passes as
its owner's own group's (it is refused, naming the fix): the ACL is not parsed."""


def _has_acl(path: str) -> bool:
    """Whether the folder ``path`` carries an access ACL (whose extra entries its mode bits do not show), POSIX's or
    NFSv4's: read only POSIX's, an NFSv4 ACL granting another user write passed a folder as its owner's own group's."""
    try:
        return not ACL_ATTRIBUTES.isdisjoint(os.listxattr(path, follow_symlinks=False))
    except OSError:  # no extended attributes here (or none readable): no ACL this process could see either
        return False


@functools.lru_cache(maxsize=64)
def _private_group(uid: int, gid: int) -> bool:
    """Whether group ``gid`` is user ``uid``'s own: its primary group, with no other member (no supplementary member,
    no other user's primary group). Under the user-private-group scheme (umask 002: RHEL's and Fedora's default, and
    Debian's for many accounts) a user's folders are group-writable, by that user alone; OpenSSH's ``StrictModes``
    accepts them the same way. Looked up once a process (NSS); False where the user or the group is unknown."""
    try:
        user = pwd.getpwuid(uid)
        first = grp.getgrgid(gid)
    except KeyError:
        return False
    # every entry of that number, not the first only: a second group sharing the gid (groupadd -o, or a local and a
    # directory group) gave its members the folder, while its first entry listed none (re-review R18); and the first
    # one's members too, which a directory that cannot be listed (getgrall) names only there (R19)
    entries = [first, *(g for g in grp.getgrall() if g.gr_gid == gid)]
    members = [m for g in entries for m in g.gr_mem]
    # the user-private-group scheme names the group as the user: a shared primary group ("Domain Users") whose other
    # users a directory does not list (getpwall) is not one (re-review R20)
    if user.pw_gid != gid or first.gr_name != user.pw_name or any(m != user.pw_name for m in members):
        return False
    # a password in the group entry itself (no /etc/gshadow entry for it): newgrp and sg give the group to whoever
    # knows it, as they do with one in /etc/gshadow
    if any(_group_password(g.gr_passwd or "", in_group_file=True) for g in entries):
        return False
    if _shadow_group_others({g.gr_name for g in entries}, user.pw_name):
        return False
    return not any(other.pw_gid == gid and other.pw_uid != uid for other in pwd.getpwall())


GSHADOW = Path("/etc/gshadow")
"""The shadow group file (:func:`_shadow_group_others`)."""
GSHADOW_MARK = frozenset({"x"})
"""``/etc/group``'s password field where the password is in :data:`GSHADOW`."""


def _shadow_group_others(names: set[str], user: str) -> bool:
    """Whether ``/etc/gshadow`` (where this process may read it) gives groups ``names`` to someone else: a member
    listed there alone, or a group password (``newgrp``/``sg`` take the group with it). Re-review R19: a member in
    ``/etc/gshadow`` only took the group with ``sg``, no password asked."""
    try:
        lines = GSHADOW.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:  # not readable here (not root): NSS's members are all there is to go by
        return False
    for line in lines:
        name, _, rest = line.partition(":")
        if name not in names:
            continue
        password, _, rest = rest.partition(":")
        admins, _, members = rest.partition(":")
        # (an administrator may add themself, take the group with sg and leave again: re-review R20)
        if _group_password(password) or any(m and m != user for m in f"{admins},{members}".split(",")):
            return True
    return False


def _group_password(field: str, *, in_group_file: bool = False) -> bool:
    """Whether a group's password field holds a password ``newgrp`` and ``sg`` accept: not empty, and not locked
    (``!`` or ``*`` first, as ``!``, ``!!``, ``*``, systemd-sysusers' ``!*`` and a locked hash ``!$6$...``: no hash
    begins so, so no password matches; re-review R26 found ``!*`` taken for a password). In ``/etc/group``, ``x``
    says the password is in ``/etc/gshadow``."""
    if in_group_file and field in GSHADOW_MARK:
        return False
    return bool(field) and not field.startswith(("!", "*"))


def touch_private(path: str | os.PathLike[str], *, companions: tuple[str, ...] = ()) -> Path:
    """Create an empty file with mode 0600 if it does not exist (its folder: :func:`private_dir`); an existing one is
    used only if it is a regular file (not a link) of this process's user or root that no other user may write
    (:class:`UnsafeFile` otherwise). ``companions``: suffixes of files that go with it and that a program opens
    without asking (SQLite's: :data:`SQLITE_COMPANIONS`), each held to the same rule where it exists.

    Review R9 (F4): another user created ``system_of_record.db`` first (mode 0666) and this kept it; the payments
    posted to it were theirs to read and change. An existing file others may read but not write is still used as
    it is (a trail copied to a read-only mount for an auditor, 0444 or 0644; a store made 0644 before the pack made
    its files 0600): that is its owner's choice to share it, and no one else chose what is in it. Another user's file
    is refused whether or not this process could write it (re-review R10b: another user's cache left before the folder
    was narrowed, unwritable here, still answered for the models), root too (as git refuses a repository another user
    owns): run as that user, or on a copy of your own (an auditor verifying another user's trail copies it first).
    """
    p = Path(path)
    _not_a_sqlite_uri(p)
    private_dir(p.parent)
    for suffix in companions:
        _check_existing(p.with_name(p.name + suffix))
    try:
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, FILE_MODE)
    except FileExistsError:
        _check_existing(p)
        return p
    os.fchmod(fd, FILE_MODE)
    os.close(fd)
    return p


def check_sqlite_files(path: str | os.PathLike[str]) -> None:
    """Refuse (:class:`UnsafeFile`) a SQLite database a read-only connection is about to open, where it, or a file
    SQLite would read beside it (:data:`SQLITE_COMPANIONS`), is not this user's or root's own file that no one else
    may write: the read-only probes that run before a store is opened (``existing._probe``, ``lineage_sor``) read
    another user's ``-wal`` as the database's pages (re-review R12: ``aios audit verify --allow-empty`` said OK for 0
    records of a trail of 3, and ``aios lineage trace`` showed a posted row of 95,000.00 to MALLORY LTD for one of
    950.00 to ACME GmbH). Nothing is created.

    The database's folder is held to :func:`private_dir`'s rule too (this user's or root's, no one else may write it,
    through links of theirs only): a ``-wal`` is a name anyone who may write the folder can make after the files were
    checked and before SQLite opens them. Re-review R14 did so in a sticky shared folder, linking a prepared ``-wal``
    in when the database was opened: a document source read a genuine invoice with MALLORY LTD's payee and IBAN
    (ingest seals what it reads), and ``aios audit verify --allow-empty`` said OK for 0 records of a trail of 3. Run as
    root, SQLite then gave the planted file the database's owner, so it passed every later check."""
    p = Path(path)
    _not_a_sqlite_uri(p)
    try:
        _check_dirs(p.parent, shared=False, create=False)
    except FileNotFoundError as e:
        raise UnsafeFolder(e.filename or p.parent, "missing (removed while it was checked)", STATE_FOLDER_FIX) from None
    for suffix in ("", *SQLITE_COMPANIONS):
        _check_existing(p.with_name(p.name + suffix))


def _not_a_sqlite_uri(p: Path) -> None:
    """SQLite reads a file name starting with ``file:`` as a URI, whatever the caller asked: ``sqlite:///file:/x``
    (SQLAlchemy's documented form) had the checks made of a folder named ``file:`` under the current one while SQLite
    opened ``/x``, another user's 0666 database in their 0777 folder (re-review R12). Such a name is refused, and so is
    one starting with ``//``: in a URI built from it SQLite read ``//localhost`` as the host and opened ``/x/...``,
    where the checks had looked at ``/localhost/x/...`` (re-review R14)."""
    fix = "name the database by its path (sqlite:////absolute/path.db or sqlite:///relative/path.db)"
    if str(p).startswith("file:"):
        raise UnsafeFile(p, "a SQLite URI (file:...), which SQLite opens elsewhere than the file checked", fix)
    if str(p).startswith("//"):
        raise UnsafeFile(p, "a path starting with //, which SQLite may read as a URI's host", fix)


def _check_existing(p: Path) -> None:
    """:func:`touch_private`'s rule for a file found at ``p`` (nothing there passes)."""
    try:
        st = os.lstat(p)
    except FileNotFoundError:
        return
    _judge(p, st)


_STATE_FILE_FIX = (
    "nothing was read from or written to it; remove it (or, if it is this pack's own, chown it to this user and "
    "chmod 600 it), and keep state in a folder only its own user can write"
)


def state_file_problem(st: os.stat_result) -> str | None:
    """Why a file with status ``st`` may hold what another local user chose: not a regular file of this process's
    user or root that no one else may write (the rule for state files and keys); None where it may not."""
    reason = _unsafe(st, trusted_owners(), mode=False)
    if reason is None and st.st_mode & 0o022:
        reason = f"writable by other users (mode {stat.S_IMODE(st.st_mode):04o}: they may have changed it)"
    return reason


def _judge(p: Path, st: os.stat_result) -> None:
    """Refuse the state file ``p`` (status ``st``) unless it passes :func:`state_file_problem`."""
    reason = state_file_problem(st)
    if reason is not None:
        raise UnsafeFile(p, reason, _STATE_FILE_FIX) from None


def open_append(path: str | os.PathLike[str]) -> int:
    """A write-only ``O_APPEND`` descriptor of the state file ``path``, created 0600 if missing, never through a link,
    and refused (:class:`UnsafeFile`) unless what it opened passes :func:`touch_private`'s rule (judged on the
    descriptor, so nothing can be swapped in after the check). Nothing is written before the check. The OpenLineage
    JSON-lines file was opened following links: one another user planted in its folder while the folder was 0777
    (umask 0) still took every event after the folder was narrowed, into their file (re-review R14)."""
    p = Path(path)
    try:
        # O_NONBLOCK: a named pipe left at the name is opened (and refused below), not waited on forever (R15)
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
        fd = os.open(p, flags, FILE_MODE)
    except OSError:  # ELOOP for a link, ENXIO for a pipe no one reads: name what was found there
        with contextlib.suppress(OSError):
            _judge(p, os.lstat(p))
        raise
    try:
        _judge(p, os.fstat(fd))
    except BaseException:
        os.close(fd)
        raise
    return fd


def write_private(path: str | os.PathLike[str], data: str | bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temporary file, fsync, rename) with mode 0600.

    ``path`` may name something other than a regular file, and then it is written into, never replaced: a device,
    a pipe or a terminal (``--out /dev/stdout``), or a link (the file it names is written). The rename used to put
    a regular file in the place of whatever the name held: run as root, ``--out /dev/stdout`` replaced the system's
    ``/dev/stdout`` link, and ``--out /dev/full`` the device, with a file holding the proof.

    What another local user made at the name is never written into (review R9): a link is followed only when it
    (each link on the way) is this user's or root's, a named pipe or socket is written only when it is theirs too, and
    a regular file found there (another user's 0666 file too) is replaced, not written: a descriptor its maker kept
    reads nothing of ours. The temporary file is made in the target's folder under an unpredictable name, with
    ``O_CREAT | O_EXCL | O_NOFOLLOW`` (:func:`tempfile.mkstemp`): ``.NAME.tmp<pid>`` was predictable, and a link
    planted there made the write truncate and overwrite the file it named. The target's folder is checked as
    :func:`private_dir` checks one, except that it may be a sticky folder others write (``/tmp``).
    """
    asked = Path(path)
    raw = data.encode() if isinstance(data, str) else data
    try:
        special = not stat.S_ISREG(os.stat(asked).st_mode)  # follows links: what the name leads to
    except FileNotFoundError:
        special = False
    except OSError as e:
        raise type(e)(e.errno, e.strerror, str(asked)) from None
    found: list[tuple[os.stat_result, str]] = []
    links: list[str] = []
    end = end_of_links(asked, trusted_owners(), found=found, links=links)  # after the stat: a pipe or link made since
    # (where the names lead, not how they are spelled: /dev/fd/1, //proc/..., proc/... from /; re-review R21)
    if _proc_device() is None and any(_in_proc(os.path.realpath(n)) for n in (*links, str(end))):
        # /proc not mounted (a chroot): /dev/stdout would be a file made at /proc/self/fd/1 (re-review R20)
        fix = f"nothing was written to {asked}; name a file instead"
        raise UnsafeFile(asked, "a name that leads into /proc, which is not mounted here", fix)
    stopped = walk_stopped_at_link(links, end)
    own = _own_descriptor(links[-1]) if stopped else None
    if own is None and stopped and not special:
        # it stopped at a process file system's link to a file, not this process's descriptor: not a name to replace
        # (through a second process file system the output replaced the audit store's database, re-review R25); one
        # to a pipe, socket or device (/proc/1/fd/1, a container's log) is written as any such output (R26)
        why = f"a link of a process file system ({links[-1]}) to a file, not one of this process's own descriptors"
        raise UnsafeFile(asked, why, f"nothing was written to {asked}; name /dev/fd/N or a file instead")
    # the folders on the way to the name, to each link followed and to the end, whatever the output is (R18-R20: in a
    # 0777 folder another user renamed this user's links or folders into each other's places, and the output went
    # to another deployment's file, pipe or descriptor, reported written)
    # (the name is the first link, or what the walk found; a name not there yet has its folder checked, and made,
    # below)
    _check_output_folders(asked, [*links, *(f for _, f in found)])
    if own is not None:  # /dev/stdout, /dev/fd/N: this process's own descriptor, where its caller pointed it
        _check_passed_in(asked, own)
        _write_all(asked, own, raw)
        return asked
    if special and own is None and stopped:  # another process's descriptor (/proc/1/fd/1)
        process = _other_process(asked, links[-1])
        try:
            _write_special(asked, found, raw, at=(process, os.path.join("fd", os.path.basename(links[-1]))))
        finally:
            os.close(process)
        return asked
    if special:
        _write_special(asked, found, raw)
        return asked
    p = end  # a link: the file it names (a dangling link: the file it would name)
    _check_output_folders(asked, [str(p)], create=True)  # (its missing folders made 0700)
    try:
        fd, name = tempfile.mkstemp(prefix=f".{short_name(p.name)}.", suffix=".tmp", dir=p.parent)
    except OSError as e:  # the error names the file asked for, not the temporary one beside it
        raise type(e)(e.errno, e.strerror, str(asked)) from None
    tmp = Path(name)
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, p)
    except OSError as e:  # named by the path asked for, not the temporary file (re-review R21)
        tmp.unlink(missing_ok=True)
        raise type(e)(e.errno, e.strerror, str(asked)) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return p


def _own_descriptor(link: str) -> int | None:
    """``N`` where ``link`` is this process's own descriptor ``N`` in ``/proc`` (``/proc/self/fd/N``, reached from
    ``/dev/stdout`` or ``/dev/fd/N``; its thread's too), else None. Compared with where ``/proc/self`` leads, not
    with the process id: in a pid namespace that sees its parent's ``/proc`` the two differ (re-review R19)."""
    name = os.path.basename(link)
    if not name.isdigit():
        return None
    folder = os.path.realpath(os.path.dirname(link))  # /proc/self and /proc/thread-self: the kernel's own links
    own = {os.path.realpath("/proc/self/fd"), os.path.realpath("/proc/thread-self/fd")}
    return int(name) if folder in own else None


def _check_passed_in(asked: Path, fd: int) -> None:
    """Refuse the descriptor ``fd`` unless the process was started with it (its caller passed it: ``3>FILE``,
    standard output). Every file the pack opens itself is close-on-exec (Python's default, SQLite's): a number its
    caller did not pass (Python's ``subprocess`` and sudo close those above 2) was the audit store's own, and
    ``--out /dev/fd/6`` wrote the checkpoint over the store's database, reported written (re-review R24). A
    descriptor inherited through ``exec`` cannot be close-on-exec."""
    try:
        flags = fcntl.fcntl(fd, fcntl.F_GETFD)
    except OSError as e:
        raise type(e)(e.errno, e.strerror, str(asked)) from None
    if flags & fcntl.FD_CLOEXEC:
        why = f"descriptor {fd}, a file this process opened itself (its audit store, say), not one passed to it"
        fix = "nothing was written; start the command with that descriptor open (3>FILE), or name a file"
        raise UnsafeFile(asked, why, fix)


def _write_all(p: Path, fd: int, raw: bytes) -> None:
    """Write ``raw`` to the descriptor ``fd`` (left open), whole, waiting where it is non-blocking and full (a caller's
    standard output set ``O_NONBLOCK``: 65,536 bytes of 200,000 were written, then an error; re-review R19); an
    error names ``p``, the path asked for."""
    try:
        view = memoryview(raw)
        while view:  # a pipe takes what fits: the rest on the next write
            try:
                view = view[os.write(fd, view) :]
            except BlockingIOError:  # poll, not select: a descriptor past 1023 (re-review R20)
                waiter = select.poll()
                waiter.register(fd, select.POLLOUT)
                waiter.poll()
    except OSError as e:  # a full device, a closed pipe: named by the path asked for
        raise type(e)(e.errno, e.strerror, str(p)) from None


def short_name(name: str) -> str:
    """``name`` as the start of a temporary file's name beside it: whole up to 64 bytes, else its first 32 bytes and a
    digest of the whole (the temporary name of a 250-character output exceeded the file system's 255 bytes, and an
    output ``echo x > NAME`` writes was refused, re-review R31a; counted in characters, a name of 64 four-byte
    characters still was, R32b). A prefix that splits a character comes back through ``surrogateescape``."""
    raw = os.fsencode(name)
    if len(raw) <= 64:
        return name
    import hashlib

    return f"{os.fsdecode(raw[:32])}-{hashlib.sha256(raw).hexdigest()[:16]}"


def _check_output_folders(asked: Path, names: list[str], *, create: bool = False) -> None:
    """Hold the folder of each of ``names`` (the output ``asked``, the links its walk followed, where it ended) to the
    rule for an output's folder (:func:`_check_dirs`, ``shared``: this user's or root's, one others may write only
    with the sticky bit); ``create``: make missing folders 0700."""
    fix = f"nothing was written to {asked}; write to a folder only this user can write (or to /dev/stdout)"
    for folder in dict.fromkeys(os.path.dirname(n) or "." for n in names):
        try:
            _check_dirs(Path(folder), shared=True, create=create)
        except FileNotFoundError:
            raise UnsafeFile(asked, f"changed while it was checked ({folder} is gone)", fix) from None
        except UnsafeFolder as e:
            raise UnsafeFolder(e.path, e.reason, fix) from None


def _other_process(asked: Path, link: str) -> int:
    """The process folder (``/proc/<pid>``, opened) of the descriptor link ``link`` names (``.../fd/N``), refused
    unless every user id of that process (real, effective, saved, file system) is this process's user's or root's.
    A non-dumpable process shows its descriptor links as root's: another user's such process whose standard output
    was a pipe root had made (a cron job's, ``su -c``) took root's report through ``--out /proc/<its pid>/fd/1``
    (re-review R27). The descriptor is then opened through this folder, so that a process id used again since names
    nothing else."""
    fix = f"nothing was written to {asked}; name a descriptor of this command (/dev/fd/N) or a file instead"
    if os.path.basename(os.path.dirname(link)) != "fd":
        raise UnsafeFile(asked, f"a link of a process file system ({link}) other than a descriptor", fix)
    try:
        folder = os.open(os.path.dirname(os.path.dirname(link)), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as e:
        raise type(e)(e.errno, e.strerror, str(asked)) from None
    try:
        status = os.open("status", os.O_RDONLY | os.O_CLOEXEC, dir_fd=folder)
        with os.fdopen(status, "rb") as f:
            lines = f.read().decode("utf-8", errors="replace").splitlines()
        uids = next((line.split()[1:] for line in lines if line.startswith("Uid:")), [])
        owners = trusted_owners()
        if len(uids) != 4 or any(not u.isdigit() or int(u) not in owners for u in uids):
            why = f"a descriptor of another user's process ({link}; its user ids {' '.join(uids) or 'unknown'})"
            raise UnsafeFile(asked, why, fix)
        # and only PID 1 (a container's log) or a process this command runs under: root's service child relaying its
        # standard output to another user (inetd, a cron job's mail) took root's report, its ids all root's (R28)
        tgid, own = _status_field(lines, "Tgid:"), _own_status()
        on_proc = os.fstat(folder).st_dev == _proc_device()
        if on_proc and tgid is not None and tgid == _status_field(own, "Tgid:"):
            # this process itself, through another thread's folder: its descriptor, passed in or not (R28, R29)
            _check_passed_in(asked, int(os.path.basename(link)))
        elif not on_proc or tgid is None or tgid not in _ancestors(own):
            why = f"a descriptor of a process that is neither PID 1 nor one this command runs under ({link})"
            raise UnsafeFile(asked, why, fix)
    except OSError as e:
        os.close(folder)
        raise type(e)(e.errno, e.strerror, str(asked)) from None
    except BaseException:
        os.close(folder)
        raise
    return folder


def _status_field(lines: list[str], name: str) -> int | None:
    """The number after ``name`` in a process's ``status`` lines (None where there is none)."""
    value = next((line.split()[1:2] for line in lines if line.startswith(name)), [])
    return int(value[0]) if value and value[0].isdigit() else None


def _own_status() -> list[str]:
    return Path("/proc/self/status").read_text(encoding="utf-8", errors="replace").splitlines()


def _ancestors(lines: list[str]) -> set[int]:
    """PID 1 and the processes this one runs under (its parent, theirs, ...), as ``/proc`` numbers them, from this
    process's ``status`` ``lines``; this process itself where it is PID 1 (a container's first process)."""
    out = {1}
    if _status_field(lines, "Tgid:") == 1:
        return out
    parent = _status_field(lines, "PPid:")
    while parent and parent not in out:
        out.add(parent)
        try:
            parent = _status_field(Path(f"/proc/{parent}/status").read_text(errors="replace").splitlines(), "PPid:")
        except OSError:  # gone, or hidden (hidepid): the chain ends there
            break
    return out


def _write_special(
    p: Path, found: list[tuple[os.stat_result, str]], raw: bytes, *, at: tuple[int, str] | None = None
) -> None:
    """:func:`write_private`'s write into the device or pipe ``p`` leads to, where ``found`` holds what its walk of
    links (:func:`end_of_links`) judged at the end (its status, and where it was looked at).

    What is written into is the very object judged, reached through folders no one else may change. The folders
    holding the name, each link followed and the end were held to the rule for an output's folder
    (:func:`_check_output_folders`) before, as a regular output's are: in a 0777 folder
    another user renamed this user's own link to ``/dev/null`` over this user's pipe, or put their link to the
    ``staging`` deployment's folder in the place of ``prod``'s, and the output went to ``/dev/null`` or into
    ``staging``'s pipe, reported written (re-review R18). The name is then opened with ``O_PATH`` (no device's or
    pipe's open runs, nothing is emptied, nothing waits), the object opened is judged by its descriptor and compared
    with the one the walk reached through this user's or root's links alone, and only then opened for writing
    through ``/proc/self/fd`` (the same object, whatever the name holds by then). Opened by name after the walk, the
    name was another user's to swap in a folder they may write (re-reviews R16, R17): their link to ``/dev/null`` in
    turn with a file of theirs at the name diverted 508 writes in 30,000 to ``/dev/null``, each reported written, and
    their named pipe swapped in blocked the command; a check walking the name again was itself raced."""
    fix = "nothing was written; write to a folder of your own"
    try:  # (``at``: another process's descriptor, opened through its process folder, judged already)
        fd = (
            os.open(p, os.O_PATH | os.O_CLOEXEC)
            if at is None
            else os.open(at[1], os.O_PATH | os.O_CLOEXEC, dir_fd=at[0])
        )
    except OSError as e:
        raise type(e)(e.errno, e.strerror, str(p)) from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(p))
        if stat.S_ISREG(st.st_mode):
            raise UnsafeFile(p, "a regular file put there since it was checked", fix)
        if st.st_uid not in trusted_owners() and not _is_kernel_sink(st):
            raise UnsafeFile(p, _owned_by_other(st.st_uid, "a named pipe or device"), fix)
        if at is None and stat.S_ISFIFO(st.st_mode) and _others_may_open(st, found[0][1] if found else str(p)):
            # (re-reviews R31a, R32b: mkfifo under umask 022 makes 0644, and another user who opened it first read
            # the whole report; R35: through a bind mount, a second hard link or a group held only at run time, the
            # folders above did not keep them out: an output is written for this user alone)
            why = (
                f"a named pipe others may open (mode {stat.S_IMODE(st.st_mode):04o}, {st.st_nlink} link(s), or an "
                "ACL): only a pipe of mode 0600 with one name and no ACL is written into"
            )
            fix = (
                "nothing was written; remove it and make it again with mkfifo -m 600 (chmod does not take it back "
                "from a reader that opened it already)"
            )
            raise UnsafeFile(p, why, fix)
        judged = found[0][0] if found else None
        if judged is None or (judged.st_dev, judged.st_ino) != (st.st_dev, st.st_ino):
            raise UnsafeFile(p, "changed while it was checked (it leads elsewhere than the links judged)", fix)
        try:  # the object of the descriptor, not the name: a pipe waits for its reader here, as it should
            wfd = os.open(f"/proc/self/fd/{fd}", os.O_WRONLY | os.O_NOCTTY | os.O_CLOEXEC)
        except OSError as e:
            raise type(e)(e.errno, e.strerror, str(p)) from None
    finally:
        os.close(fd)
    try:
        _write_all(p, wfd, raw)
    finally:
        os.close(wfd)


def _others_may_open(st: os.stat_result, where: str) -> bool:
    """Whether a user other than the owner (root aside) may open the named pipe ``where`` (status ``st``): its mode
    grants its group or others anything, it has more than one name (a hard link elsewhere), or it carries an ACL.

    The folders above it are not judged: re-review R35 reached a 0644 pipe in a 0700 folder through a bind mount of
    that folder (as a container's volume gives) and through a second hard link, and a 0640 pipe of the owner's own
    private group through that group held only at run time (``setgroups``, as Kubernetes' ``supplementalGroups``
    gives, with nothing in ``/etc/group``); earlier reviews, through ACLs on the pipe or its folders (R33) and a
    shared group's 0710 folder (R34). A pipe of mode 0600 with one name and no ACL is its owner's alone wherever it
    is. A reader that opened it before its mode was narrowed keeps it: nothing here can see that (the refusal says
    to make the pipe again)."""
    return bool(st.st_mode & 0o077) or st.st_nlink != 1 or _has_acl(where)


KERNEL_SINKS = frozenset({(1, 3), (1, 5), (1, 7), (1, 8), (1, 9), (5, 0)})
"""Character devices (major, minor) written into whoever their node shows as owning it: null, zero, full, random,
urandom (nothing written there can be read back) and ``/dev/tty`` (always the writer's own controlling terminal)."""


def _is_kernel_sink(st: os.stat_result) -> bool:
    """Whether ``st`` is one of :data:`KERNEL_SINKS`. Such a device is the kernel's wherever its node is: only the
    initial user namespace's root may make a device node. A rootless container's ``/dev/null``, ``/dev/zero``,
    ``/dev/urandom`` and ``/dev/tty`` are the host's, bound into its ``/dev`` and shown as nobody's there, and
    ``--out /dev/null`` (then, re-review R25, the others) was refused as another user's device."""
    return stat.S_ISCHR(st.st_mode) and (os.major(st.st_rdev), os.minor(st.st_rdev)) in KERNEL_SINKS


def open_without_links(path: str | os.PathLike[str], flags: int) -> int:
    """``os.open(path, flags)`` of an absolute ``path`` whose links were resolved (and judged) already, one name at a
    time from ``/``, each folder opened without following a link and required to be this user's or root's: a link, or
    another user's folder, put on the way since is refused (:class:`UnsafeFile`), never followed. A folder others
    may write let them swap a link to this user's other deployment's ``keys/`` in and out while the key was read, and
    359 reads in 20,000 took that deployment's approvals key after the links had been checked (re-review R15). Each
    folder is held to :func:`private_dir`'s rule for the folders above a state folder: one others may write only with
    the sticky bit (or its owner's own group alone), since in a 0777 folder they renamed this user's two deployments'
    folders into each other's places, and the key of one was read as the other's, with no link at all (re-review R16).
    ``FileNotFoundError`` where a name is missing."""
    if not os.path.isabs(path):
        raise ValueError(f"not an absolute path: {path}")
    parts = Path("/" + str(path).lstrip("/")).parts  # "//x" (kept by Path, written by PREFIX=/ scripts) is "/x" (R16)
    owners = trusted_owners()
    dfd = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        here = "/"
        for name in parts[1:-1]:
            here = os.path.join(here, name)
            try:
                nxt = os.open(name, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
            except OSError as e:
                if e.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise UnsafeFile(here, "a symbolic link or a file put on the way since it was checked") from None
                raise
            os.close(dfd)
            dfd = nxt
            _check_folder(here, os.fstat(dfd), owners, final=False)
        try:
            return os.open(parts[-1], flags | os.O_NOFOLLOW, dir_fd=dfd)
        except OSError as e:
            if e.errno == errno.ELOOP:
                raise UnsafeFile(path, "a symbolic link put there since it was checked") from None
            raise
    finally:
        os.close(dfd)


def _in_proc(path: str) -> bool:
    return path == "/proc" or path.startswith("/proc/")


PROC_SUPER_MAGIC = 0x9FA0
"""``statfs``'s file system type of a process file system (linux/magic.h)."""


@functools.cache
def _libc() -> ctypes.CDLL:
    """The C library of this process, opened once (it was opened again for each link a walk judged)."""
    return ctypes.CDLL(None, use_errno=True)


def _is_procfs(path: str) -> bool:
    """Whether ``path`` is on a process file system, by ``statfs``'s type: a plain folder with a ``self`` link in it
    at ``/proc`` passed the check of that link alone, and every folder on the same device was taken for the
    kernel's (re-review R22). Without ``ctypes``, by the process's mount table (re-review R23: imported here, after
    a change of user or root, the import failed every output; :func:`_on_a_proc_mount`)."""
    if ctypes is None:
        return _on_a_proc_mount(path)
    buf = ctypes.create_string_buffer(256)  # struct statfs (120 bytes on 64-bit Linux); f_type comes first
    try:
        if _libc().statfs(os.fsencode(path), buf) != 0:
            return False
    except (OSError, AttributeError):
        return False
    return ctypes.c_long.from_buffer(buf).value == PROC_SUPER_MAGIC


def _leads_to_own_pipe(path: str) -> bool:
    """Whether ``path/self/fd/N`` leads to this process's pipe ``N``: only the kernel's process file system shows a
    process its own descriptors there, in any pid namespace (its ``self`` names the pid the mount's namespace sees:
    comparing it with ``os.getpid()`` refused ``/dev/stdout`` where ``/proc`` was the parent pid namespace's, re-review
    R25), and no plain folder leads to a pipe that has no name."""
    read, write = os.pipe()
    try:
        named, own = os.stat(os.path.join(path, "self", "fd", str(read))), os.fstat(read)
        return (named.st_dev, named.st_ino) == (own.st_dev, own.st_ino)
    except OSError:
        return False
    finally:
        os.close(read)
        os.close(write)


def _unverified_kernel_link(cur: str, st: os.stat_result) -> bool:
    """Without ``ctypes`` and without a ``/proc`` known to be the kernel's, whether the link ``st`` is a process's
    descriptor by its mode: ``symlink`` makes every link 0777, a descriptor's link shows its open mode
    (``lr-x------``), and is named ``.../fd/N``. There a process file system mounted elsewhere was judged by nothing,
    and ``--out <it>/self/fd/6`` was followed to the audit store's database, which the checkpoint replaced (re-review
    R27)."""
    if not (ctypes is None and _proc_device() is None) or stat.S_IMODE(st.st_mode) == 0o777:
        return False
    # a descriptor's name (``.../fd/N``) or a mapped file's (``.../map_files/<range>``, which led to the store's
    # -shm file, replaced while mapped: R29); a plain link of a file system that shows other modes is followed (R28)
    # (the folder where the names lead, not as spelled: through a link of this user's to <proc>/self/fd, R30)
    folder, name = os.path.basename(os.path.realpath(os.path.dirname(cur) or ".")), os.path.basename(cur)
    return (folder == "fd" and name.isdigit()) or folder == "map_files"


def _on_a_proc_mount(path: str) -> bool:
    """Without ``ctypes``: whether ``path`` is on the device of a ``proc`` mount, by the mount table of ``/proc``
    (:func:`_proc_device`: a process file system there, itself judged by :func:`_mounted_as_proc`). Nothing is read
    through ``path``: judging a folder by the table and the ``self`` read through it, a second process file system
    (``/host/proc``) passed as none, and its ``self/fd/6`` was followed to the audit store's database, which the
    output replaced; and another user's ``self`` and table in a shared mount point (``/dev/shm``) made it one
    (re-review R26)."""
    if _proc_device() is None:
        return False
    try:
        dev = os.stat(path).st_dev
        lines = Path("/proc/self/mountinfo").read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:  # not judged: taken for one, so that its links are not followed (re-review R27)
        return True
    here = f"{os.major(dev)}:{os.minor(dev)}"
    return any(device == here and fstype == "proc" for device, _, fstype in _mounts(lines))


def _mounts(lines: list[str]) -> Iterator[tuple[str, str, str]]:
    """(device ``major:minor``, mount point, file system type) of each line of a ``mountinfo`` table, in order."""
    for line in lines:
        left, _, right = line.partition(" - ")
        fields = left.split()
        if len(fields) >= 5:
            yield fields[2], fields[4], right.split(" ", 1)[0]


def _mounted_as_proc(path: str) -> bool:
    """Whether the mount table (``/proc/self/mountinfo``) has a ``proc`` file system mounted at ``path`` last, of the
    device ``path`` is on, where ``path`` is a mount point (its device is not its parent folder's) whose ``self``
    shows this process its own descriptors (:func:`_leads_to_own_pipe`). The table is read through ``path`` itself:
    a plain folder there holding a ``self`` link to a forged table made the root file system the kernel's again
    (re-review R24, as R22 had found with ``statfs``)."""
    try:
        dev = os.lstat(path).st_dev
        if dev == os.lstat(os.path.dirname(path.rstrip("/")) or "/").st_dev:  # no mount point: a plain folder
            return False
        if not _leads_to_own_pipe(path):
            return False
        lines = Path(path, "self", "mountinfo").read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return False
    here = f"{os.major(dev)}:{os.minor(dev)}"
    last = [fstype for device, point, fstype in _mounts(lines) if point == path and device == here]
    return bool(last) and last[-1] == "proc"  # the last one mounted there


@functools.lru_cache(maxsize=1)
def _proc_device() -> int | None:
    """The device number of ``/proc`` (None where no process file system is mounted there); looked up once a
    process."""
    try:
        st = os.lstat("/proc")
    except OSError:
        return None
    # a folder, not a link to one: statfs follows a link, and the link's own device (the root file system's) had every
    # folder on it taken for the kernel's (re-review R23)
    if not stat.S_ISDIR(st.st_mode):
        return None
    return st.st_dev if (_mounted_as_proc("/proc") if ctypes is None else _is_procfs("/proc")) else None


def walk_stopped_at_link(links: list[str], end: Path) -> bool:
    """Whether :func:`end_of_links` stopped at the last link it passed (the ``links`` it filled, the ``end`` it
    returned) instead of following it: a link of a process file system (``/proc/<pid>/fd/N``, ``/dev/stdout``)."""
    return bool(links) and Path(links[-1]) == end


def end_of_links(
    p: Path,
    owners: Collection[int],
    *,
    found: list[tuple[os.stat_result, str]] | None = None,
    links: list[str] | None = None,
) -> Path:
    """Where the name ``p`` leads: itself, or the path its links end at, each link (and a named pipe or socket found
    at the end) checked to be of ``owners`` (:class:`UnsafeFile` otherwise). A link into ``/proc`` (``/dev/stdout``
    to a pipe) ends at a name that is no path: the walk stops there, and the kernel follows it when it is opened.
    The one walk of links to a file: :func:`write_private`'s, and :func:`.keys.read_key_file`'s (a secret volume's
    key is root's link into its ``..data`` folder). ``found``, where given, gets what the walk ended at: its status
    and the path it was looked at by (for a link into ``/proc``, the status of what that link leads to, and the
    link); nothing where the walk ended at a missing name. ``links``, where given, gets each link followed, in order.

    The walk stops at a link of ``/proc`` (``/proc/self/fd/1``, which ``/dev/stdout`` names): the kernel follows it
    when it is opened, to the very object, where its text is only a name that may be anyone's now (a deleted file's
    ``/tmp/x.log (deleted)``, which another user made, refused ``--out /dev/stdout``; re-review R19)."""
    cur = str(p)
    for _ in range(MAX_LINKS):
        try:
            st = os.lstat(cur)
        except (FileNotFoundError, NotADirectoryError):
            return Path(cur)
        if stat.S_ISLNK(st.st_mode):
            kind = "a symbolic link"
        elif stat.S_ISFIFO(st.st_mode) or stat.S_ISSOCK(st.st_mode):
            kind = "a named pipe" if stat.S_ISFIFO(st.st_mode) else "a socket"
        else:
            if found is not None:
                found.append((st, cur))
            return Path(cur)
        if st.st_uid not in owners:
            where = "" if cur == str(p) else f" (reached through {p})"
            fix = "nothing was written; remove it, or write to another name (a folder only this user can write)"
            raise UnsafeFile(cur, _owned_by_other(st.st_uid, kind) + where, fix)
        if not stat.S_ISLNK(st.st_mode):
            if found is not None:
                found.append((st, cur))
            return Path(cur)
        if links is not None:
            links.append(cur)
        # what it leads to, as the kernel follows it (a process's own descriptor); on any process file system, not
        # /proc's alone: through a second one (the host's bound at /host/proc) the walk followed the text of
        # /host/proc/self/fd/6 to the audit store's path, and the output replaced the database (re-review R25)
        if st.st_dev == _proc_device() or _is_procfs(os.path.dirname(cur) or ".") or _unverified_kernel_link(cur, st):
            if found is not None:
                with contextlib.suppress(OSError):
                    found.append((os.stat(cur), cur))
            return Path(cur)
        cur = os.path.join(os.path.dirname(cur), os.readlink(cur))
    raise UnsafeFile(p, f"a symbolic link in a loop (more than {MAX_LINKS} links)", "write to another name")


def _unsafe(st: os.stat_result, owners: Collection[int], *, mode: bool) -> str | None:
    """Why a file with status ``st`` may not be shared with the processes of ``owners``; None where it may."""
    if stat.S_ISLNK(st.st_mode):
        return "a symbolic link"
    if not stat.S_ISREG(st.st_mode):
        return "not a regular file"
    if st.st_uid not in owners:
        return f"owned by uid {st.st_uid}, not by this process's user (uid {os.geteuid()}) or root"
    if mode and st.st_mode & 0o066:  # a read-only descriptor is enough to hold a flock
        return f"open to other users (mode {stat.S_IMODE(st.st_mode):04o}: they can hold its lock)"
    return None


def open_owned(path: str | os.PathLike[str], owners: Collection[int]) -> int:
    """A read-write, close-on-exec descriptor of the regular file ``path``, created 0600 if missing: a lock file that
    the processes of its owner share (the SQLite store's writer queue).

    Never opened through a link. A link, anything but a regular file, a file owned by a user not in ``owners``, and
    one its group or others may open are refused (:class:`UnsafeFile`): another local user who created the file in a
    shared folder (``/tmp``), or who can open it (read-only is enough), could hold its lock forever.
    :func:`touch_private` kept such a file, and the store's writers blocked on that user's lock. Where the file
    cannot be opened (a folder this process may not write, a file that is not its own to open) the ``OSError`` is
    raised as it is, once the file found there has passed the same checks but the mode.
    """
    p = Path(path)
    flags = os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(p, flags | os.O_CREAT | os.O_EXCL, FILE_MODE)  # O_EXCL never follows a link either
    except FileExistsError:
        pass
    except OSError as e:
        _raise_unsafe(p, e, owners)
    else:
        os.fchmod(fd, FILE_MODE)  # the umask filtered the mode
        return fd
    try:
        fd = os.open(p, flags)
    except OSError as e:  # ELOOP for a link
        _raise_unsafe(p, e, owners)
    try:
        reason = _unsafe(os.fstat(fd), owners, mode=True)
    except BaseException:
        os.close(fd)
        raise
    if reason is not None:
        os.close(fd)
        raise UnsafeFile(p, reason)
    return fd


def _raise_unsafe(p: Path, e: OSError, owners: Collection[int]) -> NoReturn:
    """Raise :class:`UnsafeFile` where what ``p`` names is refused, else the error ``e`` that opening it raised."""
    try:
        reason = _unsafe(os.lstat(p), owners, mode=False)
    except OSError:
        reason = None
    if reason is not None:
        raise UnsafeFile(p, reason) from None
    raise e
