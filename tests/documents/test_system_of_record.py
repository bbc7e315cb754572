"""The system-of-record connector: idempotent, audited inserts on SQLite and on the real PostgreSQL."""

from __future__ import annotations

import threading
from pathlib import Path

import pandas as pd
import pytest
from flytekit import workflow
from flytekit.configuration import Image, ImageConfig, SerializationSettings
from flytekit.extend.backend.base_connector import ConnectorRegistry

from flytekitplugins.aios_audit import audit_log
from flytekitplugins.aios_connectors.system_of_record import (
    SYSTEM_OF_RECORD_TASK_TYPE,
    SystemOfRecordConfig,
    SystemOfRecordConnector,
    SystemOfRecordTask,
    act,
)
from flytekitplugins.aios_core.errors import ConfigError
from flytekitplugins.aios_core.settings import get_settings
from tests.governed_rows import governed_rows

post = SystemOfRecordTask(name="test_post_actions", config=SystemOfRecordConfig(table="test_actions"))


@workflow
def post_twice(actions: pd.DataFrame) -> tuple[int, int, int, int]:
    a = post(actions=actions)
    b = post(actions=actions)
    a.posted >> b.posted
    return a.posted, a.already_posted, b.posted, b.already_posted


def _rows(n: int, tag: str = "") -> list[dict[str, object]]:
    return governed_rows(n, tag)


def _action_records() -> int:
    return sum(1 for r in audit_log(get_settings()).scan() if r.event.kind == "action")


def test_task_and_connector_share_one_task_type() -> None:
    settings = SerializationSettings(image_config=ImageConfig(default_image=Image(name="d", fqn="img", tag="1")))
    assert post.task_type == SYSTEM_OF_RECORD_TASK_TYPE == "aios_system_of_record"
    assert post.get_custom(settings) == {"table": "test_actions", "url": ""}
    assert isinstance(ConnectorRegistry.get_connector(SYSTEM_OF_RECORD_TASK_TYPE), SystemOfRecordConnector)
    with pytest.raises(ValueError, match="lower-case SQL identifier"):
        SystemOfRecordConfig(table="drop table x;")


def test_local_workflow_posts_once_on_sqlite(aios_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = aios_env / "sor.db"
    monkeypatch.setenv("AIOS_SYSTEM_OF_RECORD_URL", f"sqlite:///{db}")
    assert post_twice(actions=pd.DataFrame(_rows(5))) == (5, 0, 0, 5)
    assert _action_records() == 5


def test_env_indirection_fails_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIOS_SOR_SECRET", raising=False)
    with pytest.raises(ConfigError, match="AIOS_SOR_SECRET"):
        act(SystemOfRecordConfig(url="env:AIOS_SOR_SECRET"), _rows(1), get_settings())


@pytest.mark.parametrize("value", ["AKIA-not-a-url-0123456789", "whsec:0123456789abcdef"])
def test_a_value_that_is_no_url_is_not_quoted_back(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    """An env:VAR that holds something else (a key, a token) is no URL: the error says so without quoting it (it
    quoted everything before the first colon)."""
    monkeypatch.setenv("AIOS_SOR_SECRET", value)
    with pytest.raises(ValueError, match="unsupported system-of-record URL") as err:
        act(SystemOfRecordConfig(url="env:AIOS_SOR_SECRET"), _rows(1), get_settings())
    assert value.split(":")[0] not in str(err.value)


@pytest.mark.postgres
def test_postgres_concurrent_retries_never_post_twice(pg_url: str) -> None:
    cfg = SystemOfRecordConfig(url=pg_url, table="document_actions")
    rows = _rows(40, "pg")
    results: list[tuple[int, int, int]] = []
    settings = get_settings()
    threads = [threading.Thread(target=lambda: results.append(act(cfg, rows, settings))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(p for p, _, _ in results) == 40
    assert sum(s for _, s, _ in results) == 3 * 40
    assert sum(r for _, _, r in results) == 0
    assert _action_records() == 40
    import psycopg

    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT count(*) FROM document_actions").fetchone() == (40,)
