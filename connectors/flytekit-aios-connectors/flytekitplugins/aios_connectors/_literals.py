"""Typed conversion between Flyte literal maps and Python values, for connectors (async, no event-loop nesting)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from flytekit import FlyteContextManager
from flytekit.models.literals import LiteralMap

from flytekitplugins.aios.compat.flytekit import dict_to_literal_map, literal_map_to_kwargs

SERVED_SCHEMES = ("s3", "gs", "abfs", "abfss")
"""Where a served call's file inputs (a data frame's Parquet, a blob) may be read from: the object stores Flyte keeps
a run's data in, and local folders only where the operator names them (``Settings.connector_input_dirs``, a
sandbox's shared volume). Anything else (an ``http://`` address inside the cluster, an FTP server, the service's own
``/proc/self/environ`` or ``/dev/zero``) is a place the caller chose for the service to read with its own reach."""


class UnsafeInput(ValueError):
    """An input literal the connector will not decode (it would run or fetch what its caller chose)."""


def check_raw(
    inputs: LiteralMap | None, *, served: bool, frames: frozenset[str] = frozenset(), input_dirs: str = ""
) -> None:
    """Refuse, before anything is decoded, input literals whose decoding runs or fetches what the caller chose.

    Decoding is flytekit's type engine: a dictionary input carrying literal metadata ``format: pickle`` is downloaded
    from the URI it names and unpickled (code of the caller's choosing ran in the connector service, before the
    caller's identity was established), and an offloaded literal or a data frame's URI is fetched from wherever it
    points. Refused: offloaded literals, any literal metadata but ``format: json`` / ``msgpack``, binary scalars
    other than msgpack, a data frame input (``frames``) that is not a structured-dataset literal (as msgpack or a
    generic struct it carries a URI of its own, which the type engine fetched unchecked), and in a served call
    (``served``) file inputs outside :data:`SERVED_SCHEMES` and the operator's ``input_dirs``.

    Raises:
        UnsafeInput: naming the input, never its value.
    """
    dirs = _folders(input_dirs) if served else []
    for name, literal in (inputs.literals if inputs is not None else {}).items():
        _check(name, literal, served, dirs if name in frames else [], 0)  # local files: a data frame's own, at most
        if name in frames and (literal.scalar is None or literal.scalar.structured_dataset is None):
            raise UnsafeInput(f"input {name!r} is a data frame: send it as a structured dataset literal")


def _check(name: str, literal: Any, served: bool, dirs: list[Path], depth: int) -> None:
    if depth > 32:
        raise UnsafeInput(f"input {name!r} is nested more than 32 levels deep")
    if literal is None:
        return
    if getattr(literal, "offloaded_metadata", None) is not None:
        raise UnsafeInput(f"input {name!r} is an offloaded literal; connector inputs are passed inline")
    fmt = (literal.metadata or {}).get("format") if getattr(literal, "metadata", None) else None
    if literal.metadata and fmt not in ("json", "msgpack"):
        raise UnsafeInput(f"input {name!r} carries literal metadata this connector does not decode")
    if literal.collection is not None:
        for item in literal.collection.literals or ():
            _check(name, item, served, [], depth + 1)
    if literal.map is not None:
        for item in (literal.map.literals or {}).values():
            _check(name, item, served, [], depth + 1)
    scalar = literal.scalar
    if scalar is None:
        return
    if scalar.union is not None:
        _check(name, scalar.union.value, served, [], depth + 1)
    if scalar.binary is not None and scalar.binary.tag != "msgpack":
        raise UnsafeInput(f"input {name!r} is a binary literal other than msgpack")
    uri = scalar.blob.uri if scalar.blob is not None else None
    uri = scalar.structured_dataset.uri if scalar.structured_dataset is not None else uri
    uri = scalar.schema.uri if scalar.schema is not None else uri
    if uri is not None and served:
        _check_served_uri(name, str(uri), dirs)


MAX_LOCAL_FILES = 10_000
"""Entries, files and folders, a served call's local input may hold (a data frame's Parquet parts)."""


def _check_served_uri(name: str, uri: str, dirs: list[Path]) -> None:
    """A served call's file input: an object store's address, or a regular file, or a folder of regular files,
    under one of the operator's ``dirs``. A query, a fragment, a chained protocol (``::``), white space or a control
    character is refused anywhere: the readers drop or follow them (``file:///proc/self/environ#`` lost the suffix
    the decoder appended and was parsed as CSV; ``urlsplit`` drops a tab the reader keeps)."""
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if "#" in uri or "?" in uri or "::" in uri or any(c.isspace() or not c.isprintable() for c in uri):
        raise UnsafeInput(f"input {name!r} names a file with a query, a fragment, a chained protocol or white space")
    if scheme in SERVED_SCHEMES and parts.netloc:
        return
    if scheme in ("file", "") and not parts.netloc and dirs and _local_input(_local_path(uri), dirs):
        return
    where = ", ".join(SERVED_SCHEMES) + (" and the service's input folders" if dirs else "")
    raise UnsafeInput(f"input {name!r} names a file outside the object stores ({where}) a served connector reads")


def _local_path(uri: str) -> Path:
    """The path a ``file://`` URI or a bare path names."""
    parts = urlsplit(uri)
    return Path(parts.path if parts.scheme else uri)


