"""Shared test set-up: every test gets its own state dir, audit DB and temp dir.

Tests that need PostgreSQL use the real server named by ``AIOS_TEST_PG_URL``
(default ``postgresql://postgres@127.0.0.1:5432/test``); they are skipped only when ``CI`` is unset and
no server answers. In CI a missing server fails them.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

os.environ.setdefault("FLYTE_LOCAL_CACHE_ENABLED", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

PG_URL = os.environ.get("AIOS_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture(autouse=True)
def aios_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Isolated AIOS state per test: state dir, SQLite audit store, temp dir."""
    from flytekitplugins.aios_audit import close_all
    from flytekitplugins.aios_core.settings import reset_settings

    state = tmp_path / "aios-state"
    state.mkdir()
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setenv("AIOS_STATE_DIR", str(state))
    monkeypatch.setenv("AIOS_CONFIG_DIR", str(REPO / "config"))
    monkeypatch.setenv("AIOS_AUDIT_STORE", f"sqlite:///{state}/audit.db")
    monkeypatch.setenv("TMPDIR", str(tmp))
    for var in ("AIOS_PROFILE", "AIOS_POLICY_DIR", "AIOS_PRINCIPAL"):
        monkeypatch.delenv(var, raising=False)
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    reset_settings()
    close_all()
    yield state
    close_all()
    reset_settings()


def _pg_available(url: str) -> bool:
    try:
        import psycopg

        with psycopg.connect(url, connect_timeout=3):
            return True
    except Exception:
        return False


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL schema on the real server; dropped afterwards."""
    if not _pg_available(PG_URL):
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is required in CI but {PG_URL} does not answer")
        pytest.skip(f"no PostgreSQL server at {PG_URL} (set AIOS_TEST_PG_URL)")
    import psycopg

    schema = f"aios_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in PG_URL else "?"
    yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
