"""Credentials never leak: the masking helper, the real `aios` CLI, and the connector server's gRPC answers.

The PostgreSQL test server trusts any password, so a URL carrying the canary password works as a real store.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from flyteidl.admin import agent_pb2
from flyteidl.core.execution_pb2 import TaskExecution
from flyteidl.service import agent_pb2_grpc

from tests.connectors.harness import REPO, ConnectorServer, connector_server

CANARY = "s3cr3t-canary"
MASK = "***"
AIOS = str(Path(sys.executable).parent / "aios")


def _new_signing_pem() -> str:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

    return Ed25519PrivateKey.generate().private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode()


SIGNING_PEM = _new_signing_pem()
"""The leaky servers' signing key (AIOS_SIGNING_KEY=env:...): this module seals their resource metadata with it."""


def _with_password(url: str, password: str = CANARY) -> str:
    return url.replace("postgres@", f"postgres:{password}@", 1)


@pytest.mark.parametrize(
    "text",
    [
        f"postgresql://postgres:{CANARY}@127.0.0.1:5432/test?options=-csearch_path%3Dx",
        f"cannot open the store postgresql+psycopg://app:{CANARY}@db.internal/aios: connection refused",
        f"postgresql://app:{CANARY}@with@at@db/aios",
        f"host=db port=5432 user=app password={CANARY} dbname=aios",
        f"host=db user=app password='{CANARY} with blanks' dbname=aios",
        f"postgresql://db/aios?user=app&password={CANARY}&sslmode=require",
        f"https://api.example.com/v1?api_key={CANARY}&q=1",
        f"https://hooks.example.com/x?token={CANARY}",
        f"https://{CANARY}@github.com/org/repo.git",
        f"{{'Authorization': 'Bearer {CANARY}', 'X-API-Key': '{CANARY}'}}",
        f"Authorization: Basic {CANARY}",
        f'{{"client_secret": "{CANARY}", "access_token": "{CANARY}"}}',
        f"input_value='postgresql://postgres:{CANARY}@h/d', input_type=str",
        # libpq takes a password as written: each of these characters ended the userinfo, so it was shown in full
        *(f"postgresql://app:{CANARY}{c}x@db/aios" for c in ['"', "'", "#", "?", "<", " ", "> "]),
        f"password:{CANARY}",
        *(f"https://store.example.com/o?{p}={CANARY}&x=1" for p in ("sig", "key", "code", "auth")),
    ],
)
def test_every_credential_form_is_masked(text: str) -> None:
    from flytekitplugins.aios_core.redact import mask_text

    out = mask_text(text)
    assert CANARY not in out and MASK in out


def test_what_is_not_secret_stays_readable() -> None:
    from flytekitplugins.aios_core.redact import mask_text, mask_url

    assert mask_url("postgresql://postgres@127.0.0.1:5432/test") == "postgresql://postgres@127.0.0.1:5432/test"
    assert mask_url("sqlite:////tmp/aios/audit.db") == "sqlite:////tmp/aios/audit.db"
    masked = mask_url("postgresql://app:pw-42xy@db:5432/aios?sslmode=require")
    assert masked == "postgresql://app:***@db:5432/aios?sslmode=require"
    assert mask_text("password authentication failed for user app") == "password authentication failed for user app"


def test_libpq_s_own_message_quoting_a_password_with_blanks_is_masked() -> None:
    """libpq rejects the URL and quotes the part after the user name back; the password must not survive."""
    import psycopg

    from flytekitplugins.aios_core.redact import mask_text, mask_url

    url = f"postgresql://app:{CANARY} x@127.0.0.1:1/aios"
    assert CANARY not in mask_url(url)
    with pytest.raises(psycopg.Error) as info:
        psycopg.connect(url, connect_timeout=2)
    assert CANARY not in mask_text(info.value)


def test_a_masked_url_s_password_is_masked_wherever_it_is_quoted_later() -> None:
    from flytekitplugins.aios_core.redact import mask_text, mask_url

    mask_url("postgresql://postgres:pct-canary%zz@127.0.0.1:5432/test")
    assert mask_text('invalid percent-encoded token: "pct-canary%zz"') == f'invalid percent-encoded token: "{MASK}"'


