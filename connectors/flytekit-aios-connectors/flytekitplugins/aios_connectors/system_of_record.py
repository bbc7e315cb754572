"""Post approved document decisions to a system of record (a SQL table), idempotently, from a connector.

One module holds both halves, joined by :data:`SYSTEM_OF_RECORD_TASK_TYPE`: :class:`SystemOfRecordTask`
(what is serialized: task type plus the table and URL *source*) and :class:`SystemOfRecordConnector`
(what executes, in-process locally or in ``pyflyte serve connector`` on a cluster).

The place that acts verifies. A row is a claim, never proof: before anything is posted, every row goes through
``flytekitplugins.aios_approvals.acting.authorize``, which re-establishes from the audit trail the policy decision
the row names (for exactly this document, action, principal, amount and currency) and, where it required one, the
verified approval, and claims both atomically. Refused rows are audited as ``action_refused`` and not posted; the
task reports how many (``refused``). A hand-made row (pay USD 250,000, a made-up request id) posts nothing.

Idempotency: every row carries ``action_key`` = digest(document digest, decision digest), the table's
primary key, and rows are written with ``INSERT ... ON CONFLICT (action_key) DO NOTHING``. A retried
task, a re-run batch or a second connector replica never posts a decision twice. Each newly posted row
gets one ``action`` audit record (digests only); the insert and the audit write happen before the task
reports success, and a failed audit write fails the task (the rows stay posted, and the retry skips them
and records the missing audit entries).

The database URL comes from, in order: the task's ``url`` (``env:VAR`` reads a variable, e.g. a mounted
Flyte secret), ``AIOS_SYSTEM_OF_RECORD_URL``, else ``sqlite:///<state_dir>/system_of_record.db``. A served call
(the template is the gRPC caller's) may only leave ``url`` empty or name ``env:AIOS_SYSTEM_OF_RECORD_URL_<NAME>``
(:func:`check_served_url`): where the service writes is its operator's choice, never the caller's.
URLs: ``sqlite:///PATH`` or ``postgresql://USER@HOST:PORT/DB``.
"""

from __future__ import annotations

import asyncio
import logging
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
from flytekit.models.task import TaskExecutionMetadata, TaskTemplate

from flytekitplugins.aios_core.keys import SYSTEM_OF_RECORD_URL_ENV
from flytekitplugins.aios_core.settings import Settings
from flytekitplugins.aios_core.visible import bounded, visible

log = logging.getLogger(__name__)

SYSTEM_OF_RECORD_TASK_TYPE = "aios_system_of_record"
URL_ENV = SYSTEM_OF_RECORD_URL_ENV
COLUMNS = ("action_key", "doc_digest", "decision_digest", "action", "doc_type", "amount", "currency", "request_id")
MAX_SERVED_ROWS = 50_000
"""Rows one served call may hand in (a nightly batch of 10,000 documents posts at most 10,000): review R31b's 22 KB
Parquet file of 600,000 rows, each refused, took 73 s, 3.7 GB of the service's memory and 1.75 GB of audit trail.
Checked on the file's own footer before a local input is decoded, and on the decoded frame for any other."""
MAX_SERVED_COLUMNS = 64
"""Columns a served call's frame may have (an action row has a dozen): a footer of 50,000 rows of thousands of
constant integer columns counted 1.5 MB and decoded to 2.4 GB (re-review R33)."""
MAX_SERVED_CELL = 1024
"""Characters one text value of a served row may hold (digests, ids, an action's name: under 100 in an honest row):
review R31b's 16 rows of 4 MiB ids made 945 MB of refusal records from a 3.6 KB input."""

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
        if not _TABLE_RE.match(self.table) or self.table.endswith("_keys"):
            shown = visible(self.table[:80])
            msg = (
                f"SystemOfRecordConfig(table={shown!r}) is invalid: use a lower-case SQL identifier not ending in "
                "_keys (the name of a table's ledger of posted actions)"
            )
            raise ValueError(msg)

    @classmethod
    def from_custom(cls, custom: dict[str, Any] | None) -> SystemOfRecordConfig:
        """Read the config back from a task template's ``custom``."""
        data = dict(custom or {})
        return cls(table=str(data.get("table", "document_actions")), url=str(data.get("url", "")))


