"""Post approved document decisions to a system of record (a SQL table), idempotently, from a connector.

One module holds both halves, joined by :data:`SYSTEM_OF_RECORD_TASK_TYPE`: :class:`SystemOfRecordTask`
(what is serialized: task type plus the table and URL *source*) and :class:`SystemOfRecordConnector`
(what executes, in-process locally or in ``pyflyte serve connector`` on a cluster).

Idempotency: every row carries ``action_key`` = digest(document digest, decision digest), the table's
primary key, and rows are written with ``INSERT ... ON CONFLICT (action_key) DO NOTHING``. A retried
task, a re-run batch or a second connector replica never posts a decision twice. Each newly posted row
gets one ``action`` audit record (digests only); the insert and the audit write happen before the task
reports success, and a failed audit write fails the task (the rows stay posted, and the retry skips them
and records the missing audit entries).

The database URL comes from, in order: the task's ``url`` (``env:VAR`` reads a variable, e.g. a mounted
Flyte secret), ``AIOS_SYSTEM_OF_RECORD_URL``, else ``sqlite:///<state_dir>/system_of_record.db``.
URLs: ``sqlite:///PATH`` or ``postgresql://USER@HOST:PORT/DB``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

from flyteidl.core.execution_pb2 import TaskExecution
from flytekit import Documentation
from flytekit.configuration import SerializationSettings
from flytekit.core.base_task import PythonTask
from flytekit.core.interface import Interface
from flytekit.extend.backend.base_connector import (
    ConnectorRegistry,
    Resource,
    SyncConnectorBase,
    SyncConnectorExecutorMixin,
)
from flytekit.models.literals import LiteralMap
from flytekit.models.task import TaskTemplate

log = logging.getLogger(__name__)

SYSTEM_OF_RECORD_TASK_TYPE = "aios_system_of_record"
URL_ENV = "AIOS_SYSTEM_OF_RECORD_URL"
COLUMNS = ("action_key", "doc_digest", "decision_digest", "action", "doc_type", "amount", "currency", "request_id")
_TABLE_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


@dataclass(frozen=True)
class SystemOfRecordConfig:
    """Where decisions go.

    Attributes:
        table: table name (lower-case identifier); created when missing.
        url: database URL, ``env:VAR`` to read it from a variable (a Flyte secret), or empty for the default.
    """

    table: str = "document_actions"
    url: str = ""

    def __post_init__(self) -> None:
        if not _TABLE_RE.match(self.table):
            msg = f"SystemOfRecordConfig(table={self.table!r}) is invalid: use a lower-case SQL identifier"
            raise ValueError(msg)

    @classmethod
    def from_custom(cls, custom: dict[str, Any] | None) -> SystemOfRecordConfig:
        """Read the config back from a task template's ``custom``."""
        data = dict(custom or {})
        return cls(table=str(data.get("table", "document_actions")), url=str(data.get("url", "")))


def resolve_url(config_url: str) -> str:
    """The database URL (see module docstring); an unset ``env:VAR`` is a ``ConfigError`` (fail closed)."""
    from flytekitplugins.aios_core.keys import resolve_env_ref

    url = config_url or os.environ.get(URL_ENV, "")
    url = resolve_env_ref(url, what="system-of-record URL", fix=f"mount the secret or set {URL_ENV}")
    if not url:
        from flytekitplugins.aios_core.settings import get_settings

        url = f"sqlite:///{get_settings().state_dir}/system_of_record.db"
    return url


def _ddl(table: str) -> str:
    return (
        f"CREATE TABLE IF NOT EXISTS {table} (action_key TEXT PRIMARY KEY, doc_digest TEXT NOT NULL, "
        "decision_digest TEXT NOT NULL, action TEXT NOT NULL, doc_type TEXT NOT NULL, amount DOUBLE PRECISION, "
        "currency TEXT, request_id TEXT NOT NULL, posted_at TEXT NOT NULL)"
    )


@contextmanager
def _connect(url: str) -> Iterator[Any]:
    """A DB-API connection in one transaction (commit on success, rollback on error)."""
    if url.startswith("sqlite:///"):
        conn: Any = sqlite3.connect(url.removeprefix("sqlite:///"), timeout=60.0)
        conn.execute("PRAGMA journal_mode=WAL")
    elif url.startswith(("postgresql://", "postgres://")):
        import psycopg

        conn = psycopg.connect(url)
    else:
        msg = f"unsupported system-of-record URL scheme in {url.split(':', 1)[0]!r}: use sqlite:/// or postgresql://"
        raise ValueError(msg)
    try:
        yield conn
        conn.commit()
    except BaseException:
        conn.rollback()
        raise
    finally:
        conn.close()


_ready: set[tuple[str, str]] = set()


def _ensure_table(url: str, table: str) -> None:
    """Create the table once per process; on PostgreSQL under an advisory lock (concurrent CREATE races)."""
    if (url, table) in _ready:
        return
    with _connect(url) as conn:
        cur = conn.cursor()
        if not url.startswith("sqlite"):
            cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"aios_sor:{table}",))
        cur.execute(_ddl(table))
    if not url.startswith("sqlite"):  # SQLite files come and go (tests, local runs); the check is cheap there
        _ready.add((url, table))


