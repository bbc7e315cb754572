"""Canonical serialization and content digests.

Digests are ``sha256:<hex>`` over a canonical JSON encoding (sorted keys, no insignificant
whitespace, UTF-8), so the same value gives the same digest in every process and on every machine.
Files are digested by content, data frames by schema plus row hashes, pydantic models and
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
        import pandas as pd

        row_hashes = pd.util.hash_pandas_object(value, index=False).to_numpy().tobytes()
        schema = [[str(c), str(t)] for c, t in value.dtypes.items()]
        return {"$dataframe": {"schema": schema, "rows": len(value), "content": digest_bytes(row_hashes)}}
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