def _folder_of(path: Path, dirs: list[Path]) -> Path | None:
    """The one of ``dirs`` that ``path`` lies in, by its written form (``..`` resolved lexically), else None."""
    import os

    plain = Path(os.path.normpath(path))
    return next((d for d in dirs if plain == d or d in plain.parents), None)


def _local_input(path: Path, dirs: list[Path]) -> bool:
    """Whether ``path`` names, without ``..``, a place under one of ``dirs``. What it holds is read only through
    :func:`private_copy`, which opens each part without following links."""
    return path.is_absolute() and ".." not in path.parts and _folder_of(path, dirs) is not None


MAX_LOCAL_BYTES = 512 * 1024 * 1024
"""Bytes a served call's local input may hold, all its files together (counted as they are read)."""
MAX_LOCAL_DEPTH = 32
"""Folders a served call's local input may nest (a RecursionError escaped at 1,200)."""


def refuse(why: str) -> UnsafeInput:
    """The refusal of a served data frame's local input, for ``why``."""
    return UnsafeInput(f"a served data frame's local input is refused: {why}")


def private_copy(path: Path, dirs: list[Path], into: Path) -> Path:
    """Copy the local input ``path`` (checked by :func:`_local_input`) into the private folder ``into``; return what
    the decoder is to read there.

    Every part is opened relative to the folder above it (``dir_fd``), without following a link (``O_NOFOLLOW``) and
    without waiting on a pipe (``O_NONBLOCK``), and checked on the open handle: folders and regular files of one name
    only (a symbolic link or a hard link to a file outside, a named pipe or a device refuses the input), at most
    :data:`MAX_LOCAL_FILES` entries, :data:`MAX_LOCAL_DEPTH` folders deep and :data:`MAX_LOCAL_BYTES` bytes read.
    The decoder then reads the copy, never the caller's path: a check of the path followed by the decoder's own open
    lost a race with a writer swapping a file for a link (reviews of 2026-12-06). The copy is private from other users
    only: run the service under a user of its own, which no writer of the shared folders is (a process of the
    service's own user can change the copy, and can read the service's secrets anyway).

    Raises:
        UnsafeInput: naming what was refused in the input, not its contents.
    """
    import os
    import stat

    top = _folder_of(path, dirs)
    if top is None:
        raise UnsafeInput("a served data frame's local input is refused: it lies outside the service's input folders")
    parts = Path(os.path.normpath(path)).relative_to(top).parts
    budget = [MAX_LOCAL_FILES, MAX_LOCAL_BYTES]
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)

    def charge(files: int, size: int) -> None:
        budget[0] -= files
        budget[1] -= size
        if budget[0] < 0 or budget[1] < 0:
            raise refuse(f"it holds more than {MAX_LOCAL_FILES} entries or {MAX_LOCAL_BYTES} bytes")

    def copy_file(fd: int, to: Path) -> None:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1:
            raise refuse("it holds something other than folders and regular files of one name")
        charge(1, 0)
        with os.fdopen(os.dup(fd), "rb") as src, to.open("xb") as dst:
            left = st.st_size  # the bytes it had when checked: a file grown since is refused, not copied on
            while chunk := src.read(min(1 << 20, left + 1)):
                left -= len(chunk)
                if left < 0:
                    raise refuse("a file of it grew while it was copied")
                charge(0, len(chunk))  # the bytes read, not the size claimed
                dst.write(chunk)

    def copy_folder(fd: int, to: Path, depth: int) -> None:
        if depth > MAX_LOCAL_DEPTH:
            raise refuse(f"it is nested more than {MAX_LOCAL_DEPTH} folders deep")
        to.mkdir(mode=0o700)
        for entry in sorted(os.listdir(fd)):
            charge(1, 0)  # a folder counts as an entry too: 60,000 empty folders held the service for seconds
            child = os.open(entry, flags, dir_fd=fd)
            try:
                if stat.S_ISDIR(os.fstat(child).st_mode):
                    copy_folder(child, to / entry, depth + 1)
                else:
                    copy_file(child, to / entry)
            finally:
                os.close(child)

    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)  # the operator's folder
    try:
        for part in parts:
            nxt = os.open(part, flags, dir_fd=fd)
            os.close(fd)
            fd = nxt
        target = into / "input"
        try:
            if stat.S_ISDIR(os.fstat(fd).st_mode):
                copy_folder(fd, target, 0)
            else:
                copy_file(fd, target)
        except OSError as e:
            raise refuse(f"a part of it could not be opened as a plain file or folder ({e.strerror})") from None
        return target
    except OSError as e:
        raise refuse(f"it could not be opened as a plain file or folder ({e.strerror})") from None
    finally:
        os.close(fd)


