"""The system-of-record row behind a posted ``action`` record (read-only; never creates a database or table)."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any

from flytekitplugins.aios_core.settings import Settings

_TABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def default_url(settings: Settings) -> str:
    """The URL the system-of-record connector posts to (``settings.system_of_record_url``)."""
    from flytekitplugins.aios_core.errors import ConfigError
    from flytekitplugins.aios_core.keys import system_of_record_url

    try:  # the core's own resolution: importing the connector would import flytekit (seconds) to read one URL
        return system_of_record_url("", settings.system_of_record_url)
    except ConfigError:  # an unset env: reference: the trace still answers from the audit trail, without rows
        return ""


def _query(url: str, table: str, keys: list[str]) -> list[dict[str, Any]]:
    q = f"SELECT * FROM {table} WHERE action_key IN ({','.join(['?'] * len(keys))})"
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        if not path.is_file():
            return []
        from flytekitplugins.aios_audit.private_files import UnsafeFile, check_sqlite_files
        from flytekitplugins.aios_core.errors import ConfigError

        try:  # another user's file, or a -wal of theirs beside it, would show their rows as the posted ones
            check_sqlite_files(path)
        except UnsafeFile as e:
            msg = f"refusing the system of record {path}: {e}"
            raise ConfigError(msg) from None
        with sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=10.0) as conn:
            cur = conn.execute(q, keys)
            cols = [c[0] for c in cur.description]
            return [dict(zip(cols, row, strict=True)) for row in cur]
    if url.startswith(("postgresql://", "postgres://")):
        import psycopg

        with psycopg.connect(url) as pg:
            pcur = pg.execute(q.replace("?", "%s").encode(), keys)
            names = [c.name for c in pcur.description or []]
            return [dict(zip(names, row, strict=True)) for row in pcur]
    return []


def attach_rows(cases: list[dict[str, Any]], url: str) -> None:
    """Add ``row`` (the posted row, or a note) to every posted action of ``cases``."""
    posted = [a for c in cases for a in c["actions"] if a["kind"] == "action" and a.get("action_key")]
    if not posted or not url:
        return
    by_table: dict[str, list[dict[str, Any]]] = {}
    for a in posted:
        by_table.setdefault(str(a.get("system_of_record") or ""), []).append(a)
    for table, actions in by_table.items():
        if not _TABLE.match(table):
            continue
        try:
            rows = {r["action_key"]: r for r in _query(url, table, [str(a["action_key"]) for a in actions])}
        except Exception as e:  # unreachable database: the trace still answers from the audit trail
            from flytekitplugins.aios_core.errors import ConfigError

            why = str(e) if isinstance(e, ConfigError) else type(e).__name__  # (a refusal names the file and why)
            rows, note = {}, f"system of record not readable ({why})"
        else:
            note = "no such row in the system of record"
        for a in actions:
            a["row"] = rows.get(str(a["action_key"])) or {"note": note}
