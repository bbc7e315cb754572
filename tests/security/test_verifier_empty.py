"""``aios audit verify`` on a missing or empty store is an error (and creates nothing) unless --allow-empty."""

from __future__ import annotations

from pathlib import Path

import psycopg
from click.testing import CliRunner

from flytekitplugins.aios_audit import AuditEvent, audit_log
from flytekitplugins.aios_core.cli import cli
from flytekitplugins.aios_core.settings import get_settings


def _verify(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(cli, ["audit", "verify", *args])
    return res.exit_code, res.output


def test_missing_sqlite_store_is_an_error_and_is_not_created(tmp_path: Path) -> None:
    db = tmp_path / "typo" / "audit.db"
    code, out = _verify("--store", f"sqlite:///{db}")
    assert code != 0 and not out.startswith("OK"), out
    assert "no audit log" in out and "--allow-empty" in out
    assert not db.exists() and not db.parent.exists()


def test_missing_store_with_allow_empty(tmp_path: Path) -> None:
    db = tmp_path / "audit.db"
    code, out = _verify("--store", f"sqlite:///{db}", "--allow-empty")
    assert code == 0 and out.startswith("OK: 0 records"), out
    assert not db.exists()


def test_configured_store_missing(aios_env: Path) -> None:
    code, out = _verify()
    assert code != 0 and "no audit log" in out
    assert not (aios_env / "audit.db").exists()


def test_empty_sqlite_store(aios_env: Path) -> None:
    audit_log(get_settings())  # opens (creates) the store without appending
    code, out = _verify()
    assert code != 0 and "empty" in out, out
    assert _verify("--allow-empty")[0] == 0
    audit_log(get_settings()).append(AuditEvent(kind="task", actor="a"))
    code, out = _verify()
    assert code == 0 and out.startswith("OK: 1 records"), out


def test_empty_postgres_database(pg_url: str) -> None:
    code, out = _verify("--store", pg_url)
    assert code != 0 and "no audit log" in out, out
    with psycopg.connect(pg_url) as c:  # nothing was created in the schema
        assert c.execute("SELECT to_regclass('audit_log')").fetchone() == (None,)
    audit_log(get_settings(), url=pg_url, emit=False)  # schema created, no records
    code, out = _verify("--store", pg_url)
    assert code != 0 and "empty" in out, out
    assert _verify("--store", pg_url, "--allow-empty")[0] == 0