def test_the_webhook_target_prints_its_origin_only() -> None:
    from flytekitplugins.aios_connectors.webhook import WebhookTarget

    text = repr(WebhookTarget(url=f"https://hooks.example.com/services/T0/{CANARY}", secret=CANARY))
    assert CANARY not in text and "hooks.example.com" in text


def test_one_line_error_names_the_type_and_masks() -> None:
    from flytekitplugins.aios_core.redact import one_line_error

    err = RuntimeError(f"boom\n  at postgresql://u:{CANARY}@h/db\n")
    assert one_line_error(err) == "RuntimeError: boom at postgresql://u:***@h/db"


def _aios(*args: str, store: str, cwd: Path) -> str:
    env = {**os.environ, "AIOS_AUDIT_STORE": store}
    done = subprocess.run([AIOS, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)
    return done.stdout + done.stderr


def test_the_cli_never_prints_the_store_password(pg_url: str, tmp_path: Path) -> None:
    store = _with_password(pg_url)
    table = _aios("config", "show", store=store, cwd=tmp_path)
    assert f"postgres:{MASK}@127.0.0.1" in table and CANARY not in table
    shown = _aios("config", "show", "--json", store=store, cwd=tmp_path)
    assert json.loads(shown)["settings"]["audit_store"].startswith(f"postgresql://postgres:{MASK}@127.0.0.1")
    absent = _aios("approvals", "show", "no-such-request", store=store, cwd=tmp_path)  # a read creates no store
    assert "no audit log at postgresql://postgres:" in absent and f"postgres:{MASK}@" in absent
    from flytekitplugins.aios_audit.stores import open_store

    open_store(store).close()  # the schema's tables: now the look-up reaches the store
    missing = _aios("approvals", "show", "no-such-request", store=store, cwd=tmp_path)
    assert "no approval request 'no-such-request'" in missing and f"postgres:{MASK}@" in missing
    flag = _aios("--store", store, "approvals", "show", "no-such-request", store="sqlite:///unused.db", cwd=tmp_path)
    down = _aios("approvals", "list", store=_with_password(pg_url).replace(":5432/", ":1/"), cwd=tmp_path)
    assert "cannot reach the PostgreSQL audit store" in down  # the listing's check that the store exists
    # libpq quotes a malformed password token bare in its error: still masked
    broken = _aios("approvals", "list", store=_with_password(pg_url, CANARY + "%zz"), cwd=tmp_path)
    assert "invalid percent-encoded token" in broken
    for out in (shown, absent, missing, flag, down, broken):
        assert CANARY not in out, out
        assert "Traceback" not in out


@pytest.fixture(scope="module")
def leaky_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, ConnectorServer]]:
    """Two connector servers whose audit store URL carries the canary password: reachable and malformed."""
    from tests.conftest import PG_URL, _pg_available

    if not _pg_available(PG_URL):
        pytest.skip(f"no PostgreSQL server at {PG_URL}")
    servers: dict[str, ConnectorServer] = {}
    stores = {"reachable": _with_password(PG_URL), "malformed": _with_password(PG_URL, CANARY + "%zz")}
    from contextlib import ExitStack

    with ExitStack() as stack:
        for name, store in stores.items():
            state = tmp_path_factory.mktemp(f"leaky-{name}")
            (state / "tmp").mkdir()
            env = {
                "AIOS_STATE_DIR": str(state),
                "AIOS_CONFIG_DIR": str(REPO / "config"),
                "AIOS_AUDIT_STORE": store,
                "AIOS_APPROVAL_WEBHOOK_URL": "http://127.0.0.1:9/hook",
                "AIOS_APPROVAL_WEBHOOK_SECRET": "whsec-unused",
                "AIOS_SIGNING_KEY": "env:AIOS_TEST_SIGNING_KEY",  # the test seals resource metadata with it
                "AIOS_TEST_SIGNING_KEY": SIGNING_PEM,
                "TMPDIR": str(state / "tmp"),
                "FLYTE_SDK_LOGGING_LEVEL": "10",
            }
            servers[name] = stack.enter_context(connector_server(env, state))
        yield servers


def _assert_clean(text: str) -> None:
    assert CANARY not in text, text
    assert "Traceback" not in text and "\n" not in text.strip(), text


