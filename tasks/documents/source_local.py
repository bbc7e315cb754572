"""A local folder as a document source, contained: nothing outside the folder is listed, opened or read.

The walk never follows a link (``os.scandir``, ``lstat``) and never opens what it lists. A symlink whose
resolved target stays inside the source is followed once: it is listed under its own name with the
target's locator, so it normally ends as a ``duplicate`` of the target. Everything else that is not a
plain file is listed with a quarantine reason (see ``sources``), so it is counted and never vanishes.
Hidden folders are listed as one entry each (``name/``) and not descended.

When a document is fetched, :func:`pinned` opens it with ``O_NOFOLLOW | O_NONBLOCK`` after checking that
it is still a regular file, and hands the parser a path to that open file (``/proc/<pid>/fd``), so a file
swapped for a symlink or a FIFO after listing is neither followed nor waited on.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote, unquote_to_bytes

from tasks.documents.readers import Quarantined

LABELS_FILE = ".aios-labels.csv"


@dataclass(frozen=True)
class Listed:
    """One listed document: where it is, its name and size; ``reason`` set when it is quarantined unread."""

    uri: str
    name: str
    size: int
    reason: str = ""


def display_name(raw: str) -> str:
    """A name as it may be shown and stored: non-UTF-8 bytes and control characters escaped (``\\xff``, ``\\n``)."""
    text = os.fsencode(raw).decode("utf-8", "backslashreplace")
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def local_uri(path: Path) -> str:
    """The locator of a local file: its path, or a percent-encoded ``file://`` URI when the path is not plain."""
    s = str(path)
    try:
        s.encode("utf-8")
        plain = s.isprintable() and "://" not in s
    except UnicodeEncodeError:
        plain = False
    return s if plain else "file://" + quote(os.fsencode(path))


def local_path(uri: str) -> Path:
    """The path of a local locator (inverse of :func:`local_uri`)."""
    if uri.startswith("file://"):
        return Path(os.fsdecode(unquote_to_bytes(uri.removeprefix("file://"))))
    return Path(uri)


def under_root(path: Path, roots: list[Path], hidden: bool = False) -> Path | None:
    """The one of ``roots`` that ``path`` lies at or under, with no hidden name between them unless ``hidden`` (a
    ``.credentials`` folder under an inbox is not a document folder), else None."""
    for root in roots:
        if path == root or path.is_relative_to(root):
            if hidden or not any(part.startswith(".") for part in path.relative_to(root).parts):
                return root
    return None


def list_local(given: Path, source: str, roots: list[Path] | None = None) -> Iterator[Listed]:
    """Yield the entries of a folder (or the one file) ``given``, sorted by path, each checked for containment.

    With ``roots`` (the deployment's document folders, resolved), the folder is listed only if it resolves, now, at
    or under one of them with no hidden name in between: it is the same resolution the walk then starts from (the
    allowed-source check resolved it once before, and a folder flipped to a link in between was listed)."""
    try:
        # the source itself may be a link; where it leads must be an allowed source (sources.check_allowed)
        root = given.resolve(strict=True)
    except (OSError, RuntimeError):
        msg = f"document source {source!r} does not exist: pass a folder, an fsspec URL or a database URL"
        raise FileNotFoundError(msg) from None
    if roots is not None:
        if under_root(root, roots, hidden=True) is None:
            raise ValueError(f"document source {source!r} is not one of this deployment's document sources")
        if under_root(root, roots) is None:  # inside, through a hidden folder
            yield Listed(local_uri(root), display_name(root.name) + ("/" if root.is_dir() else ""), 0, "hidden_file")
            return
    if not root.is_dir():
        # one file named as the source is held to the folder's rule: a hidden file (~/.pgpass) is not a document
        hidden = given.name.startswith(".") or root.name.startswith(".")
        yield (
            Listed(local_uri(root), display_name(root.name), 0, "hidden_file")
            if hidden
            else _entry(root, root, display_name(root.name))
        )
        return
    for parts, reason in sorted(_walk(root)):
        item = _classify(root, parts, reason)
        if item is not None:
            yield item


def _walk(root: Path) -> list[tuple[tuple[str, ...], str]]:
    out: list[tuple[tuple[str, ...], str]] = []
    stack: list[tuple[str, ...]] = [()]
    while stack:
        parts = stack.pop()
        try:
            with os.scandir(root.joinpath(*parts)) as it:
                entries = [(e.name, e.is_dir(follow_symlinks=False)) for e in it]
        except OSError:
            if not parts:
                raise
            out.append((parts, "unreadable"))
            continue
        for name, is_dir in entries:
            rel = (*parts, name)
            if is_dir and not name.startswith("."):
                stack.append(rel)
            else:  # a hidden folder is one quarantined entry, not descended
                out.append((rel, "hidden_file" if is_dir else ""))
    return out


def _classify(root: Path, parts: tuple[str, ...], reason: str) -> Listed | None:
    path, name = root.joinpath(*parts), display_name("/".join(parts))
    if reason:
        return Listed(local_uri(path), name + "/", 0, reason)
    if parts == (LABELS_FILE,):
        return None  # ground truth of a labelled corpus, read by report.read_labels; not a document
    if any(p.startswith(".") for p in parts):
        return Listed(local_uri(path), name, 0, "hidden_file")
    return _entry(root, path, name)


