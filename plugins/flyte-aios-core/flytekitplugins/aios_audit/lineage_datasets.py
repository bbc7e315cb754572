"""Datasets of a task attempt by the OpenLineage naming spec, and the pack's JSON-lines file transport.

Only values with a storage location are datasets (FlyteFile, FlyteDirectory, StructuredDataset, a data URI
string): ``file`` + absolute path, ``s3://bucket`` + key (``gs``, ``abfss``, ``wasbs``, ``hdfs`` alike),
``postgres://host:port`` + ``db.schema.table``; never the userinfo of a URL, nor a piece of any secret the pack's
redaction masks in it (a URL whose secret might remain in the name names no dataset). Each carries a ``dataSource``
facet, a ``schema`` facet for data frames and a ``version`` facet holding the content digest of the audit log.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, urlsplit

import orjson
from openlineage.client.facet_v2 import dataset_version_dataset, datasource_dataset, schema_dataset
from openlineage.client.serde import Serde
from openlineage.client.transport.transport import Transport

from flytekitplugins.aios_audit.private_files import open_append, private_dir
from flytekitplugins.aios_core.redact import _mask_one_url

PRODUCER = "https://github.com/flyte-aios/flyte-aios/tree/main/plugins/flyte-aios-core/flytekitplugins/aios_audit"
_DATA_SCHEMES = ("s3", "s3a", "gs", "gcs", "abfs", "abfss", "wasbs", "file", "postgres", "postgresql", "hdfs")
_MIN_SECRET = 4  # shorter pieces of a secret would match ordinary host and table names


@dataclasses.dataclass(frozen=True)
class DatasetRef:
    """A dataset by the OpenLineage naming spec, with what is known of it when the task sees it."""

    namespace: str
    name: str
    fields: tuple[tuple[str, str], ...] = ()
    digest: str = ""


def locate(value: Any) -> tuple[str, str] | None:
    """(namespace, name) of a value that has a storage location, by the OpenLineage naming spec, else None: also
    None where a piece of a secret the URL holds would remain in either (:func:`_secret_pieces`)."""
    uri = ""
    if type(value).__name__ in ("FlyteFile", "FlyteDirectory"):
        uri = str(getattr(value, "remote_source", None) or getattr(value, "path", "") or "")
    elif type(value).__name__ == "StructuredDataset":
        uri = str(getattr(value, "uri", None) or "")
    elif isinstance(value, str) and "://" in value[:16] and len(value) < 2048:
        uri = value
    if not uri:
        return None
    if "://" not in uri:
        return "file", str(Path(uri).absolute())
    scheme = uri.partition("://")[0].lower()
    if scheme not in _DATA_SCHEMES:
        return None
    try:
        found = _without_password(uri)  # file URLs too: file://user:pw/x@host/path left "/x@host/path" as the name
        if found is None:
            return None
        parts, pieces = found
        port = parts.port  # a port that does not parse is a userinfo read wrong: no dataset, never an error
    except ValueError:  # urllib's messages quote the URL ("... cast to integer value as 'PW'"): none goes on
        return None
    host = parts.hostname or ""  # never the userinfo: no credentials in dataset names
    if scheme == "file":
        where = "file", parts.path
    elif scheme in ("postgres", "postgresql"):
        where = f"postgres://{host}:{port or 5432}", parts.path.strip("/").replace("/", ".")
    else:
        where = f"{scheme}://{host}", parts.path.lstrip("/")
    if any(piece in part.lower() for piece in pieces for part in where):
        return None  # a piece of a secret in the name: the URL is not read as its driver reads it
    return where


def _without_password(uri: str) -> tuple[SplitResult, set[str]] | None:
    """``uri`` split by urllib once its password is masked where the pack's redaction finds it (the userinfo runs to
    the last "@" before the query, see :func:`.redact._mask_one_url`), so a "#", "?", "/" or "@" in a password
    cannot end the authority early and leave part of it as the host or port; and the pieces of every secret the
    redaction masks in it (:func:`_secret_pieces`). None when the authority may still be a userinfo cut short: a
    "host:port" with an "@" after it (``user:1/x?y@host``), or any "@" after the authority of a URL holding a secret
    (``reader:Spring@Winter?Leaves@host``: the parse stops the password at ``Spring``, the redaction's free-text
    reading and a driver's may not; review R8)."""
    found = _mask_one_url(uri)
    if found is None:
        return None
    masked, secrets = found
    parts = urlsplit(masked)
    after = masked.partition("://")[2][len(parts.netloc) :]
    if ":" in parts.netloc and "@" not in parts.netloc and _stray_at(after):
        return None
    if secrets and _stray_at(after):
        return None
    # the secrets of the authority and the query (what a driver reads as credentials): the free-text patterns over a
    # path also took a Hive partition's ``passenger_count=1/part-00000.parquet`` or a file named for an e-mail address
    # as secrets, and every such dataset was lost (re-review R10b)
    return parts, _secret_pieces(secrets, masked.rpartition("@")[2])


def _stray_at(after: str) -> bool:
    """Whether an "@" after the authority may end a userinfo cut short: one in the path, or in a query part that is
    not a ``name=value`` pair before it (``?Leaves@host`` of ``reader:Spring@Winter?Leaves@host``); an "@" inside a
    query value (``?user=alice@example.com``, ``application_name=etl@nightly``) is a value's (re-review R10b)."""
    path, _, query = after.partition("#")[0].partition("?")
    if "@" in path:
        return True
    return any("@" in part.partition("=")[0] or "=" not in part for part in query.split("&") if "@" in part)


def _secret_pieces(secrets: set[str], rest: str) -> set[str]:
    """Lowercased (urllib lowercases a host: ``Winter`` of a password is ``winter`` there), what of ``secrets`` must
    not be in a dataset's namespace or name: each secret and each run of letters and digits in it (a password cut at
    "@", "?", "/", "#", ":" or a blank turns into a host, a port, a path or a bucket), at least :data:`_MIN_SECRET`
    long. The redaction also keeps a password's tail joined to what follows it in the URL (``Leaves9@127.0.0.1``, and
    what libpq reads of ``reader:Autumn/Leaves9@127.0.0.1:5999/docs``: ``Leaves9@127.0.0.1:5999/docs``), how a
    driver's error quotes it: that part, ``rest`` (the masked URL after its last "@", which :func:`_without_password`
    made the end of the userinfo), is the URL's own host, port and path, not a piece of the password (the tail is one
    already), so it is left out."""
    rest = rest.lower()
    pieces: set[str] = set()
    for secret in secrets:
        s = secret.lower()
        head, at, tail = s.rpartition("@")
        if at and tail and rest.startswith(tail):
            s = head
        pieces.add(s)
        pieces.update(re.split(r"[^0-9a-z]+", s))
    return {p for p in pieces if len(p) >= _MIN_SECRET}


def frame_fields(value: Any) -> tuple[tuple[str, str], ...]:
    """Column names and dtypes of a data frame (pandas, or a StructuredDataset holding one), else ()."""
    frame = getattr(value, "dataframe", value)
    dtypes = getattr(frame, "dtypes", None)
    if dtypes is None or not hasattr(dtypes, "items"):
        return ()
    return tuple((str(k), str(v)) for k, v in dtypes.items())


def datasets(values: Mapping[str, Any], digests: Mapping[str, str]) -> list[DatasetRef]:
    """The located datasets among named task values, with their columns and recorded content digests."""
    out: list[DatasetRef] = []
    for key, value in values.items():
        where = locate(value)
        if where is not None:
            out.append(DatasetRef(where[0], where[1], frame_fields(value), digests.get(key, "")))
    return out


def dataset_facets(d: DatasetRef) -> dict[str, Any]:
    facets: dict[str, Any] = {
        "dataSource": datasource_dataset.DatasourceDatasetFacet(
            name=d.namespace, uri=d.namespace if "://" in d.namespace else "file:///", producer=PRODUCER
        )
    }
    if d.fields:
        facets["schema"] = schema_dataset.SchemaDatasetFacet(
            fields=[schema_dataset.SchemaDatasetFacetFields(name=n, type=t) for n, t in d.fields], producer=PRODUCER
        )
    if d.digest:
        facets["version"] = dataset_version_dataset.DatasetVersionDatasetFacet(
            datasetVersion=d.digest, producer=PRODUCER
        )
    return facets


class JsonLinesTransport(Transport):
    """An openlineage-python transport appending one JSON event per line to a local file.

    Same file format as openlineage's ``FileTransport`` in append mode; one ``write(2)`` on an ``O_APPEND``
    descriptor per event, so lines from several processes never interleave. The file is opened per event (on
    the emitter thread): no descriptor outlives a write, across fork() or in a long process with many files.
    Its folder, and any missing parent, is created 0700 (``mkdir(parents=True)`` gave the parents, the state folder
    among them, the umask's mode: 0777 under umask 0, review R9); an existing folder another user owns or others may
    write is refused (:func:`.private_files.private_dir`), and emission is then off with a warning naming it. The
    file is opened as a state file (:func:`.private_files.open_append`): a link, or another user's file, left in the
    folder before it was narrowed fails each emit with a warning naming it.
    """

    kind = "aios_jsonl"

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        private_dir(self.path.parent)  # state files: owner only

    def emit(self, event: Any) -> None:
        """Append ``event`` (a RunEvent or its JSON dict) as one line."""
        data = event if isinstance(event, dict) else Serde.to_dict(event)
        line = orjson.dumps(data, option=orjson.OPT_SORT_KEYS | orjson.OPT_APPEND_NEWLINE)
        fd = open_append(self.path)  # this user's own file, never through a link (re-review R14)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)

    def close(self, timeout: float = -1) -> bool:
        """Nothing stays open between events."""
        return True