def test_grpc_errors_are_one_masked_line_without_traceback(leaky_servers: dict[str, ConnectorServer]) -> None:
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    from flytekitplugins.aios_connectors.approval_connector import ApprovalNotificationMetadata, _meta_mac, seal_key
    from flytekitplugins.aios_connectors.constants import APPROVAL_NOTIFICATION_TASK_TYPE

    # metadata sealed with the servers' key (a forged one is refused before the store is touched): get then reads
    # the store, whose URL carries the canary password, and fails
    sealed = ApprovalNotificationMetadata(request_id="no-such-request", gate="g", deadline=4e9)
    sealed.mac = _meta_mac(sealed, seal_key(load_pem_private_key(SIGNING_PEM.encode(), password=None)))
    meta = sealed.encode()
    category = agent_pb2.TaskCategory(name=APPROVAL_NOTIFICATION_TASK_TYPE, version=0)
    for server in leaky_servers.values():
        with grpc.insecure_channel(server.target) as ch:
            stub = agent_pb2_grpc.AsyncAgentServiceStub(ch)
            with pytest.raises(grpc.RpcError) as e:
                stub.GetTask(agent_pb2.GetTaskRequest(task_category=category, resource_meta=meta), timeout=20)
        assert e.value.code() == grpc.StatusCode.INTERNAL
        _assert_clean(e.value.details())
        assert e.value.details().startswith(f"failed to get {APPROVAL_NOTIFICATION_TASK_TYPE} task: ")


def test_a_failed_policy_decision_names_the_error_not_the_password(leaky_servers: dict[str, ConnectorServer]) -> None:
    from flytekitplugins.aios_connectors import PolicyDecisionTask
    from flytekitplugins.aios_connectors.policy_task import POLICY_INPUTS
    from tests.connectors.protos import execution_metadata, literal_map, template_of

    values = {
        "principal": "service:document-pipeline",
        "action": "act_on_document",
        "resource": {"type": "Document", "id": "sha256:0f3c9a"},
        "context": {"amount": 1.0, "currency": "EUR", "data_class": "internal", "doc_type": "invoice", "confidence": 1},
    }
    task = PolicyDecisionTask(name="leaky_gate")

    def stream() -> Iterator[agent_pb2.ExecuteTaskSyncRequest]:
        header = agent_pb2.CreateRequestHeader(
            template=template_of(task), output_prefix="/tmp/o", task_execution_metadata=execution_metadata()
        )
        yield agent_pb2.ExecuteTaskSyncRequest(header=header)
        yield agent_pb2.ExecuteTaskSyncRequest(inputs=literal_map(values, POLICY_INPUTS))

    server = leaky_servers["malformed"]
    with grpc.insecure_channel(server.target) as ch:
        (res,) = list(agent_pb2_grpc.SyncAgentServiceStub(ch).ExecuteTaskSync(stream(), timeout=30))
    assert res.header.resource.phase == TaskExecution.FAILED
    _assert_clean(res.header.resource.message)
    for s in leaky_servers.values():
        assert CANARY not in s.log_text()


def test_a_key_written_inline_is_refused_and_never_shown(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """AIOS_SIGNING_KEY / AIOS_APPROVALS_KEY holding the PEM itself: `aios config show` printed it, the checkpoint
    error quoted it, and the approvals key loader took it for a path and wrote a new random key to a file named
    after it."""
    from flytekitplugins.aios_audit.checkpoint import load_signing_key
    from flytekitplugins.aios_core.errors import ConfigError
    from flytekitplugins.aios_core.keys import ed25519_pem

    body = SIGNING_PEM.splitlines()[1]
    env = {**os.environ, "AIOS_SIGNING_KEY": SIGNING_PEM, "AIOS_APPROVALS_KEY": SIGNING_PEM}
    env["AIOS_AUDIT_STORE"] = f"sqlite:///{tmp_path}/audit.db"
    for args in (["config", "show"], ["config", "show", "--json"]):
        done = subprocess.run([AIOS, *args], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert body not in done.stdout + done.stderr
    for spec in (SIGNING_PEM, "-----BEGIN PRIVATE KEY-----\\n" + body):
        with pytest.raises(ConfigError) as info:
            load_signing_key(spec)
        assert body not in str(info.value) and "inline" in str(info.value)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="written inline"):
        ed25519_pem(SIGNING_PEM, what="approvals signing key")
    assert [p.name for p in tmp_path.rglob("*") if "BEGIN" in p.name] == []  # no key file named after the secret