def check_served_url(config_url: str) -> None:
    """Refuse a served call's task ``url`` unless it is empty or ``env:AIOS_SYSTEM_OF_RECORD_URL[_<NAME>]``.

    The task template is what the gRPC caller sent: a ``url`` in it chose where the connector service connects
    and writes, with the service's own credentials (a PostgreSQL server of the caller's, which libpq would offer
    the service's ``PGPASSWORD``; any SQLite file the service may write), and ``env:VAR`` read any variable of the
    service (a key, a token), which the error quoted back. Served, the connector writes only where its operator
    configured: its ``AIOS_SYSTEM_OF_RECORD_URL`` (an empty ``url``) or a variable of the same name with a suffix
    (``AIOS_SYSTEM_OF_RECORD_URL_FINANCE``), mounted on the connector service. Local runs keep any ``url``.

    Raises:
        ValueError: naming the refused ``url`` (a literal URL with its credentials masked; a variable by name).
    """
    if not config_url:
        return
    var = config_url.removeprefix("env:") if config_url.startswith("env:") else ""
    if var == URL_ENV or (var.startswith(URL_ENV + "_") and var[len(URL_ENV) + 1 :].replace("_", "").isalnum()):
        return
    from flytekitplugins.aios_core.redact import mask_url

    shown = f"env:{var}" if var else mask_url(config_url)
    msg = (
        f"the task's system-of-record url {shown!r} is refused: a served call writes only where the connector "
        f"service is configured to, its {URL_ENV} (leave url empty) or env:{URL_ENV}_<NAME> (a variable of the "
        "connector service); re-register the task with one of those"
    )
    raise ValueError(msg)


def check_served_table(table: str, settings: Settings) -> None:
    """Refuse a served call's table unless the operator allows it (``settings.system_of_record_tables``: comma-separated
    patterns, ``document_actions`` by default).

    The template, and so the table, is the gRPC caller's: a run launched under the pipeline's service account posted
    the pipeline's approved rows into a table of its choosing (``decoy_x``) of the operator's database, and the
    pipeline's own post to ``document_actions`` was then refused, the action being claimed at its first destination
    (review of 2026-12-06). Local runs keep any table.

    Raises:
        ValueError: naming the table and the setting.
    """
    import fnmatch

    allowed = [p.strip() for p in settings.system_of_record_tables.split(",") if p.strip()]
    if any(fnmatch.fnmatchcase(table, p) for p in allowed):
        return
    msg = (
        f"the task's system-of-record table {visible(table)!r} is refused: a served call writes only to the tables the "
        f"connector service allows (AIOS_SYSTEM_OF_RECORD_TABLES: {', '.join(allowed) or 'none'})"
    )
    raise ValueError(msg)


def resolve_url(config_url: str, settings: Settings) -> str:
    """The database URL: the task's ``url``, else ``settings.system_of_record_url`` (``AIOS_SYSTEM_OF_RECORD_URL``);
    an unset ``env:VAR`` is a ``ConfigError`` (fail closed)."""
    from flytekitplugins.aios_core.keys import system_of_record_url

    return system_of_record_url(config_url, settings.system_of_record_url)


def _ddl(table: str) -> list[str]:
    return [
        f"CREATE TABLE IF NOT EXISTS {table} (action_key TEXT PRIMARY KEY, doc_digest TEXT NOT NULL, "
        "decision_digest TEXT NOT NULL, action TEXT NOT NULL, doc_type TEXT NOT NULL, amount DOUBLE PRECISION, "
        "currency TEXT, request_id TEXT NOT NULL, posted_at TEXT NOT NULL)",
        f"CREATE TABLE IF NOT EXISTS {keys_table(table)} (action_key TEXT PRIMARY KEY, posted_at TEXT NOT NULL)",
        # rows posted before the ledger existed (and not consumed yet) are in it from the first call on
        f"INSERT INTO {keys_table(table)} SELECT action_key, posted_at FROM {table} WHERE true ON CONFLICT DO NOTHING",
    ]


def keys_table(table: str) -> str:
    """The ledger of every action key ever posted to ``table``: the processor that consumes ``table``'s rows (deletes
    them) never touches it, so an action posted once is never posted again. With the table's own primary key as the
    only idempotency, another execution re-sent an allowed row after it had been consumed, and it was posted twice
    (review of 2026-12-06)."""
    return f"{table[:57]}_keys"