async def to_python(
    inputs: LiteralMap | None,
    types: dict[str, type],
    *,
    served: bool,
    input_dirs: str = "",
    bounds: FrameBounds | None = None,
) -> dict[str, Any]:
    """Python values of the inputs present in ``inputs`` (absent optional inputs are left out), decoded only after
    :func:`check_raw` let them through (``input_dirs``: the operator's folders a served call may name files in).

    ``bounds``: a served call's Parquet data frame at a local path is refused before it is decoded when it holds more
    rows or columns, a column of a type that is not plain, a longer text value or more than :data:`MAX_FRAME_BYTES`
    once decoded (:func:`check_footers`; a 22 KB file of 600,000 rows, review R31b). A frame in an object store is
    downloaded and decoded by flytekit: the caller checks the decoded frame.

    A served call's inputs are copied and decoded in a worker thread, on an event loop of its own
    (:func:`_decoded_apart`): the service's loop keeps answering every other caller meanwhile (a mapped caller's frame
    of 256 MiB of text held it for seconds). A call made in the process itself (not served) is decoded on its loop."""
    frames = frozenset(k for k, t in types.items() if _is_frame(t))
    check_raw(inputs, served=served, frames=frames, input_dirs=input_dirs)
    if inputs is None or not inputs.literals:
        return {}
    ctx = FlyteContextManager.current_context()
    present = {k: t for k, t in types.items() if k in inputs.literals}
    if not served:
        return await literal_map_to_kwargs(ctx, inputs, python_types=present)
    if not input_dirs:
        return await _in_decode_pool(_decoded_apart, ctx, inputs, present)
    import shutil
    import tempfile

    private = Path(tempfile.mkdtemp(prefix="aios-connector-input-"))  # 0700, the service's own
    try:  # the copy in a worker thread: the event loop keeps answering every other caller meanwhile
        copies = await _in_decode_pool(_local_copies, inputs, frames, input_dirs, private, bounds)
        return await _in_decode_pool(_decoded_apart, ctx, copies, present)
    finally:
        shutil.rmtree(private, ignore_errors=True)


DECODE_THREADS = 2
"""Threads that copy, check and decode served calls' inputs, apart from the event loop's default pool (re-review R36:
seven calls naming slow inputs took all six of the default pool's threads on a 2-core host, and another caller's
identity check, which runs there too, waited 127 s)."""
_decode_pool: Any = None


async def _in_decode_pool(fn: Any, *args: Any) -> Any:
    """``fn(*args)`` in a thread of the decode pool (:data:`DECODE_THREADS`), in a copy of this task's context (as
    ``asyncio.to_thread`` does: flytekit's context is a context variable)."""
    import contextvars
    import functools
    from concurrent.futures import ThreadPoolExecutor

    global _decode_pool
    if _decode_pool is None:
        _decode_pool = ThreadPoolExecutor(DECODE_THREADS, thread_name_prefix="aios-connector-decode")
    call = functools.partial(contextvars.copy_context().run, fn, *args)
    return await asyncio.get_running_loop().run_in_executor(_decode_pool, call)


