"""The runbook's commands, names and deploy files agree with the code, and its connector command really serves."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import grpc
import pytest
import yaml
from flyteidl.admin import agent_pb2
from flyteidl.service import agent_pb2_grpc

from flytekitplugins.aios_connectors import constants as c
from tests.connectors.harness import connector_server

REPO = Path(__file__).resolve().parents[2]
RUNBOOK = (REPO / "docs" / "runbook.md").read_text()
DEPLOY = REPO / "deploy"


def _connector_task_types() -> set[str]:
    from flytekitplugins.aios_connectors.system_of_record import SYSTEM_OF_RECORD_TASK_TYPE

    return {c.POLICY_DECISION_TASK_TYPE, c.APPROVAL_NOTIFICATION_TASK_TYPE, SYSTEM_OF_RECORD_TASK_TYPE}


def _serve_command() -> list[str]:
    lines = {m.strip() for m in re.findall(r"^(pyflyte serve connector .+)$", RUNBOOK, flags=re.M)}
    assert len(lines) == 1, f"the runbook should give one serve command, found {lines}"
    return shlex.split(lines.pop())


def _connector_container() -> dict:
    docs = list(yaml.safe_load_all((DEPLOY / "connector.yaml").read_text()))
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return container


def test_deployment_runs_exactly_the_runbook_command() -> None:
    assert _connector_container()["command"] == _serve_command()
    assert (REPO / "docs" / "connectors.md").read_text().count(" ".join(_serve_command())) == 1


def test_secret_names_agree_everywhere() -> None:
    env = {e["name"]: e.get("valueFrom", {}).get("secretKeyRef") for e in _connector_container()["env"]}
    expected = {
        c.AUDIT_STORE_ENV: c.AUDIT_STORE_SECRET_KEY,
        c.CHECKPOINT_KEY_ENV: c.CHECKPOINT_KEY_SECRET_KEY,
        c.WEBHOOK_URL_ENV: c.WEBHOOK_URL_SECRET_KEY,
        c.WEBHOOK_SECRET_ENV: c.WEBHOOK_SECRET_SECRET_KEY,
    }
    for var, key in expected.items():
        assert env[var] == {"name": c.SECRET_GROUP, "key": key}, var
        assert f"| `{key}` | `{var}` |" in RUNBOOK, f"runbook secrets table lacks {key} -> {var}"
    example = yaml.safe_load((DEPLOY / "secrets.example.yaml").read_text())
    assert example["metadata"]["name"] == c.SECRET_GROUP
    assert set(example["stringData"]) == set(expected.values())
    # placeholders only: nothing that could be a real credential is committed
    assert all(v.startswith("<") and v.endswith(">") for v in example["stringData"].values())
    cluster = yaml.safe_load((REPO / "config" / "profiles" / "cluster.yaml").read_text())
    assert cluster["audit_store"] == f"env:{c.AUDIT_STORE_ENV}"
    assert cluster["signing_key"] == f"env:{c.CHECKPOINT_KEY_ENV}"


def test_task_secret_requests_mount_the_profile_variables() -> None:
    from tasks.images import CONNECTOR_SECRETS, GOVERNED_TASK_SECRETS

    got = {(s.group, s.key, s.env_var) for s in GOVERNED_TASK_SECRETS}
    assert got == {
        (c.SECRET_GROUP, c.AUDIT_STORE_SECRET_KEY, c.AUDIT_STORE_ENV),
        (c.SECRET_GROUP, c.CHECKPOINT_KEY_SECRET_KEY, c.CHECKPOINT_KEY_ENV),
    }
    assert {s.env_var for s in CONNECTOR_SECRETS} == {e["name"] for e in _connector_container()["env"]} - {
        "AIOS_PROFILE"
    }


@pytest.mark.parametrize("path", ["propeller-connector.yaml", "flyte-binary-values.yaml"])
def test_propeller_routes_every_connector_task_type(path: str) -> None:
    cfg = yaml.safe_load((DEPLOY / path).read_text())
    cfg = cfg.get("configuration", {}).get("inline", cfg)
    plugins = cfg["tasks"]["task-plugins"]
    service = cfg["plugins"]["connector-service"]
    assert "connector-service" in plugins["enabled-plugins"]
    for task_type in _connector_task_types():
        assert plugins["default-for-task-types"][task_type] == "connector-service", task_type
        deployment = service["connectorForTaskTypes"][task_type]
        assert service["connectors"][deployment]["endpoint"].endswith(":8000"), task_type


def test_create_timeout_outlasts_the_webhook_retries() -> None:
    from flytekitplugins.aios_connectors import ApprovalNotificationConfig

    worst = ApprovalNotificationConfig().retry_policy().worst_case_s()
    assert worst == 43.5 and "43.5 s" in RUNBOOK
    for path in ["propeller-connector.yaml", "flyte-binary-values.yaml"]:
        cfg = yaml.safe_load((DEPLOY / path).read_text())
        cfg = cfg.get("configuration", {}).get("inline", cfg)
        timeouts = cfg["plugins"]["connector-service"]["connectors"]["aios-connector"]["timeouts"]
        assert float(timeouts["CreateTask"].rstrip("s")) > worst, path


def test_package_command_of_the_runbook_is_the_tested_one() -> None:
    assert (
        "pyflyte --pkgs workflows package --image ghcr.io/flyte-aios/flyte-aios:0.1.0 -o flyte-package.tgz" in RUNBOOK
    )


@pytest.mark.slow
def test_the_runbook_serve_command_serves_every_task_type(tmp_path: Path) -> None:
    argv = _serve_command()
    # the connectors come from the flytekit.plugins entry point of flytekitplugins-aios-connectors, not --modules
    assert "--modules" not in argv, argv
    modules = tuple(argv[i + 1] for i, a in enumerate(argv) if a == "--modules")
    env = {"AIOS_STATE_DIR": str(tmp_path), "AIOS_CONFIG_DIR": str(REPO / "config"), "TMPDIR": str(tmp_path)}
    with connector_server(env, tmp_path, modules=modules) as server, grpc.insecure_channel(server.target) as ch:
        agents = agent_pb2_grpc.AgentMetadataServiceStub(ch).ListAgents(agent_pb2.ListAgentsRequest(), timeout=5)
        served = {t for a in agents.agents for t in a.supported_task_types}
        assert _connector_task_types() <= served
        assert "Connector Metadata" in server.log_text()
