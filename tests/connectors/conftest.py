"""One webhook receiver and one `pyflyte serve connector` per test session, on loopback ports."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from tests.connectors.harness import REPO, ConnectorServer, Hook, connector_server, webhook_server

WEBHOOK_SECRET = "whsec-" + secrets.token_hex(16)


@pytest.fixture(scope="session")
def hook() -> Iterator[Hook]:
    with webhook_server() as h:
        yield h


@pytest.fixture(scope="session")
def server_state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    state = tmp_path_factory.mktemp("connector-state")
    (state / "tmp").mkdir()
    return state


@pytest.fixture(scope="session")
def connector(hook: Hook, server_state: Path) -> Iterator[ConnectorServer]:
    env = {
        "AIOS_STATE_DIR": str(server_state),
        "AIOS_CONFIG_DIR": str(REPO / "config"),
        "AIOS_AUDIT_STORE": f"sqlite:///{server_state}/audit.db",
        "AIOS_APPROVAL_WEBHOOK_URL": hook.url,
        "AIOS_APPROVAL_WEBHOOK_SECRET": WEBHOOK_SECRET,
        # a second system of record the service's operator set up: served tasks name it as env:<this variable>
        "AIOS_SYSTEM_OF_RECORD_URL_GRPC": f"sqlite:///{server_state}/grpc_sor.db",
        "AIOS_TEST_NOT_A_URL": "AKIA-service-key-" + secrets.token_hex(8),  # a variable no task may name
        "TMPDIR": str(server_state / "tmp"),
        "FLYTE_SDK_LOGGING_LEVEL": "10",  # debug: the secret must stay out of even the noisiest logs
    }
    with connector_server(env, server_state) as server:
        yield server


@pytest.fixture(scope="session")
def channel(connector: ConnectorServer) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(connector.target) as ch:
        yield ch


@pytest.fixture
def shared_state(server_state: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point this test process at the connector's audit store (to open and decide approvals there)."""
    from flytekitplugins.aios_audit import close_all
    from flytekitplugins.aios_core.settings import reset_settings

    monkeypatch.setenv("AIOS_STATE_DIR", str(server_state))
    monkeypatch.setenv("AIOS_AUDIT_STORE", f"sqlite:///{server_state}/audit.db")
    reset_settings()
    close_all()
    return server_state