def _decoded_apart(ctx: Any, inputs: LiteralMap, present: dict[str, type]) -> dict[str, Any]:
    """``inputs`` decoded on an event loop of this worker thread's own (flytekit's decoders, a data frame's Parquet
    read and conversion included, run synchronously inside its coroutines: on the service's loop they stopped it)."""
    return asyncio.run(literal_map_to_kwargs(ctx, inputs, python_types=present))


def _local_copies(
    inputs: LiteralMap,
    frames: frozenset[str],
    input_dirs: str,
    private: Path,
    bounds: FrameBounds | None = None,
) -> LiteralMap:
    """``inputs`` with each data frame at a local path replaced by its :func:`private_copy` in ``private``, each
    Parquet copy within ``bounds`` (:func:`check_footers`)."""
    from flytekit.models.literals import Literal, Scalar, StructuredDataset

    dirs = _folders(input_dirs)
    literals = dict(inputs.literals)
    for name in sorted(frames & set(literals)):
        dataset = literals[name].scalar.structured_dataset
        if urlsplit(str(dataset.uri)).scheme.lower() not in ("file", ""):
            continue  # an object store's address (checked by check_raw)
        place = private / name
        place.mkdir(mode=0o700)
        copy = private_copy(_local_path(str(dataset.uri)), dirs, place)
        kind = str(dataset.metadata.structured_dataset_type.format or "parquet")
        try:
            if bounds is not None and kind == "parquet":
                check_footers(copy, bounds)
            elif bounds is not None and kind == "csv":  # no footer: its lines and bytes (re-review R35)
                check_lines(copy, bounds)
        except UnsafeInput:
            raise
        except Exception as e:  # (re-review R36: a malformed input escaped the checks unaudited, RecursionError)
            raise refuse(f"it could not be checked before decoding ({type(e).__name__})") from None
        literals[name] = Literal(scalar=Scalar(structured_dataset=StructuredDataset(str(copy), dataset.metadata)))
    return LiteralMap(literals)


@dataclass(frozen=True)
class FrameBounds:
    """What a served call's data frame may hold, as its connector sets it: rows, columns, characters of a text value."""

    rows: int
    columns: int
    cell: int


MAX_FRAME_BYTES = 256 * 1024 * 1024
"""Bytes a served call's data frame may hold once decoded: its Parquet pages uncompressed (as their own headers say,
which is what the decoder allocates), and its text values as they will be expanded (a value a dictionary holds once
counts once a row that names it)."""
MAX_FOOTER_BYTES = 8 * 1024 * 1024
"""Bytes of Parquet footers a served call's data frame may hold, all its files together, checked before a footer is
parsed (re-review R35: 50,000 one-row row groups made a 340 MB file whose footer alone took 3 GB to read)."""
MAX_COLUMN_CHUNKS = 4096
"""Column chunks (row groups times columns, each file counting one row group at least) a served call's data frame may
hold: a frame of 50,000 rows is one row group a file as pandas and Flyte write it. Re-review R35: 20,000 row groups of
no rows at all (70 MB) took the service to 6.7 GB, and 10,000 of one row to 3.3 GB, however few their rows."""
MAX_PAGES = 65_536
"""Pages a served call's data frame may hold, all its column chunks together (each page's header is read before the
frame is decoded)."""


def _plain_type(t: Any) -> bool:
    """Whether the Arrow type ``t`` is one a served frame's column may have: text, bytes (a dictionary of them too),
    integers, floating point numbers, booleans, nulls or timestamps. Everything else (lists, structs, maps, string
    views, extension types such as JSON or tensors) is refused before it is decoded."""
    import pyarrow as pa

    simple = (pa.types.is_integer, pa.types.is_floating, pa.types.is_boolean, pa.types.is_null, pa.types.is_timestamp)
    return not isinstance(t, pa.ExtensionType) and (_text_type(t) or any(k(t) for k in simple))