@contextmanager
def _connect(url: str) -> Iterator[Any]:
    """A DB-API connection in one transaction (commit on success, rollback on error)."""
    if url.startswith("sqlite:///"):
        from flytekitplugins.aios_audit.private_files import SQLITE_COMPANIONS, touch_private

        path = url.removeprefix("sqlite:///")
        if path != ":memory:":
            # 0600 (its folder 0700): posted payments are no other local user's to read or change. A file or folder
            # another user made first or may write (the cluster profile's /tmp/aios) is refused (UnsafeFile), not
            # used as found: their 0666 system_of_record.db was, and they read and changed the payments (review R9, F4)
            touch_private(path, companions=SQLITE_COMPANIONS)  # a -wal or -journal they left: read as its rows
        conn: Any = sqlite3.connect(path, timeout=60.0)
        conn.execute("PRAGMA journal_mode=WAL")
    elif url.startswith(("postgresql://", "postgres://")):
        import psycopg

        try:
            conn = psycopg.connect(url)
        except psycopg.Error as e:
            from flytekitplugins.aios_core.redact import mask_text, mask_url

            msg = f"cannot connect to the system of record {mask_url(url)}: {mask_text(e)}"
            raise ConnectionError(msg) from None
    else:  # the value is not quoted: it may have come from a variable holding something else (a key, a token)
        scheme = url.split("://", 1)[0] if "://" in url else ""
        shown = f"{scheme}://" if scheme.isalnum() and len(scheme) <= 16 else "a value that is no URL"
        msg = f"unsupported system-of-record URL ({shown}): use sqlite:///PATH or postgresql://USER@HOST:PORT/DB"
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
        for statement in _ddl(table):
            cur.execute(statement)
    if not url.startswith("sqlite"):  # SQLite files come and go (tests, local runs); the check is cheap there
        _ready.add((url, table))


def post_rows(url: str, table: str, rows: Sequence[dict[str, Any]]) -> list[str]:
    """Insert ``rows`` (keys of :data:`COLUMNS`) idempotently; returns the keys newly posted. A key posted once (in
    the :func:`keys_table` ledger, written in the same transaction) is never posted again, consumed or not."""
    import datetime as dt

    ph = "?" if url.startswith("sqlite") else "%s"
    ledger = f"INSERT INTO {keys_table(table)} (action_key, posted_at) VALUES ({ph}, {ph}) "
    ledger += "ON CONFLICT (action_key) DO NOTHING RETURNING action_key"
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
            cur.execute(ledger, (str(row["action_key"]), now))
            if cur.fetchone() is None:
                continue  # posted before: already posted, whether or not its row is still in the table
            cur.execute(sql, (*(row.get(c) for c in COLUMNS), now))
            if cur.fetchone() is not None:
                posted.append(str(row["action_key"]))
    return posted


def _audit(
    rows: Sequence[dict[str, Any]], posted: set[str], table: str, verdicts: dict[str, Any], settings: Settings
) -> None:
    from flytekitplugins.aios_audit import AuditEvent, audit_log
    from flytekitplugins.aios_core.context import code_version, current_execution

    events = []
    execution, version = current_execution(), code_version(settings.code_version)  # the same for every row
    for r in rows:
        if r["action_key"] not in posted:
            continue
        v = verdicts[r["action_key"]]
        events.append(
            AuditEvent(
                kind="action",
                actor=v.principal,
                status="posted",
                subject=str(r["doc_digest"]),
                execution=execution,
                code_version=version,
                inputs={"document": str(r["doc_digest"]), "decision": str(r["decision_digest"])},
                outputs={"action_key": str(r["action_key"])},
                parents=[p for p in (v.record_id, str(r.get("policy_record") or "")) if p],
                attributes={
                    "system_of_record": table,
                    "action": r["action"],
                    "request_id": r.get("request_id", ""),
                    "policy_record": str(r.get("policy_record") or ""),
                    "amount": r.get("amount") if r.get("amount") == r.get("amount") else None,
                    "currency": r.get("currency", ""),
                },
            )
        )
    if events:
        audit_log(settings).append_many(events)


def destination_of(table: str, url: str) -> str:
    """Where actions go, as the acting point's claims and ``action_authorized`` records name it (sealed in the trail):
    ``<table>@<url>``, the URL with every credential masked.

    The form is the one claims already held in stored trails name (a retry of an action authorized before must find
    its own claims, or it is refused ``already_used``), so it is kept; :func:`.redact.mask_url` parses the URL as
    libpq does, so no part of a password survives in it (``?password=S3cret,PW`` kept ``,PW`` in sealed records
    when it was matched by a pattern that stopped at the comma)."""
    from flytekitplugins.aios_core.redact import mask_url

    return f"{table}@{mask_url(url)}"


