"""What a cluster sees: the serialized gate node, and the SignalSetRequest the CLI sends (no server contacted)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flyteidl.admin import signal_pb2, task_pb2, workflow_pb2
from flyteidl.service import identity_pb2
from flytekit.configuration import Config
from flytekit.remote import FlyteRemote

from flytekitplugins.aios import remote as remote_mod
from flytekitplugins.aios_approvals import open_request, outcome
from flytekitplugins.aios_approvals.evaluate import Env
from flytekitplugins.aios_audit import audit_log
from flytekitplugins.aios_core.cli import cli
from flytekitplugins.aios_core.errors import ConfigError
from flytekitplugins.aios_core.settings import get_settings, reset_settings

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_serialized_workflow_has_the_gate_node(tmp_path: Path) -> None:
    out = tmp_path / "pb"
    out.mkdir()
    cmd = [
        str(Path(sys.executable).parent / "pyflyte"),
        "--pkgs",
        "tests.approvals.approval_wf",
        "serialize",
        "--image",
        "ghcr.io/example/aios:1",
        "workflows",
        "-f",
        str(out),
    ]
    subprocess.run(cmd, cwd=REPO, check=True, capture_output=True, timeout=120)
    spec = workflow_pb2.WorkflowSpec()
    spec.ParseFromString(next(out.glob("*approval_wf.payment_wf_2.pb")).read_bytes())
    nodes = {n.id: n for n in spec.template.nodes}
    gates = [n for n in nodes.values() if n.HasField("gate_node")]
    assert len(gates) == 1
    gate = gates[0]
    assert gate.gate_node.approve.signal_id == "payment-signoff"
    assert gate.metadata.timeout.seconds == 600 and gate.metadata.name == "payment-signoff"
    verify = [n for n in nodes.values() if n.task_node.reference_id.name.endswith("gate.verify_approvals")]
    assert len(verify) == 1 and gate.id in verify[0].upstream_node_ids
    gate_input = {b.var: b.binding.scalar.primitive.string_value for b in verify[0].inputs}["gate"]
    assert gate_input == "payment-signoff"
    pay_small = next(n for n in nodes.values() if n.task_node.reference_id.name.endswith("pay_small"))
    assert gate.id not in pay_small.upstream_node_ids  # work that needs no approval does not wait
    task = task_pb2.TaskSpec()
    task.ParseFromString(next(out.glob("*verify_approvals_1.pb")).read_bytes())
    assert task.template.metadata.generates_deck.value is True
    short = workflow_pb2.WorkflowSpec()
    short.ParseFromString(next(out.glob("*short_gate_wf_2.pb")).read_bytes())
    assert [n.metadata.timeout.seconds for n in short.template.nodes if n.HasField("gate_node")] == [2]


class _Channel:
    """A gRPC channel stand-in answering IdentityService.UserInfo; nothing leaves the process."""

    def __init__(self, user: str, email: str = "") -> None:
        self.user, self.email = user, email

    def unary_unary(self, method: str, *args: Any, **kwargs: Any) -> Any:
        assert method == "/flyteidl.service.IdentityService/UserInfo"
        info = identity_pb2.UserInfoResponse(preferred_username=self.user, email=self.email, subject="sub-" + self.user)
        return lambda req, **kw: info


class _Client:
    def __init__(self, user: str, email: str = "") -> None:
        self._channel = _Channel(user, email)
        self.sent: list[signal_pb2.SignalSetRequest] = []

    def set_signal(self, req: signal_pb2.SignalSetRequest) -> None:
        self.sent.append(req)


@pytest.fixture
def cluster(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, _Client]]:
    """Cluster execution identity for tasks (flytepropeller's variables, inside the task-execution state flytekit's
    cluster entrypoint sets), flyteremote backend for the CLI, a real FlyteRemote with a fake client."""
    from flytekit.core.context_manager import ExecutionState, FlyteContextManager

    for var, val in {"PROJECT": "flytesnacks", "DOMAIN": "development", "ID": "f3a9c1b2"}.items():
        monkeypatch.setenv(f"FLYTE_INTERNAL_EXECUTION_{var}", val)
    monkeypatch.setenv("AIOS_PRINCIPAL", "service:document-pipeline")
    reset_settings()
    clients: dict[str, _Client] = {}

    def fake_remote(execution: str = "") -> FlyteRemote:
        r = FlyteRemote(Config.for_endpoint("flyte.example.com"))
        r._client, r._client_initialized = clients["current"], True
        return r

    monkeypatch.setattr(remote_mod, "flyte_remote", fake_remote)
    ctx = FlyteContextManager.current_context()
    state = ctx.execution_state.with_params(mode=ExecutionState.Mode.TASK_EXECUTION)
    with FlyteContextManager.with_context(ctx.with_execution_state(state)):
        yield clients


def _cli(args: list[str], backend: str = "flyteremote") -> Any:
    return CliRunner().invoke(cli, ["approvals", *args], env={"AIOS_APPROVALS_BACKEND": backend})


def test_cli_sets_the_signal_once_the_last_request_is_decided(cluster: dict[str, _Client]) -> None:
    ids = [
        open_request(
            "payment-signoff",
            "medium",
            f"sha256:{i}",
            {"amount": 20000 + i},
            requester="service:x",
            env=Env.load(get_settings()),
        )
        for i in range(2)
    ]
    cluster["current"] = _Client("carol")
    first = _cli(["approve", ids[0]])
    assert first.exit_code == 0, first.output
    assert cluster["current"].sent == []  # one request of the gate is still pending
    second = _cli(["reject", ids[1], "--reason", "duplicate invoice"])
    assert second.exit_code == 0, second.output
    assert "signal 'payment-signoff' set on flytesnacks/development/f3a9c1b2" in second.output
    (req,) = cluster["current"].sent
    assert isinstance(req, signal_pb2.SignalSetRequest)
    assert req.id.signal_id == "payment-signoff"
    ex = req.id.execution_id
    assert (ex.project, ex.domain, ex.name) == ("flytesnacks", "development", "f3a9c1b2")
    assert req.value.scalar.primitive.boolean is True
    assert req == remote_mod.build_signal_request("payment-signoff", "flytesnacks/development/f3a9c1b2")
    assert [outcome(i, env=Env.load(get_settings())).status for i in ids] == ["approved", "rejected"]
    decision = next(r.event for r in audit_log(get_settings()).scan() if r.event.kind == "approval_decision")
    assert decision.actor == "user:carol"  # the identity came from the cluster, not from a flag


def test_cluster_identity_wins_over_as(cluster: dict[str, _Client]) -> None:
    rid = open_request(
        "payment-signoff", "medium", "sha256:z", {"amount": 1}, requester="service:x", env=Env.load(get_settings())
    )
    cluster["current"] = _Client("alice")
    res = _cli(["approve", rid, "--as", "user:carol"])
    assert res.exit_code == 3 and "identity_mismatch" in res.output
    assert cluster["current"].sent == [] and outcome(rid, env=Env.load(get_settings())).status == "pending"
    res = _cli(["approve", rid])
    assert res.exit_code == 3 and "refused (role)" in res.output
    refused = [
        (r.event.actor, r.event.status) for r in audit_log(get_settings()).scan() if r.event.kind == "approval_refused"
    ]
    assert refused == [("user:alice", "identity_mismatch"), ("user:alice", "role")]


def test_cluster_profile_signs_with_the_mounted_secret_not_a_per_pod_key(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Two pods (two state dirs) with the cluster profile sign with the same key: the Flyte secret."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from flytekitplugins.aios_approvals.signing import private_key
    from flytekitplugins.aios_core.settings import load_settings

    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    monkeypatch.setenv("AIOS_CHECKPOINT_KEY_PEM", pem.decode())
    monkeypatch.delenv("AIOS_APPROVALS_KEY", raising=False)
    raw = serialization.Encoding.Raw, serialization.PublicFormat.Raw
    keys = [
        private_key(load_settings({"profile": "cluster", "state_dir": str(tmp_path / f"pod{i}")})).public_key()
        for i in range(2)
    ]
    assert keys[0].public_bytes(*raw) == keys[1].public_bytes(*raw)
    assert not (tmp_path / "pod0" / "keys").exists()  # nothing generated inside the pod
    monkeypatch.delenv("AIOS_CHECKPOINT_KEY_PEM")
    with pytest.raises(ConfigError, match="AIOS_CHECKPOINT_KEY_PEM"):
        private_key(load_settings({"profile": "cluster", "state_dir": str(tmp_path / "pod2")}))


def test_an_identity_without_a_username_is_its_whole_e_mail_not_its_local_part(cluster: dict[str, _Client]) -> None:
    """An identity provider that sends no preferred_username: ``carol@attacker.example`` became ``user:carol``,
    a model approver in roles.yaml, and her approval counted."""
    rid = open_request(
        "payment-signoff", "medium", "sha256:y", {"amount": 1}, requester="service:x", env=Env.load(get_settings())
    )
    cluster["current"] = _Client("", email="carol@attacker.example")
    res = _cli(["approve", rid])
    assert res.exit_code == 3 and "'user:carol@attacker.example' is not listed" in res.output, res.output
    assert cluster["current"].sent == [] and outcome(rid, env=Env.load(get_settings())).status == "pending"
    refused = [r.event.actor for r in audit_log(get_settings()).scan() if r.event.kind == "approval_refused"]
    assert refused == ["user:carol@attacker.example"]