def _text_type(t: Any) -> bool:
    """Whether the Arrow type ``t`` holds text or bytes (a dictionary of them too): what decoding can expand."""
    import pyarrow as pa

    if pa.types.is_dictionary(t):
        return _text_type(t.value_type)
    kinds = (pa.types.is_string, pa.types.is_large_string, pa.types.is_binary, pa.types.is_large_binary)
    return any(k(t) for k in (*kinds, pa.types.is_fixed_size_binary))


def check_footers(copy: Path, bounds: FrameBounds) -> None:
    """Refuse the private copy of a served data frame (a Parquet file, or a folder of them) before it is decoded: more
    rows or columns than ``bounds`` allow, a column of a type that is not plain (:func:`_plain_type`), a text value of
    more than ``bounds.cell`` characters (4 bytes each at most), or more than :data:`MAX_FRAME_BYTES` bytes once
    decoded (a footer of 50,000 rows of thousands of constant integer columns counted 1.5 MB and decoded to 2.4 GB,
    re-review R33).

    Read from the footers, then from the text columns kept dictionary-encoded (their lengths summed a row at a time,
    never expanded): the footers' sizes count a dictionary's value once, and a 1.2 KB file of 2,000 rows naming one
    8 MiB value expanded to 16.8 GB in the decoder; one-element lists carried long text past the decoded frame's bound
    of a cell (re-review R32a)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    files = _frame_files(copy)
    rows = size = decoded = footers = chunks = 0
    pages = _Pages()
    for f in files:
        footers += _footer_length(f)
        if footers > MAX_FOOTER_BYTES:  # before a footer is parsed: parsing it is what costs
            raise refuse(f"its Parquet footers take more than {MAX_FOOTER_BYTES} bytes; split it")
        try:
            parquet = pq.ParquetFile(f)
            meta, schema = parquet.metadata, parquet.schema_arrow
        except Exception as e:  # not Parquet: the decoder would fail on it the same way
            raise refuse(f"{f.name!r} is not a Parquet file") from e
        # every row group costs the decoder, an empty one too (re-review R35)
        chunks += max(1, meta.num_row_groups) * max(1, meta.num_columns)
        if chunks > MAX_COLUMN_CHUNKS:
            raise refuse(
                f"it holds more than {MAX_COLUMN_CHUNKS} column chunks (row groups times columns); write it as one "
                "row group a file"
            )
        groups = [meta.row_group(i) for i in range(meta.num_row_groups)]
        # the row groups' counts, which the decoder reads, not the file's own (re-review R34: a file claiming 1 row
        # held row groups of 67 million rows of nulls, 6.4 GB once decoded)
        rows += max(meta.num_rows, sum(g.num_rows for g in groups))
        size += sum(g.total_byte_size for g in groups)
        if rows > bounds.rows or size > MAX_FRAME_BYTES:
            raise refuse(
                f"its footers count more than {bounds.rows} rows or {MAX_FRAME_BYTES} bytes uncompressed; split it"
            )
        if len(schema.names) > bounds.columns:
            raise refuse(f"it has {len(schema.names)} columns; a served frame has at most {bounds.columns}")
        # the pages' own sizes, which the decoder allocates, not the footer's (re-review R35: a footer forged to say
        # 134 MB over a page of 1 GB compressed to 31 KB took the service to 4.1 GB before the text was measured)
        pages.walk(f, groups)
        odd = [(n, t) for n, t in zip(schema.names, schema.types, strict=True) if not _plain_type(t)]
        if odd:  # (re-review R33: extension types, string views and tensors passed the check of nested types)
            name, kind = odd[0]
            raise refuse(
                f"column {name[:64]!r} is of type {str(kind)[:64]}: a row holds plain text, numbers or booleans"
            )
        text = [n for n, t in zip(schema.names, schema.types, strict=True) if _text_type(t)]
        if not text:
            continue
        try:
            kept = pq.ParquetFile(f, read_dictionary=text)
            for batch in kept.iter_batches(batch_size=8192, columns=text):
                for column in batch.columns:
                    if isinstance(column, pa.DictionaryArray):
                        lengths = pc.take(pc.binary_length(column.dictionary.cast(pa.large_binary())), column.indices)
                    else:
                        lengths = pc.binary_length(column.cast(pa.large_binary()))
                    longest, total = pc.max(lengths).as_py() or 0, pc.sum(lengths).as_py() or 0
                    decoded += total
                    if longest > 4 * bounds.cell:
                        why = (
                            f"it holds a value of {longest} bytes; a row's values are at most {bounds.cell} characters"
                        )
                        raise refuse(why)
                    if decoded > MAX_FRAME_BYTES:
                        raise refuse(f"its text would take more than {MAX_FRAME_BYTES} bytes once decoded; split it")
        except pa.ArrowException as e:  # a page the reader cannot read: nothing of it is decoded further
            raise refuse(f"its text columns could not be measured ({type(e).__name__})") from None


def check_lines(copy: Path, bounds: FrameBounds) -> None:
    """Refuse the private copy of a served CSV data frame (a file, or a folder of them) before it is decoded: more than
    :data:`MAX_FRAME_BYTES` bytes, more lines than ``bounds.rows`` and a header each (a line ends at ``\\n``, ``\\r`` or
    ``\\r\\n``, as the decoder reads it; a quoted value's line breaks count too), or a header of more than
    ``bounds.columns`` fields. Re-review R35: a 64 MB file of 1,000,000 rows of empty cells was decoded (1.3 GB) before
    its rows were counted; R36: lines ending at ``\\r`` alone were not counted (8 MB of them: 4.2 GB)."""
    import csv

    files = _frame_files(copy)
    size = lines = 0
    most = bounds.rows + len(files)
    for f in files:
        size += f.stat().st_size
        if size > MAX_FRAME_BYTES:
            raise refuse(f"its CSV files hold more than {MAX_FRAME_BYTES} bytes; split it")
        with open(f, "rb") as fh:
            head = fh.read(1 << 20)
            chunk, cr_before = head, False
            while chunk:
                lines += chunk.count(b"\n") + chunk.count(b"\r") - chunk.count(b"\r\n")
                lines -= cr_before and chunk.startswith(b"\n")  # a \r\n split between two reads is one end
                cr_before = chunk.endswith(b"\r")
                if lines > most:
                    raise refuse(f"its CSV files hold more than {bounds.rows} rows (lines); split it")
                chunk = fh.read(1 << 20)
        first = head.splitlines()[0] if head else b""
        if b'"' in first:  # (re-review R37: a quoted line break in the header hid 5,000 columns after it)
            raise refuse("its header line holds a quote: name the columns without quotes or line breaks")
        try:
            header = next(csv.reader([first.decode("utf-8", "replace")]), [])
        except csv.Error as e:  # (re-review R36: it escaped as another error, unaudited)
            raise refuse(f"its header line could not be read as CSV ({e})") from None
        if len(header) > bounds.columns:
            raise refuse(f"it has {len(header)} columns; a served frame has at most {bounds.columns}")


def _frame_files(copy: Path) -> list[Path]:
    """The files of a served frame's private copy: the file itself, or every file under the folder, in order."""
    return [copy] if copy.is_file() else sorted(p for p in copy.rglob("*") if p.is_file())


def _footer_length(f: Path) -> int:
    """The length of Parquet file ``f``'s footer, read from its last 8 bytes (before the footer is parsed)."""
    with open(f, "rb") as fh:
        end = fh.seek(0, 2)
        if end < 12:
            raise refuse(f"{f.name!r} is not a Parquet file")
        fh.seek(end - 8)
        tail = fh.read(8)
    if tail[4:] != b"PAR1":  # (an encrypted footer, PARE, is refused too: it cannot be checked)
        raise refuse(f"{f.name!r} is not a Parquet file with a plain footer")
    length = int.from_bytes(tail[:4], "little")
    if length > end - 12:
        raise refuse(f"{f.name!r} is not a Parquet file (its footer is longer than the file)")
    return length


MAX_PAGE_HEADER = 16 * 1024
"""Bytes one Parquet page header may take (a header holds sizes, encodings and, at most, a page's statistics)."""
MAX_PAGE_HEADERS = 4 * 1024 * 1024
"""Bytes of page headers a served call's data frame may hold, all its pages together: they are read in Python before
the frame is decoded (re-review R36: 4,096 column chunks pointing at the same 64 KiB header took 141 s of CPU)."""


class _Pages:
    """Walks a Parquet file's pages as the decoder reads them (each column chunk from its dictionary page, or its
    first data page, through its compressed length), reading each page's Thrift header (compact protocol, read as
    Thrift's own reader reads it) and summing the uncompressed sizes it gives: the decoder allocates that much for
    each page before it decompresses it, whatever the footer says. The column chunks must not overlap, and their pages
    must end exactly where their chunk does; anything else is refused (re-review R36: overlapping chunks made the
    walk read one header thousands of times, and a size read otherwise than Thrift reads it jumped the walk past a
    page the decoder then read)."""

    def __init__(self) -> None:
        self.count = self.total = self.headers = 0

    def walk(self, f: Path, groups: list[Any]) -> None:
        from itertools import pairwise

        with open(f, "rb") as fh:
            end = fh.seek(0, 2)
            ranges = []
            for g in groups:
                for i in range(g.num_columns):
                    c = g.column(i)
                    start = c.data_page_offset
                    if c.has_dictionary_page and c.dictionary_page_offset and c.dictionary_page_offset > 0:
                        start = min(start, c.dictionary_page_offset)
                    length = c.total_compressed_size
                    if start < 4 or length < 0 or start + length > end - 8:
                        raise refuse("a column chunk lies outside its file: it is not a Parquet file as written")
                    ranges.append((start, start + length))
            ranges.sort()
            for (_, stop), (start, _) in pairwise(ranges):
                if start < stop:
                    raise refuse("two of its column chunks overlap: it is not a Parquet file as written")
            for start, stop in ranges:
                self._chunk(fh, start, stop)

    def _chunk(self, fh: Any, pos: int, stop: int) -> None:
        """Every page of the column chunk from ``pos`` to ``stop``, counted and its uncompressed size summed."""
        while pos < stop:
            uncompressed, compressed, after = self._header(fh, pos)
            self.count += 1
            self.total += uncompressed
            self.headers += after - pos
            if self.count > MAX_PAGES:
                raise refuse(f"it holds more than {MAX_PAGES} pages; write it with fewer, larger ones")
            if self.total > MAX_FRAME_BYTES:
                raise refuse(f"its pages take more than {MAX_FRAME_BYTES} bytes uncompressed; split it")
            if self.headers > MAX_PAGE_HEADERS:
                raise refuse(f"its page headers take more than {MAX_PAGE_HEADERS} bytes; write fewer pages")
            if uncompressed < 0 or compressed < 0:
                raise refuse("a page header gives a negative size: it is not a Parquet page")
            pos = after + compressed
        if pos != stop:  # (the decoder reads a chunk's pages until its values are read, inside the chunk)
            raise refuse("a column chunk's pages do not end where the chunk does: it is not a Parquet file as written")

    def _header(self, fh: Any, pos: int) -> tuple[int, int, int]:
        """(uncompressed size, compressed size, offset after the header) of the page header at ``pos``."""
        fh.seek(pos)
        reader = _Compact(fh.read(MAX_PAGE_HEADER))
        fields = reader.struct(top=True)
        uncompressed, compressed = fields.get(2), fields.get(3)
        if uncompressed is None or compressed is None:  # (Thrift's reader refuses a header without them)
            raise refuse("a page header gives no sizes: it is not a Parquet page")
        return uncompressed, compressed, pos + reader.at


def _int(n: int, bits: int) -> int:
    """``n`` cast to a signed integer of ``bits`` bits, as C++ casts it (Thrift's reader, Arrow's)."""
    n &= (1 << bits) - 1
    return n - (1 << bits) if n >> (bits - 1) else n


class _Compact:
    """Thrift's compact protocol, read exactly as Thrift's C++ reader (Arrow's) reads it, for a Parquet page header:
    varints cut to 32 bits before they are unzigzagged, 16-bit field ids (a long-form id cut to 16 bits, a delta added
    and wrapped in 16 bits), a boolean in a list, set or map one byte, a field of another type than its declared one
    skipped; nesting of every kind counted. The header's own fields must have the plain layout every writer gives them
    (short-form ids from 1 to 8, increasing, no repeats), else it is refused: re-reviews R36 and R37 had a size read
    otherwise than Thrift reads it (bit 33 set, a long-form or wrapping field id, booleans in a map) jump the walk
    past a page the decoder then read. A header is at most :data:`MAX_PAGE_HEADER` bytes here."""

    I32 = 5

    def __init__(self, data: bytes) -> None:
        self.data, self.at, self.depth = data, 0, 0

    def byte(self) -> int:
        if self.at >= len(self.data):
            raise refuse(f"a page header runs past {MAX_PAGE_HEADER} bytes or the file's end")
        b = self.data[self.at]
        self.at += 1
        return b

    def varint(self) -> int:
        n = shift = 0
        while True:
            b = self.byte()
            n |= (b & 0x7F) << shift
            if not b & 0x80:
                return n
            shift += 7
            if shift > 63:
                raise refuse("a page header holds a malformed number")

    def zigzag(self, bits: int) -> int:
        """A zigzag varint of ``bits`` (16, 32 or 64) as Thrift reads one: 16 and 32 bits from a varint cut to 32."""
        n = self.varint() & ((1 << (64 if bits == 64 else 32)) - 1)
        return _int((n >> 1) ^ -(n & 1), bits)

    def size(self) -> int:
        n = _int(self.varint(), 32)
        if n < 0:
            raise refuse("a page header holds a negative size: it is not a Parquet page")
        return n

    def value(self, kind: int, element: bool = False) -> int | None:
        """Read (integers) or skip (everything else) one value of compact type ``kind``; ``element``: inside a list,
        set or map, where a boolean is a byte of its own (a field's is in its type)."""
        if kind in (1, 2):
            if element:
                self.byte()
            return None
        if kind == 3:
            self.byte()
        elif kind == 4:
            return self.zigzag(16)
        elif kind == self.I32:
            return self.zigzag(32)
        elif kind == 6:
            return self.zigzag(64)
        elif kind == 7:
            self.skip(8)
        elif kind == 8:
            self.skip(self.size())
        elif kind in (9, 10, 11, 12):
            self.nested(kind)
        else:
            raise refuse("a page header holds a value of no Thrift type: it is not a Parquet page")
        return None

    def nested(self, kind: int) -> None:
        """Skip one list, set, map or struct, counting its nesting."""
        self.depth += 1
        if self.depth > 16:
            raise refuse("a page header is nested too deep")
        if kind == 12:
            self.struct()
        elif kind == 11:
            size = self.size()
            types = self.byte() if size else 0
            for _ in range(size):
                self.value(types >> 4, element=True)
                self.value(types & 0x0F, element=True)
        else:
            head = self.byte()
            size, element = head >> 4, head & 0x0F
            if size == 15:
                size = self.size()
            for _ in range(size):
                self.value(element, element=True)
        self.depth -= 1

    def skip(self, n: int) -> None:
        if n < 0 or self.at + n > len(self.data):
            raise refuse(f"a page header runs past {MAX_PAGE_HEADER} bytes or the file's end")
        self.at += n

    def struct(self, top: bool = False) -> dict[int, int]:
        fields: dict[int, int] = {}
        field = 0
        while True:
            head = self.byte()
            kind = head & 0x0F
            if kind == 0:
                return fields
            delta = head >> 4
            if top and (not delta or field + delta > 8):  # short form only: ids increase by its delta
                raise refuse("a page header's fields are not laid out as a writer lays them out: not a Parquet page")
            field = _int(field + delta, 16) if delta else self.zigzag(16)
            got = self.value(kind)
            if top and kind == self.I32 and got is not None:  # the page sizes are i32: another type is skipped
                fields[field] = got


def _folders(input_dirs: str) -> list[Path]:
    """The operator's input folders (``Settings.connector_input_dirs``) as written: trusted, links and all."""
    import os

    return [Path(os.path.normpath(d.strip())) for d in input_dirs.split(",") if d.strip()]


def _is_frame(t: Any) -> bool:
    """Whether an input type is a data frame or a structured dataset (decoded from a URI)."""
    from flytekit.types.structured import StructuredDataset

    return isinstance(t, type) and (issubclass(t, StructuredDataset) or t.__module__.startswith("pandas"))


async def to_literals(values: dict[str, Any], types: dict[str, type]) -> LiteralMap:
    """A literal map of ``values`` typed by ``types`` (so empty lists keep their element type)."""
    ctx = FlyteContextManager.current_context()
    return await dict_to_literal_map(ctx, values, type_hints=types)