def act(
    config: SystemOfRecordConfig, rows: Sequence[dict[str, Any]], settings: Settings, actor: str = ""
) -> tuple[int, int, int]:
    """Verify every row at the acting point, post the authorized ones, audit them; (posted, already, refused).

    ``settings`` are the connector call's (its audit store, keys, roles and system-of-record URL); ``actor`` the
    caller established from propagated identity (default: the configured principal)."""
    from flytekitplugins.aios_approvals.acting import ActionClaim, authorize
    from flytekitplugins.aios_approvals.evaluate import Env

    claims = [ActionClaim.from_row(dict(r)) for r in rows]
    # what is written is what was verified: the amount as the claim read it (a number), not the row's own text
    rows = [{**r, "amount": c.amount} for r, c in zip(rows, claims, strict=True)]
    url = resolve_url(config.url, settings)
    destination = destination_of(config.table, url)  # the same action posted anywhere else is refused
    env = Env.load(settings)
    verdicts = authorize(claims, actor=actor or settings.actor, env=env, destination=destination, caller=actor)
    by_key = {v.action_key: v for v in verdicts if v.allowed}
    allowed = [r for r, v in zip(rows, verdicts, strict=True) if v.allowed]
    refused: dict[str, int] = {}
    for v in verdicts:
        if v.allowed:
            continue
        refused[v.code] = refused.get(v.code, 0) + 1
        if refused[v.code] == 1:  # the first of its kind in this call has its line, as it has its own record
            log.warning(  # the caller's text: its control characters forged log lines (review of 2026-12-06)
                "system of record: refused action %s: %s (%s)",
                visible(v.action_key[:19]),
                v.code,
                bounded(visible(v.reason), 1024),  # escaped, then bounded: an escape is up to 4 characters
            )
    for code, n in refused.items():  # the rest in one line each (review R35: 50,000 lines, 190 MB of log, a call)
        if n > 1:
            log.warning("system of record: refused %d more actions of this call: %s", n - 1, code)
    posted = post_rows(url, config.table, allowed)
    _audit(allowed, set(posted), config.table, by_key, settings)
    return len(posted), len(allowed) - len(posted), len(rows) - len(allowed)


INPUTS: dict[str, type] = {"actions": Any}
OUTPUTS: dict[str, type] = {"posted": int, "already_posted": int, "refused": int}


def _interface_types() -> tuple[dict[str, type], dict[str, type]]:
    import pandas as pd

    return {"actions": pd.DataFrame}, OUTPUTS


