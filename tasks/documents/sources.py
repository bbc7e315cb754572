"""Where documents come from: a local folder, any fsspec URL (``s3://``, ``gs://``, ``file://``), or a SQL table.

Listing streams (one document at a time) and yields references; content is fetched by the stage that
parses it, one document at a time, so no task ever holds a batch's contents. A SQL source is a database URL
(``sqlite:///PATH`` or ``postgresql://...``); rows of ``options.sql_table`` with columns ``id``, ``name``,
``content`` (bytes or text) are documents, and that table must be one of the deployment's document tables
(``Settings.document_tables``, :func:`check_table`).

Ingest stays inside its source (``source_local`` for folders). What must not be read is listed with a
quarantine ``reason`` and never opened: hidden files and folders (``hidden_file``; the corpus's own
``.aios-labels.csv`` at the top is ground truth, not a document, and is not listed), symlinks that leave
the source (``symlink_outside_source``), FIFOs, sockets, devices and links to folders
(``not_a_regular_file``), dangling or looping links (``unreadable``), and object keys outside the listed
prefix or with ``.``/``..`` segments (``outside_source``). Names are listed whatever their bytes; the
``name`` shown is escaped (control characters, non-UTF-8 bytes), the locator keeps the real path.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from tasks.documents.readers import Quarantined
from tasks.documents.source_local import (
    LABELS_FILE,
    Listed,
    display_name,
    list_local,
    local_path,
    pinned,
    pinned_file,
    under_root,
)

SQL_PREFIXES = ("sqlite:///", "postgresql://", "postgres://")
_SAFE_SUFFIX = re.compile(r"\.[A-Za-z0-9]{1,10}")
_CHUNK = 1 << 20

__all__ = [
    "Listed",
    "check_allowed",
    "check_source",
    "check_table",
    "content_digest",
    "is_sql",
    "list_documents",
    "local_copy",
    "locator_rule",
]


def is_sql(source: str) -> bool:
    """True when the source is a database URL."""
    return source.startswith(SQL_PREFIXES)


def _is_local(source: str) -> bool:
    return "://" not in source or source.startswith("file://")


def check_source(source: str) -> None:
    """Refuse an empty source (it read the working directory) and a source that holds a credential (a URL's password,
    a token in its query): the source is a launch input, which Flyte stores with the run and shows in its console,
    and every document's reference names it. Raises ValueError naming the source with the credential masked and
    saying where the credential goes instead."""
    from flytekitplugins.aios_core.redact import mask_url

    if not source.strip():  # Path("") is the working directory: a pod's or a shell's files, never meant as documents
        raise ValueError("source is empty: pass a folder, an fsspec URL (s3://bucket/prefix/) or a database URL")
    masked = mask_url(source)
    if masked != source:
        msg = (
            f"source {masked} holds a credential: a launch input is stored with the run and shown in the Flyte "
            "console, so give it without one; a database password goes in PGPASSWORD (a Flyte secret mounted as "
            "that variable) or a libpq passfile, object store keys in the store's own credentials"
        )
        raise ValueError(msg)


def check_allowed(source: str, allowed: str, on_cluster: bool) -> None:
    """Refuse a source outside the deployment's document sources (``Settings.document_sources``, comma-separated:
    folders, object-store prefixes, database URLs). The source is a launch input, and the worker reads it with its
    own rights: ``source=~/.pgpass`` or ``/proc/self/environ`` handed the worker's database password on to the next
    task's stored input. With the list empty a local run reads anywhere (its launcher owns the machine) and a task
    on a cluster nowhere: the deployment must say where its documents are.

    A folder matches a local source at or under it (both resolved, links followed, so a link cannot lead out); a
    prefix an object-store URL at or under it (no ``.`` or ``..`` segment, query or fragment); a database URL only
    itself (a query could name another host). Raises ValueError naming the source and what to set."""
    from flytekitplugins.aios_core.redact import mask_text, mask_url

    roots = _roots(allowed)
    if not roots:
        if on_cluster:
            msg = (
                f"document source {mask_url(source)!r} is refused: this deployment names no document sources; its "
                "operator sets AIOS_DOCUMENT_SOURCES (folders, object-store prefixes or database URLs, comma-separated)"
            )
            raise ValueError(msg)
        return
    if any(_within(source, root) for root in roots):
        return
    # the deployment's list is the operator's and may hold a database URL with its password: each root masked, and
    # the list as a whole, since a raw "," in a password splits one URL in two roots: in the userinfo the mask of the
    # whole list covers both halves; in a query (a value masked to its end) the roots after it that are not roots
    # of their own (a URL, an absolute or relative path) are the rest of the value
    shown: list[str] = []
    rest_of_secret = False
    for root in roots:
        if rest_of_secret and "://" not in root and not root.startswith(("/", "~", ".")):
            shown.append("***")
            continue
        masked = mask_url(root)
        rest_of_secret = masked != root and masked.endswith("***")
        shown.append(masked)
    msg = (
        f"document source {mask_url(source)!r} is not one of this deployment's document sources "
        f"({mask_text(', '.join(shown))}): "
        "use a folder, prefix or database there, or have the operator add it to AIOS_DOCUMENT_SOURCES"
    )
    raise ValueError(msg)


def check_table(table: str, tables: str | None) -> None:
    """Refuse a SQL source's table (the launch option ``sql_table``) that is not one of the deployment's document
    tables (``Settings.document_tables``, comma-separated exact names; ``None``: no list, for a caller that holds no
    deployment settings). An allowed database holds other tables too: ``sql_table=credentials`` (or the audit log
    kept beside the documents) read their rows as documents and stored them with the run. Raises ValueError
    naming the table and what to set."""
    if tables is None:
        return
    names = _roots(tables)
    if table in names:
        return
    if not names:
        msg = (
            f"sql_table {table!r} is refused: this deployment names no document tables; its operator sets "
            "AIOS_DOCUMENT_TABLES (the tables of a database source documents are read from, comma-separated)"
        )
        raise ValueError(msg)
    msg = (
        f"sql_table {table!r} is not one of this deployment's document tables ({', '.join(names)}): "
        "use one of those, or have the operator add it to AIOS_DOCUMENT_TABLES"
    )
    raise ValueError(msg)


def _within(source: str, root: str) -> bool:
    if is_sql(root) or is_sql(source):
        return source == root
    if _is_local(root) != _is_local(source):
        return False
    if _is_local(source):
        try:
            got = Path(source.removeprefix("file://")).expanduser().resolve(strict=True)
        except (OSError, RuntimeError):
            return False
        return under_root(got, local_roots(root), hidden=True) is not None  # hidden: quarantined when listed
    rest = source.partition("://")[2]
    segments = rest.split("/") + unquote(rest).split("/")  # a client may decode %2e%2e into ..
    if any(c in source for c in "?#") or any(part in {".", ".."} for part in segments) or "::" in source:
        return False
    base = root.rstrip("/")
    return source.rstrip("/") == base or source.startswith(base + "/")


def _roots(allowed: str) -> list[str]:
    """The deployment's document sources (``Settings.document_sources``) or tables as a list."""
    return [r.strip() for r in allowed.split(",") if r.strip()]


