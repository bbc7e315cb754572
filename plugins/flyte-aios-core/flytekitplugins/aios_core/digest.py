"""Canonical serialization and content digests.

Digests are ``sha256:<hex>`` over a canonical JSON encoding (sorted keys, no insignificant
whitespace, UTF-8), so the same value gives the same digest in every process and on every machine.
Files are digested by content, data frames by schema plus a SHA-256 of their values, pydantic models and
dataclasses by their field values.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import hashlib
import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

_CHUNK = 1 << 20


def digest_bytes(data: bytes) -> str:
    """Return ``sha256:<hex>`` of raw bytes."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def digest_file(path: str | os.PathLike[str]) -> str:
    """Return the content digest of a local file, streamed in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def _normalize(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return {"$float": repr(value)}
        return value
    if isinstance(value, bytes):
        return {"$bytes": digest_bytes(value)}
    if isinstance(value, enum.Enum):
        return _normalize(value.value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return {"$seconds": value.total_seconds()}
    if isinstance(value, Path):
        return {"$file": digest_file(value)} if value.is_file() else str(value)
    if isinstance(value, Mapping):
        return {str(k): _normalize(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_normalize(v) for v in value]
    if isinstance(value, set | frozenset):
        return sorted((_normalize(v) for v in value), key=lambda x: json.dumps(x, sort_keys=True))
    model_dump = getattr(value, "model_dump", None)
    if callable(model_dump):
        return _normalize(model_dump(mode="json"))
    if type(value).__name__ in {"FlyteFile", "FlyteDirectory"}:
        return _normalize_special(value)  # by content, not by their (temporary) local paths
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _normalize({f.name: getattr(value, f.name) for f in dataclasses.fields(value)})
    return _normalize_special(value)


def _normalize_special(value: Any) -> Any:
    """Data frames, Flyte files/directories and numpy values, imported lazily."""
    cls = type(value)
    mod = cls.__module__
    if mod.startswith("pandas") and cls.__name__ == "DataFrame":
        schema = [[str(c), str(t)] for c, t in value.dtypes.items()]
        return {"$dataframe": {"schema": schema, "rows": len(value), "content": frame_content(value)}}
    if mod.startswith("numpy"):
        tolist = getattr(value, "tolist", None)
        if callable(tolist):
            return _normalize(tolist())
    if cls.__name__ in {"FlyteFile", "FlyteDirectory"}:
        download = getattr(value, "download", None)
        local = download() if callable(download) else getattr(value, "path", "")
        return _normalize_path(Path(str(local)))
    msg = (
        f"cannot digest a value of type {cls.__module__}.{cls.__qualname__}; "
        "pass JSON-like data, a pydantic model, a dataclass, a file or a DataFrame"
    )
    raise TypeError(msg)


def frame_content(frame: Any) -> str:
    """SHA-256 of a data frame's values, column by column in order (the index left out), each value encoded so that
    no two different columns give the same bytes.

    It was the SHA-256 of pandas' per-row ``hash_pandas_object``, a 64-bit hash built to bucket rows, not to bind
    them: a float column's hash can be run backwards and the columns' combination undone, so a held-out table with 71
    labels changed and its ``score`` column set to compensate had the sealed table's digest, and an evaluation on it
    was promoted (review of 2026-12-05, evaluation finding 1).
    """
    h = hashlib.sha256(len(frame).to_bytes(8, "little"))
    for name, column in frame.items():
        _column_into(h, name, column)
    return "sha256:" + h.hexdigest()


def _column_into(h: Any, name: Any, column: Any) -> None:
    """Feed one column to ``h``: its name (with its type: ``1`` is not ``"1"``) and dtype (a categorical's categories
    and order too), then its values (fixed-width numbers as little-endian bytes with one NaN, text as 64-bit offsets
    and UTF-8, anything else value by value, each tagged with its type)."""
    import numpy as np

    dtype = column.dtype
    kind = f"{dtype}"
    if getattr(dtype, "name", "") == "category":
        kind += f"\x00{canonical_json([str(c) for c in dtype.categories])!r}\x00ordered={dtype.ordered}"
    label = f"{type(name).__name__}\x00{name}\x00{kind}".encode("utf-8", "surrogatepass")
    h.update(len(label).to_bytes(8, "little") + label)
    if isinstance(dtype, np.dtype) and dtype.kind in "biufcmM":
        values = column.to_numpy()
        if dtype.kind in "mM":
            values = values.view("i8")
        elif dtype.kind in "fc":
            values = np.where(np.isnan(values), np.nan, values)  # every NaN as one bit pattern
        h.update(b"N" + np.ascontiguousarray(values).astype(values.dtype.newbyteorder("<"), copy=False).tobytes())
        return
    values = column.to_numpy(dtype=object)
    if not _strings_into(h, values):
        h.update(b"V")
        for v in values:
            h.update(_value_bytes(v))


def _strings_into(h: Any, values: Any) -> bool:
    """Feed an all-``str`` column as Arrow's large-string layout (offsets, then the UTF-8 bytes); False for any
    other column (a missing value, another type, text Arrow cannot hold), which is then fed value by value."""
    import pandas as pd

    if len(values) == 0 or pd.api.types.infer_dtype(values, skipna=False) != "string":
        return False
    import pyarrow as pa

    try:
        arr = pa.array(values, type=pa.large_string())
    except (pa.ArrowException, UnicodeError):
        return False
    _validity, offsets, data = arr.buffers()
    n = len(arr)
    ends = memoryview(offsets)[: (n + 1) * 8]
    last = int.from_bytes(bytes(ends[-8:]), "little")
    h.update(b"S" + bytes(ends) + (bytes(memoryview(data)[:last]) if data is not None else b""))
    return True


def _value_bytes(v: Any) -> bytes:
    """One value of a mixed column, tagged with its type and length-prefixed where its length varies."""
    if v is None or (isinstance(v, float) and math.isnan(v)) or type(v).__name__ in {"NAType", "NaTType"}:
        return b"n"
    if isinstance(v, str):
        b = v.encode("utf-8", "surrogatepass")
        return b"s" + len(b).to_bytes(8, "little") + b
    if isinstance(v, bool):
        return b"b1" if v else b"b0"
    if isinstance(v, int):
        b = str(v).encode()
        return b"i" + len(b).to_bytes(8, "little") + b
    if isinstance(v, float):
        b = v.hex().encode()
        return b"f" + len(b).to_bytes(8, "little") + b
    if isinstance(v, bytes):
        return b"y" + len(v).to_bytes(8, "little") + v
    b = canonical_json(v)
    tag = b"t" if isinstance(v, tuple) else b"j"  # a tuple and a list are one JSON array
    return tag + len(b).to_bytes(8, "little") + b


def _normalize_path(p: Path) -> Any:
    if p.is_file():
        return {"$file": digest_file(p)}
    if p.is_dir():
        entries = {str(f.relative_to(p)): digest_file(f) for f in sorted(p.rglob("*")) if f.is_file()}
        return {"$dir": entries}
    return {"$uri": str(p)}


def canonical_json(value: Any) -> bytes:
    """Canonical JSON bytes of ``value`` (sorted keys, compact separators, UTF-8)."""
    return json.dumps(_normalize(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def digest_value(value: Any) -> str:
    """Content digest of any supported value; stable across processes for equal values."""
    return digest_bytes(canonical_json(value))