class SystemOfRecordTask(SyncConnectorExecutorMixin, PythonTask[SystemOfRecordConfig]):
    """Posts a table of decisions (columns :data:`COLUMNS`) to the system of record; no pod is started.

    Inputs: ``actions`` (a DataFrame). Outputs: ``posted`` (rows newly written), ``already_posted``
    (rows skipped because an earlier attempt wrote them) and ``refused`` (rows the acting point refused:
    no policy decision or verified approval stands behind them; audited as ``action_refused``).
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
        self,
        task_template: TaskTemplate,
        output_prefix: str,
        inputs: LiteralMap | None = None,
        task_execution_metadata: TaskExecutionMetadata | None = None,
        **kwargs: Any,
    ) -> Resource:
        """Post the rows in ``inputs``; SUCCEEDED with counts, or FAILED naming the error type (never row data).

        A served call acts for the caller established from flytepropeller's metadata (``identity.establish``): rows
        naming another principal refuse the whole call, audited as ``connector_refused``; a row naming no principal is
        refused by the acting point (``identity_mismatch``), which binds every row to the caller and to its policy
        decision's principal. In-process local runs have no metadata; the acting point then checks each row's
        principal (which it must name) against its policy decision record.
        """
        from flytekitplugins.aios_connectors._literals import FrameBounds, to_literals, to_python
        from flytekitplugins.aios_connectors.identity import IdentityRefused, establish, input_refused, refuse
        from flytekitplugins.aios_core.redact import one_line_error
        from flytekitplugins.aios_core.settings import get_settings

        task_name = bounded(task_template.id.name) if task_template.id else "?"  # the caller's text
        claimed, who = "", ""  # who: the caller once established
        settings = get_settings()  # the connector call is an entry point: settings resolved once, passed down
        try:
            served = task_execution_metadata is not None
            if served:  # who calls, before a byte of the inputs is decoded (an anonymous call read a 3M-row frame)
                first = await asyncio.to_thread(establish, task_execution_metadata, settings)
                who = first.principal
            config = SystemOfRecordConfig.from_custom(task_template.custom)
            if served:
                check_served_url(config.url)  # the caller chose the template, so not where to write
                check_served_table(config.table, settings)
            values = await to_python(
                inputs,
                _interface_types()[0],
                served=served,
                input_dirs=settings.connector_input_dirs,
                bounds=FrameBounds(MAX_SERVED_ROWS, MAX_SERVED_COLUMNS, MAX_SERVED_CELL),
            )
            frame = values.get("actions")
            if served:
                _check_served_frame(frame)
            rows: list[dict[str, Any]] = [] if frame is None else frame.to_dict(orient="records")
            principals = sorted({str(r.get("principal") or "") for r in rows})
            claimed = ",".join(principals)
            caller = None
            if served:  # and then that the rows name it
                caller = await asyncio.to_thread(establish, task_execution_metadata, settings, claimed)
            posted, skipped, refused = await asyncio.to_thread(_act_for, caller, config, rows, settings)
        except Exception as e:  # fail the task in one masked line: no row data, no traceback, no secret
            refusal = e if isinstance(e, IdentityRefused) else None
            if refusal is None and who and isinstance(e, ValueError):  # an established caller's input refused (a
                # table, a URL, a frame): audited under that caller too
                refusal = input_refused(e, who)
            if refusal is not None:
                why = await asyncio.to_thread(
                    refuse,
                    refusal,
                    connector=self.name,
                    task_name=task_name,
                    claimed=claimed,
                    meta=task_execution_metadata,
                    settings=settings,
                )
                return Resource(phase=TaskExecution.FAILED, message=f"system of record: {why}")
            log.warning("system-of-record task %s failed: %s", visible(task_name), one_line_error(e))
            return Resource(phase=TaskExecution.FAILED, message=f"system of record write failed: {one_line_error(e)}")
        outputs = await to_literals({"posted": posted, "already_posted": skipped, "refused": refused}, OUTPUTS)
        message = f"posted {posted}, already posted {skipped}, refused {refused}"
        return Resource(phase=TaskExecution.SUCCEEDED, message=message, outputs=outputs)


def _check_served_frame(frame: Any) -> None:
    """Refuse a served call's frame beyond :data:`MAX_SERVED_ROWS` rows, :data:`MAX_SERVED_COLUMNS` columns or a text
    value of more than :data:`MAX_SERVED_CELL` characters, before a row is read (each row a claim, each refused claim a
    record): one refusal for the whole call instead."""
    from flytekitplugins.aios_connectors._literals import UnsafeInput

    if frame is None:
        return
    rows, columns = frame.shape
    if rows > MAX_SERVED_ROWS:
        raise UnsafeInput(f"a served call posts at most {MAX_SERVED_ROWS} rows; this frame holds {rows}: split it")
    if columns > MAX_SERVED_COLUMNS:
        raise UnsafeInput(f"a served call's frame has at most {MAX_SERVED_COLUMNS} columns; this one has {columns}")
    for name in frame.columns:
        nested = next((v for v in frame[name] if isinstance(v, list | tuple | dict | set) or hasattr(v, "shape")), None)
        if nested is not None:  # (re-review R32a: one-element lists carried long text past the bound below)
            shown = visible(bounded(str(name), 64))
            raise UnsafeInput(
                f"column {shown!r} of a served call's frame holds {type(nested).__name__} values: plain ones only"
            )
        longest = max((len(v) for v in frame[name] if isinstance(v, str | bytes)), default=0)
        if longest > MAX_SERVED_CELL or len(str(name)) > MAX_SERVED_CELL:
            shown = visible(bounded(str(name), 64))
            raise UnsafeInput(
                f"column {shown!r} of a served call's frame holds a value of {longest} characters (or a name that"
                f" long); a row's values are at most {MAX_SERVED_CELL}"
            )


def _act_for(
    caller: Any, config: SystemOfRecordConfig, rows: list[dict[str, Any]], settings: Settings
) -> tuple[int, int, int]:
    """:func:`act` for an established caller, with its records attributed to the execution it serves."""
    import contextlib

    from flytekitplugins.aios_core.context import serving

    if caller is None:
        return act(config, rows, settings)
    scope = serving(caller.execution) if caller.execution is not None else contextlib.nullcontext()
    with scope:
        return act(config, rows, settings, actor=caller.principal)


ConnectorRegistry.register(SystemOfRecordConnector())