def local_roots(allowed: str) -> list[Path]:
    """The local folders among the deployment's document sources, resolved (those that do not exist are left out)."""
    out: list[Path] = []
    for root in _roots(allowed):
        if _is_local(root):
            with contextlib.suppress(OSError, RuntimeError):
                out.append(Path(root.removeprefix("file://")).expanduser().resolve(strict=True))
    return out


def locator_rule(allowed: str, on_cluster: bool, tables: str | None = None) -> Callable[[str], bool]:
    """Whether a reference's locator lies in the deployment's document sources (:func:`check_allowed`'s rule for
    a locator rather than a source: a SQL locator's database URL exactly, a local path at or under a folder as
    listed, links and all, an object's URL under a prefix), the folders resolved once for a chunk's locators. A
    chunk handed to ``parse_protect`` is a launch input, so its locators are checked again there: a hand-made one
    named another database (libpq sent the worker's password to it), another table of an allowed one (a SQL
    locator is ``URL#table/id``; ``tables``: :func:`check_table`) or a worker file outside the roots."""
    roots = _roots(allowed)
    folders = local_roots(allowed)
    prefixes = [r for r in roots if not _is_local(r) and not is_sql(r)]
    table_names = None if tables is None else set(_roots(tables))

    def allows(uri: str) -> bool:
        if is_sql(uri) and table_names is not None:
            ref = uri.partition("#")[2]  # local_copy reads the table this names, whatever the options say
            if ref.partition("/")[0] not in table_names:
                return False
        if not roots:
            return not on_cluster
        if is_sql(uri):
            return uri.partition("#")[0] in roots
        if _is_local(uri):
            return under_root(Path(os.path.abspath(local_path(uri))), folders) is not None
        return any(_within(uri, root) for root in prefixes)

    return allows