def post_rows(url: str, table: str, rows: Sequence[dict[str, Any]]) -> list[str]:
    """Insert ``rows`` (keys of :data:`COLUMNS`) idempotently; returns the keys newly posted."""
    import datetime as dt

    ph = "?" if url.startswith("sqlite") else "%s"
    sql = (
        f"INSERT INTO {table} ({', '.join(COLUMNS)}, posted_at) VALUES ({', '.join([ph] * (len(COLUMNS) + 1))}) "
        "ON CONFLICT (action_key) DO NOTHING RETURNING action_key"
    )
    now = dt.datetime.now(dt.UTC).isoformat()
    posted: list[str] = []
    _ensure_table(url, table)
    with _connect(url) as conn:
        cur = conn.cursor()
        for row in rows:
            cur.execute(sql, (*(row.get(c) for c in COLUMNS), now))
            if cur.fetchone() is not None:
                posted.append(str(row["action_key"]))
    return posted


def _audit(rows: Sequence[dict[str, Any]], posted: set[str], table: str) -> None:
    from flytekitplugins.aios_audit import AuditEvent, audit_log
    from flytekitplugins.aios_core.context import code_version, current_execution

    events = [
        AuditEvent(
            kind="action",
            actor=str(r.get("principal") or "service:document-pipeline"),
            status="posted",
            subject=str(r["doc_digest"]),
            execution=current_execution(),
            code_version=code_version(),
            inputs={"document": str(r["doc_digest"]), "decision": str(r["decision_digest"])},
            outputs={"action_key": str(r["action_key"])},
            attributes={"system_of_record": table, "action": r["action"], "request_id": r.get("request_id", "")},
        )
        for r in rows
        if r["action_key"] in posted
    ]
    if events:
        audit_log().append_many(events)


def act(config: SystemOfRecordConfig, rows: Sequence[dict[str, Any]]) -> tuple[int, int]:
    """Post rows and audit the new ones; returns (posted, already_posted)."""
    posted = post_rows(resolve_url(config.url), config.table, rows)
    _audit(rows, set(posted), config.table)
    return len(posted), len(rows) - len(posted)


INPUTS: dict[str, type] = {"actions": Any}
OUTPUTS: dict[str, type] = {"posted": int, "already_posted": int}


def _interface_types() -> tuple[dict[str, type], dict[str, type]]:
    import pandas as pd

    return {"actions": pd.DataFrame}, OUTPUTS


class SystemOfRecordTask(SyncConnectorExecutorMixin, PythonTask[SystemOfRecordConfig]):
    """Posts a table of decisions (columns :data:`COLUMNS`) to the system of record; no pod is started.

    Inputs: ``actions`` (a DataFrame). Outputs: ``posted`` (rows newly written) and ``already_posted``
    (rows skipped because an earlier attempt wrote them).
    """

    _TASK_TYPE = SYSTEM_OF_RECORD_TASK_TYPE

    def __init__(self, name: str, config: SystemOfRecordConfig | None = None, **kwargs: Any) -> None:
        inputs, outputs = _interface_types()
        super().__init__(
            name=name,
            task_type=self._TASK_TYPE,
            task_config=config or SystemOfRecordConfig(),
            interface=Interface(inputs=inputs, outputs=outputs),
            docs=Documentation(short_description="Post approved document decisions to the system of record"),
            **kwargs,
        )

    def get_custom(self, settings: SerializationSettings) -> dict[str, Any]:
        """The config dataclass as the template's ``custom``."""
        return asdict(self.task_config)


class SystemOfRecordConnector(SyncConnectorBase):
    """Serves task type ``aios_system_of_record``: idempotent, audited inserts."""

    name = "AIOS System of Record Connector"

    def __init__(self) -> None:
        super().__init__(task_type_name=SYSTEM_OF_RECORD_TASK_TYPE)

    async def do(
        self, task_template: TaskTemplate, output_prefix: str, inputs: LiteralMap | None = None, **kwargs: Any
    ) -> Resource:
        """Post the rows in ``inputs``; SUCCEEDED with counts, or FAILED naming the error type (never row data)."""
        from flytekitplugins.aios_connectors._literals import to_literals, to_python

        task_name = task_template.id.name if task_template.id else "?"
        try:
            config = SystemOfRecordConfig.from_custom(task_template.custom)
            values = await to_python(inputs, _interface_types()[0])
            frame = values.get("actions")
            rows: list[dict[str, Any]] = [] if frame is None else frame.to_dict(orient="records")
            posted, skipped = await asyncio.to_thread(act, config, rows)
        except Exception as e:  # fail the task, naming the error type only: rows may hold business data
            log.warning("system-of-record task %s failed: %s", task_name, type(e).__name__)
            return Resource(phase=TaskExecution.FAILED, message=f"system of record write failed: {type(e).__name__}")
        outputs = await to_literals({"posted": posted, "already_posted": skipped}, OUTPUTS)
        return Resource(
            phase=TaskExecution.SUCCEEDED, message=f"posted {posted}, already posted {skipped}", outputs=outputs
        )


ConnectorRegistry.register(SystemOfRecordConnector())
