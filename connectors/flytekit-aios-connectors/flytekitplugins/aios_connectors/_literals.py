"""Typed conversion between Flyte literal maps and Python values, for connectors (async, no event-loop nesting)."""

from __future__ import annotations

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
    dirs = [Path(d).resolve() for d in input_dirs.split(",") if d.strip()] if served else []
    for name, literal in (inputs.literals if inputs is not None else {}).items():
        _check(name, literal, served, dirs, 0)
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
            _check(name, item, served, dirs, depth + 1)
    if literal.map is not None:
        for item in (literal.map.literals or {}).values():
            _check(name, item, served, dirs, depth + 1)
    scalar = literal.scalar
    if scalar is None:
        return
    if scalar.union is not None:
        _check(name, scalar.union.value, served, dirs, depth + 1)
    if scalar.binary is not None and scalar.binary.tag != "msgpack":
        raise UnsafeInput(f"input {name!r} is a binary literal other than msgpack")
    uri = scalar.blob.uri if scalar.blob is not None else None
    uri = scalar.structured_dataset.uri if scalar.structured_dataset is not None else uri
    uri = scalar.schema.uri if scalar.schema is not None else uri
    if uri is not None and served:
        _check_served_uri(name, str(uri), dirs)


MAX_LOCAL_FILES = 10_000
"""Files a served call's local folder input may hold (a data frame's Parquet parts)."""


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
    if scheme in ("file", "") and not parts.netloc and dirs and _local_input(Path(parts.path if scheme else uri), dirs):
        return
    where = ", ".join(SERVED_SCHEMES) + (" and the service's input folders" if dirs else "")
    raise UnsafeInput(f"input {name!r} names a file outside the object stores ({where}) a served connector reads")


def _local_input(path: Path, dirs: list[Path]) -> bool:
    """Whether ``path`` is, under one of ``dirs``, a regular file or a folder holding only folders and regular files
    (at most :data:`MAX_LOCAL_FILES`), with no symbolic link in it. The decoders read what a folder holds (every
    Parquet part, or ``<folder>/.csv``): a link there to ``/etc/passwd`` or to a file outside the folders was read,
    and a named pipe held the service's event loop, every caller's, until someone wrote to it (review of
    2026-12-06)."""
    import os
    import stat

    real = path.resolve()
    if not any(real == d or d in real.parents for d in dirs) or path.is_symlink():
        return False
    try:
        mode = os.lstat(real).st_mode
        if stat.S_ISREG(mode):
            return True
        if not stat.S_ISDIR(mode):
            return False
        seen = 0
        for root, folders, files in os.walk(real, followlinks=False):
            for entry in [*folders, *files]:
                seen += 1
                kind = os.lstat(os.path.join(root, entry)).st_mode
                if seen > MAX_LOCAL_FILES or not (stat.S_ISDIR(kind) or stat.S_ISREG(kind)):
                    return False
    except OSError:
        return False
    return True


async def to_python(
    inputs: LiteralMap | None, types: dict[str, type], *, served: bool, input_dirs: str = ""
) -> dict[str, Any]:
    """Python values of the inputs present in ``inputs`` (absent optional inputs are left out), decoded only after
    :func:`check_raw` let them through (``input_dirs``: the operator's folders a served call may name files in)."""
    frames = frozenset(k for k, t in types.items() if _is_frame(t))
    check_raw(inputs, served=served, frames=frames, input_dirs=input_dirs)
    if inputs is None or not inputs.literals:
        return {}
    ctx = FlyteContextManager.current_context()
    present = {k: t for k, t in types.items() if k in inputs.literals}
    return await literal_map_to_kwargs(ctx, inputs, python_types=present)


def _is_frame(t: Any) -> bool:
    """Whether an input type is a data frame or a structured dataset (decoded from a URI)."""
    from flytekit.types.structured import StructuredDataset

    return isinstance(t, type) and (issubclass(t, StructuredDataset) or t.__module__.startswith("pandas"))


async def to_literals(values: dict[str, Any], types: dict[str, type]) -> LiteralMap:
    """A literal map of ``values`` typed by ``types`` (so empty lists keep their element type)."""
    ctx = FlyteContextManager.current_context()
    return await dict_to_literal_map(ctx, values, type_hints=types)