def list_documents(
    source: str, table: str = "documents", *, allowed: str = "", on_cluster: bool = False, tables: str | None = None
) -> Iterator[Listed]:
    """Yield the documents of ``source`` in a stable order (quarantined entries carry their ``reason``).

    Args:
        source: a folder, an fsspec URL or a database URL (a launch input).
        table: a SQL source's table.
        allowed: the deployment's document sources (``Settings.document_sources``; :func:`check_allowed`).
        on_cluster: whether the listing runs in a task on a Flyte cluster (an empty ``allowed`` then refuses all).
        tables: the deployment's document tables (``Settings.document_tables``; :func:`check_table`), checked for a
            SQL source; None: no list (a caller without deployment settings; every task passes its own).

    Raises:
        ValueError: the source holds a credential (:func:`check_source`), is not an allowed source, or is a
            database whose ``table`` is not an allowed table.
    """
    check_source(source)
    check_allowed(source, allowed, on_cluster)
    roots = local_roots(allowed) if allowed.strip() else None  # listed folders are checked again as walked
    if is_sql(source):
        check_table(table, tables)
        yield from _list_sql(source, table)
        return
    if _is_local(source):
        yield from list_local(Path(source.removeprefix("file://")).expanduser(), source, roots)
        return
    import fsspec
    from fsspec.implementations.local import LocalFileSystem

    fs, path = fsspec.core.url_to_fs(source)
    if isinstance(fs, LocalFileSystem) or isinstance(getattr(fs, "fs", None), LocalFileSystem):
        # local://, simplecache::file://...: fsspec's find() follows symlinks; walk it as a folder instead
        yield from list_local(Path(path), source, roots)
        return
    yield from _list_fsspec(fs, path, source.split("://", 1)[0])


def _list_fsspec(fs: Any, path: str, proto: str) -> Iterator[Listed]:
    base = path.rstrip("/")
    for name, info in sorted(fs.find(path, detail=True).items()):
        kind = info.get("type")
        if kind == "directory":
            continue
        inside = name.startswith(base + "/")
        rel = name[len(base) + 1 :] if inside else name
        parts = rel.split("/")
        # fsspec's HTTP filesystem answers full URLs (http://http://host/... was never readable)
        uri, size = (name if "://" in name else f"{proto}://{name}"), int(info.get("size") or 0)
        if rel == LABELS_FILE:
            continue
        if not inside or any(p in {"", ".", ".."} for p in parts):
            yield Listed(uri, display_name(rel), 0, "outside_source")
        elif any(p.startswith(".") for p in parts):
            yield Listed(uri, display_name(rel), 0, "hidden_file")
        elif kind != "file":
            yield Listed(uri, display_name(rel), 0, "not_a_regular_file")
        else:
            yield Listed(uri, display_name(rel), size)


def _sql_conn(url: str):  # type: ignore[no-untyped-def]
    """A connection to a SQL source. A SQLite source is opened read-only (a mistyped path is an error, not a new
    empty database) and gives its text as bytes: SQLite stores whatever bytes a writer put in a ``TEXT`` column,
    and one row holding bytes that are not UTF-8 made Python's decoding fail the listing, so the whole batch ended
    in a traceback (``Could not decode to UTF-8 column 'name'``) instead of that one row being accounted for."""
    if url.startswith("sqlite:///"):
        import sqlite3

        from flytekitplugins.aios_audit.private_files import UnsafeFile, check_sqlite_files

        path = url.removeprefix("sqlite:///")
        try:  # a -wal another user left beside this user's own database rewrote its rows as read (re-review R13)
            check_sqlite_files(path)
        except UnsafeFile as e:
            raise sqlite3.DatabaseError(f"refused: {e}") from None  # (the listing names it; a read quarantines)
        # the file checked, by the name the checks used: file:{path} made SQLite read "//localhost/..." as a URI's
        # host and open /..., while the checks looked at /localhost/... (re-review R14)
        conn = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True)
        conn.text_factory = bytes
        return conn
    import psycopg

    return psycopg.connect(url)


def _check_table(table: str) -> str:
    if not table.replace("_", "").isalnum():
        msg = f"sql_table {table!r} is not a plain SQL identifier"
        raise ValueError(msg)
    return table