def _entry(root: Path, path: Path, name: str) -> Listed:
    try:
        st = os.lstat(path)
    except OSError:
        return Listed(local_uri(path), name, 0, "unreadable")
    if stat.S_ISLNK(st.st_mode):
        return _link(root, path, name)
    if not stat.S_ISREG(st.st_mode):
        return Listed(local_uri(path), name, 0, "not_a_regular_file")
    return Listed(local_uri(path), name, st.st_size)


def _link(root: Path, path: Path, name: str) -> Listed:
    target = Path(os.path.realpath(path))
    if not target.is_relative_to(root):
        return Listed(local_uri(path), name, 0, "symlink_outside_source")
    if any(p.startswith(".") for p in target.relative_to(root).parts):
        return Listed(local_uri(path), name, 0, "hidden_file")
    try:
        st = os.stat(target)  # every link is resolved already; stat never opens (a FIFO does not block it)
    except OSError:
        return Listed(local_uri(path), name, 0, "unreadable")
    if not stat.S_ISREG(st.st_mode):
        return Listed(local_uri(path), name, 0, "not_a_regular_file")
    return Listed(local_uri(target), name, st.st_size)


def _open_pinned(path: Path) -> int:
    """A descriptor of ``path`` opened without following a link or waiting on a FIFO, checked to be a regular file.

    Raises:
        Quarantined: ``not_a_regular_file`` when ``path`` is no longer a regular file.
    """
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0)
    if not stat.S_ISREG(os.lstat(path).st_mode):
        raise Quarantined("not_a_regular_file", "no longer a regular file")
    try:
        fd = os.open(path, flags)
    except OSError:
        if os.path.islink(path):
            raise Quarantined("not_a_regular_file", "a symlink now") from None
        raise
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise Quarantined("not_a_regular_file", "no longer a regular file")
        # O_NOFOLLOW guards the last name only: a folder on the path replaced by a link after the listing (whose
        # paths hold no link) led the open outside the source, and the digest and the parse both read that file
        opened = f"/proc/self/fd/{fd}"
        if os.path.exists(opened) and os.readlink(opened) != os.path.abspath(path):
            raise Quarantined("symlink_outside_source", "a folder on its path is a link now")
    except BaseException:
        os.close(fd)
        raise
    return fd


@contextlib.contextmanager
def pinned_file(path: Path) -> Iterator[BinaryIO]:
    """``path``'s bytes as a file object read through a pinned descriptor (:func:`pinned` without a link: for
    readers in this process that take a file object, such as the content digest).

    Raises:
        Quarantined: ``not_a_regular_file`` when ``path`` is no longer a regular file.
    """
    with os.fdopen(_open_pinned(path), "rb") as f:
        yield f


_LINK_DIRS: dict[tuple[int, str], str] = {}
_LINK_NAMES = itertools.count()


def _link_dir() -> str:
    """This process's private folder (mode 0700) for the links :func:`pinned` hands out, one per temp root.

    Made once and reused: a folder made and removed per document was a fifth of the parse stage's time. A child
    made by ``fork`` gets its own (the key holds the pid); each is removed when its process exits, a forked helper's
    before it answers (:func:`release_links`).
    """
    key = (os.getpid(), tempfile.gettempdir())
    folder = _LINK_DIRS.get(key)
    if folder is None or not os.path.isdir(folder):
        folder = tempfile.mkdtemp(prefix="aios-pin-")
        _LINK_DIRS[key] = folder
        atexit.register(_remove_link_dir, key[0], folder)
    return folder


def _remove_link_dir(pid: int, folder: str) -> None:
    if os.getpid() == pid:  # never a parent's folder from a forked child
        shutil.rmtree(folder, ignore_errors=True)


def release_links() -> None:
    """Remove this process's folder of links for the current temp root now (the next :func:`pinned` makes another).

    For a forked helper to call before it answers: a ``multiprocessing`` child ends with ``os._exit``, which runs no
    ``atexit`` handler, and the parent may kill it once it has its answer, so a helper that did not release its
    folder left it behind, one per parsed chunk.
    """
    key = (os.getpid(), tempfile.gettempdir())
    folder = _LINK_DIRS.pop(key, None)
    if folder is not None:
        _remove_link_dir(key[0], folder)


@contextlib.contextmanager
def pinned(path: Path) -> Iterator[Path]:
    """A path to ``path`` opened without following a link or waiting on a FIFO, valid inside the block.

    Raises:
        Quarantined: ``not_a_regular_file`` when ``path`` is no longer a regular file.
    """
    fd = _open_pinned(path)
    try:
        suffix = path.suffix if len(path.suffix) <= 16 else ""
        link = Path(_link_dir()) / f"doc-{next(_LINK_NAMES)}{suffix}"
        proc = Path(f"/proc/{os.getpid()}/fd/{fd}")  # not /proc/self: pdftoppm, a child, opens it too
        try:
            if proc.exists():
                link.symlink_to(proc)
            else:  # no /proc (macOS): copy the open file instead
                with os.fdopen(os.dup(fd), "rb") as src, open(link, "xb") as dst:
                    shutil.copyfileobj(src, dst)
            yield link
        finally:
            with contextlib.suppress(FileNotFoundError):
                link.unlink()
    finally:
        os.close(fd)
