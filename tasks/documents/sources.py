"""Where documents come from: a local folder, any fsspec URL (``s3://``, ``gs://``, ``file://``), or a SQL table.

Listing streams (one document at a time) and yields references; content is fetched by the stage that
parses it, one document at a time, so no task ever holds a batch's contents. Dotfiles and dot-folders
are skipped (``.aios-labels.csv`` is ground truth, not a document). A SQL source is a database URL
(``sqlite:///PATH`` or ``postgresql://...``); rows of ``options.sql_table`` with columns
``id``, ``name``, ``content`` (bytes or text) are documents.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SQL_PREFIXES = ("sqlite:///", "postgresql://", "postgres://")


@dataclass(frozen=True)
class Listed:
    """One listed document: where it is, its name and size."""

    uri: str
    name: str
    size: int


def is_sql(source: str) -> bool:
    """True when the source is a database URL."""
    return source.startswith(SQL_PREFIXES)


def _visible(rel: str) -> bool:
    return not any(part.startswith(".") for part in Path(rel).parts)


def list_documents(source: str, table: str = "documents") -> Iterator[Listed]:
    """Yield the documents of ``source`` in a stable order."""
    if is_sql(source):
        yield from _list_sql(source, table)
        return
    if "://" not in source or source.startswith("file://"):
        root = Path(source.removeprefix("file://")).expanduser()
        if not root.exists():
            msg = f"document source {source!r} does not exist: pass a folder, an fsspec URL or a database URL"
            raise FileNotFoundError(msg)
        paths = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for p in paths:
            rel = p.name if root.is_file() else str(p.relative_to(root))
            if _visible(rel):
                yield Listed(str(p.resolve()), rel, p.stat().st_size)
        return
    import fsspec

    fs, path = fsspec.core.url_to_fs(source)
    proto = source.split("://", 1)[0]
    for name, info in sorted(fs.find(path, detail=True).items()):
        rel = name[len(path.rstrip("/")) + 1 :] if name.startswith(path.rstrip("/")) else name
        if info.get("type") == "file" and _visible(rel):
            yield Listed(f"{proto}://{name}", rel, int(info.get("size") or 0))


def _sql_conn(url: str):  # type: ignore[no-untyped-def]
    if url.startswith("sqlite:///"):
        import sqlite3

        return sqlite3.connect(url.removeprefix("sqlite:///"))
    import psycopg

    return psycopg.connect(url)


def _check_table(table: str) -> str:
    if not table.replace("_", "").isalnum():
        msg = f"sql_table {table!r} is not a plain SQL identifier"
        raise ValueError(msg)
    return table


def _list_sql(url: str, table: str) -> Iterator[Listed]:
    t = _check_table(table)
    with contextlib.closing(_sql_conn(url)) as conn:
        cur = conn.cursor()
        cur.execute(f"SELECT id, name, length(content) FROM {t} ORDER BY id")
        for row_id, name, size in cur.fetchall():
            yield Listed(f"{url}#{t}/{row_id}", str(name), int(size or 0))


@contextlib.contextmanager
def local_copy(uri: str) -> Iterator[Path]:
    """A local file holding the document's bytes (the file itself when it is local)."""
    if "#" in uri and is_sql(uri):
        url, _, ref = uri.partition("#")
        table, _, row_id = ref.partition("/")
        with contextlib.closing(_sql_conn(url)) as conn:
            cur = conn.cursor()
            ph = "?" if url.startswith("sqlite") else "%s"
            cur.execute(f"SELECT name, content FROM {_check_table(table)} WHERE id = {ph}", (row_id,))
            name, content = cur.fetchone()
        data = content.encode("utf-8") if isinstance(content, str) else bytes(content)
        yield from _temp(data, Path(str(name)).suffix)
        return
    if "://" not in uri or uri.startswith("file://"):
        yield Path(uri.removeprefix("file://"))
        return
    import fsspec

    with fsspec.open(uri, "rb") as f:
        data = f.read()
    yield from _temp(data, Path(uri).suffix)


def _temp(data: bytes, suffix: str) -> Iterator[Path]:
    fd, name = tempfile.mkstemp(prefix="aios-doc-", suffix=suffix)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        yield Path(name)
    finally:
        Path(name).unlink(missing_ok=True)


def content_digest(uri: str) -> str:
    """``sha256:<hex>`` of a document's bytes, streamed."""
    h = hashlib.sha256()
    with local_copy(uri) as p, p.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return "sha256:" + h.hexdigest()
