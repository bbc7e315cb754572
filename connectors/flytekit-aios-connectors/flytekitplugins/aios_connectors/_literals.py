"""Typed conversion between Flyte literal maps and Python values, for connectors (async, no event-loop nesting)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flytekit import FlyteContextManager
from flytekit.models.literals import LiteralMap

from flytekitplugins.aios.compat.flytekit import dict_to_literal_map, literal_map_to_kwargs

SERVED_SCHEMES = ("s3", "gs", "abfs", "abfss", "file", "")
"""Where a served call's file inputs (a data frame's Parquet, a blob) may be read from: the object stores Flyte keeps
a run's data in, or a path of the service's own file system (a sandbox's shared volume). Anything else (an
``http://`` address inside the cluster, an FTP server) is a place the caller chose for the service to fetch from with
its own network reach."""


class UnsafeInput(ValueError):
    """An input literal the connector will not decode (it would run or fetch what its caller chose)."""


def check_raw(inputs: LiteralMap | None, *, served: bool) -> None:
    """Refuse, before anything is decoded, input literals whose decoding runs or fetches what the caller chose.

    Decoding is flytekit's type engine: a dictionary input carrying literal metadata ``format: pickle`` is downloaded
    from the URI it names and unpickled (code of the caller's choosing ran in the connector service, before the
    caller's identity was established), and an offloaded literal or a data frame's URI is fetched from wherever it
    points. Refused: offloaded literals, any literal metadata but ``format: json`` / ``msgpack``, binary scalars
    other than msgpack, and in a served call (``served``) file inputs outside :data:`SERVED_SCHEMES`.

    Raises:
        UnsafeInput: naming the input, never its value.
    """
    for name, literal in (inputs.literals if inputs is not None else {}).items():
        _check(name, literal, served, 0)


def _check(name: str, literal: Any, served: bool, depth: int) -> None:
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
            _check(name, item, served, depth + 1)
    if literal.map is not None:
        for item in (literal.map.literals or {}).values():
            _check(name, item, served, depth + 1)
    scalar = literal.scalar
    if scalar is None:
        return
    if scalar.union is not None:
        _check(name, scalar.union.value, served, depth + 1)
    if scalar.binary is not None and scalar.binary.tag != "msgpack":
        raise UnsafeInput(f"input {name!r} is a binary literal other than msgpack")
    uri = scalar.blob.uri if scalar.blob is not None else None
    uri = scalar.structured_dataset.uri if scalar.structured_dataset is not None else uri
    uri = scalar.schema.uri if scalar.schema is not None else uri
    if uri is not None and served and urlsplit(str(uri)).scheme.lower() not in SERVED_SCHEMES:
        raise UnsafeInput(
            f"input {name!r} names a file outside the object stores and local paths a served connector reads "
            f"({', '.join(x for x in SERVED_SCHEMES if x)})"
        )


async def to_python(inputs: LiteralMap | None, types: dict[str, type], *, served: bool) -> dict[str, Any]:
    """Python values of the inputs present in ``inputs`` (absent optional inputs are left out), decoded only after
    :func:`check_raw` let them through."""
    check_raw(inputs, served=served)
    if inputs is None or not inputs.literals:
        return {}
    ctx = FlyteContextManager.current_context()
    present = {k: t for k, t in types.items() if k in inputs.literals}
    return await literal_map_to_kwargs(ctx, inputs, python_types=present)


async def to_literals(values: dict[str, Any], types: dict[str, type]) -> LiteralMap:
    """A literal map of ``values`` typed by ``types`` (so empty lists keep their element type)."""
    ctx = FlyteContextManager.current_context()
    return await dict_to_literal_map(ctx, values, type_hints=types)