def _list_sql(url: str, table: str) -> Iterator[Listed]:
    import sqlite3

    import psycopg

    from flytekitplugins.aios_core.redact import mask_text, mask_url

    t = _check_table(table)
    try:
        with contextlib.closing(_sql_conn(url)) as conn:
            cur = conn.cursor()
            cur.execute(f"SELECT id, name, length(content) FROM {t} ORDER BY id")
            rows = cur.fetchall()
    except (sqlite3.Error, psycopg.Error) as e:
        msg = (
            f"document source {mask_url(url)} could not be read ({type(e).__name__}: {mask_text(str(e).strip())}): "
            f"check that the database exists and holds a table {t!r} with columns id, name and content "
            "(options.sql_table names another table)"
        )
        raise ValueError(msg) from None
    for row_id, name, size in rows:
        # an id that is not printable UTF-8 is escaped like a name: that row is then not found when fetched, and is
        # quarantined (``not_found``) where it made the locator unwritable
        ref = display_name(_sql_text(row_id))
        yield Listed(f"{url}#{t}/{ref}", display_name(_sql_text(name)), int(size or 0))


def _sql_text(value: object) -> str:
    """A value of a source row as text: bytes (a SQLite ``TEXT``, whatever it holds) as the name of a file with
    those bytes would read (:func:`display_name` escapes what is not UTF-8), anything else as ``str`` gives it."""
    return os.fsdecode(value) if isinstance(value, bytes) else str(value)


def _suffix(name: str) -> str:
    """A temporary file's suffix from an untrusted name: letters and digits only, else none."""
    suffix = Path(name).suffix
    return suffix if _SAFE_SUFFIX.fullmatch(suffix) else ""


def _too_large(n: int, max_bytes: int | None) -> None:
    if max_bytes is not None and n > max_bytes:
        raise Quarantined("too_large", f"over {max_bytes} bytes when fetched")


@contextlib.contextmanager
def local_copy(uri: str, max_bytes: int | None = None) -> Iterator[Path]:
    """A local file holding the document's bytes (a local file itself, pinned: it is never followed or swapped).

    Raises:
        Quarantined: ``not_a_regular_file`` when a local path is no longer a regular file (a symlink or FIFO
            put there after listing), ``too_large`` when more than ``max_bytes`` arrive.
    """
    if "#" in uri and is_sql(uri):
        url, _, ref = uri.partition("#")
        table, _, row_id = ref.partition("/")
        with contextlib.closing(_sql_conn(url)) as conn:
            cur = conn.cursor()
            ph = "?" if url.startswith("sqlite") else "%s"
            cur.execute(f"SELECT name, content FROM {_check_table(table)} WHERE id = {ph}", (row_id,))
            row = cur.fetchone()
            if row is None:
                raise Quarantined("not_found", f"row {row_id!r} is no longer in table {table!r}")
            name, content = _sql_text(row[0]), row[1]
        data = b"" if content is None else content.encode("utf-8") if isinstance(content, str) else bytes(content)
        _too_large(len(data), max_bytes)
        yield from _temp([data], _suffix(str(name)))
        return
    if _is_local(uri):
        with pinned(local_path(uri)) as path:
            yield path
        return
    import fsspec

    with fsspec.open(uri, "rb") as f:
        yield from _temp(_capped(f, max_bytes), _suffix(uri))


def _capped(f: Any, max_bytes: int | None) -> Iterator[bytes]:
    n = 0
    while chunk := f.read(_CHUNK):
        n += len(chunk)
        _too_large(n, max_bytes)
        yield chunk


def _temp(chunks: Any, suffix: str) -> Iterator[Path]:
    fd, name = tempfile.mkstemp(prefix="aios-doc-", suffix=suffix)
    try:
        with os.fdopen(fd, "wb") as f:
            for chunk in chunks:
                f.write(chunk)
        yield Path(name)
    finally:
        Path(name).unlink(missing_ok=True)


def content_digest(uri: str, max_bytes: int | None = None) -> str:
    """``sha256:<hex>`` of a document's bytes, streamed (a local file through its pinned descriptor, no copy)."""
    h = hashlib.sha256()
    with contextlib.ExitStack() as stack:
        if _is_local(uri):
            f = stack.enter_context(pinned_file(local_path(uri)))
        else:
            f = stack.enter_context(stack.enter_context(local_copy(uri, max_bytes)).open("rb"))
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return "sha256:" + h.hexdigest()
