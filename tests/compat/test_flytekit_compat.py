"""Pins the private flytekit members the pack relies on (flytekitplugins.aios.compat.flytekit)."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import OrderedDict
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from flyteidl.service import identity_pb2, identity_pb2_grpc
from flytekit import FlyteContextManager, LaunchPlan, task, workflow
from flytekit.configuration import Config
from flytekit.core import interface as flyte_interface
from flytekit.core.checkpointer import SyncCheckpoint
from flytekit.core.gate import Gate
from flytekit.models.interface import ParameterMap
from flytekit.models.literals import LiteralMap
from flytekit.remote import FlyteRemote

from flytekitplugins.aios.compat import CompatError
from flytekitplugins.aios.compat import flytekit as compat


class _Identity(identity_pb2_grpc.IdentityServiceServicer):
    def UserInfo(self, request: Any, context: Any) -> Any:
        return identity_pb2.UserInfoResponse(preferred_username="alice", subject="sub-alice")


@pytest.fixture
def admin() -> Any:
    """A real gRPC server on localhost answering FlyteAdmin's IdentityService; yields its endpoint."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    identity_pb2_grpc.add_IdentityServiceServicer_to_server(_Identity(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}"
    server.stop(0)


def test_remote_channel_is_a_grpc_channel_a_flyteidl_stub_calls(admin: str) -> None:
    """RawSynchronousFlyteClient._channel: a grpc.Channel on which a generated flyteidl stub reaches FlyteAdmin."""
    from flytekitplugins.aios.remote import cluster_principal

    remote = FlyteRemote(Config.for_endpoint(admin, insecure=True))
    channel = compat.remote_grpc_channel(remote)
    assert isinstance(channel, grpc.Channel)
    info = identity_pb2_grpc.IdentityServiceStub(channel).UserInfo(identity_pb2.UserInfoRequest(), timeout=10)
    assert info.preferred_username == "alice"
    assert cluster_principal(remote) == "user:alice"  # the pack's caller, end to end


def test_setting_the_interface_changes_what_the_gate_reports() -> None:
    """Gate._python_interface: what Gate.python_interface reports (None until set for an approval gate)."""
    gate = Gate("payment-signoff", upstream_item="ids", timeout=dt.timedelta(minutes=1))
    with pytest.raises(ValueError, match="outside of compilation"):
        gate.python_interface
    iface = flyte_interface.Interface(inputs={"o0": list[str]}, outputs={"o0": list[str]})
    compat.set_python_interface(gate, iface)
    assert gate.python_interface is iface
    assert gate.python_interface.inputs == {"o0": list[str]} and gate.python_interface.outputs == {"o0": list[str]}


def test_setting_the_interface_of_an_entity_without_one_names_the_pin() -> None:
    with pytest.raises(CompatError, match=r"_python_interface.*flytekit==1\.16\.31"):
        compat.set_python_interface(object(), flyte_interface.Interface())


@dataclass
class _Row:
    name: str
    amount: float


def test_literal_map_helpers_round_trip_typed_values_inside_an_event_loop() -> None:
    """TypeEngine._dict_to_literal_map / _literal_map_to_kwargs: awaitable, typed, inverse of each other."""
    values: dict[str, Any] = {"n": 3, "names": [], "scores": {"a": 1.5}, "ok": True, "row": _Row("x", 2.0)}
    types: dict[str, type] = {"n": int, "names": list[str], "scores": dict[str, float], "ok": bool, "row": _Row}

    async def round_trip() -> tuple[LiteralMap, dict[str, Any]]:
        ctx = FlyteContextManager.current_context()
        lm = await compat.dict_to_literal_map(ctx, values, type_hints=types)
        return lm, await compat.literal_map_to_kwargs(ctx, lm, python_types=types)

    lm, back = asyncio.run(round_trip())
    assert isinstance(lm, LiteralMap) and set(lm.literals) == set(values)
    assert lm.literals["names"].collection is not None and lm.literals["names"].collection.literals == []
    assert lm.literals["n"].scalar.primitive.integer == 3
    assert back == values


def test_launch_plan_parameters_are_what_the_launch_plan_serializes() -> None:
    """LaunchPlan._parameters: read by LaunchPlan.parameters (no setter) and written by serialization."""
    from flytekit.configuration import Image, ImageConfig, SerializationSettings
    from flytekit.models.interface import Parameter, Variable
    from flytekit.tools.translator import get_serializable

    @task
    def double(n: int) -> int:
        return 2 * n

    @workflow
    def compat_lp_wf(n: int = 1) -> int:
        return double(n=n)

    lp = LaunchPlan.get_or_create(workflow=compat_lp_wf, name="compat_lp_pin")
    old = lp.parameters.parameters["n"]
    var = Variable(old.var.type, "how many")
    params = ParameterMap({"n": Parameter(var, default=old.default, required=old.required)})
    compat.set_launch_plan_parameters(lp, params)
    assert lp.parameters is params
    image = Image(name="default", fqn="ghcr.io/x/y", tag="t")
    settings = SerializationSettings(image_config=ImageConfig(default_image=image, images=[image]))
    idl = get_serializable(OrderedDict(), settings, lp).to_flyte_idl()
    assert idl.spec.default_inputs.parameters["n"].var.description == "how many"


def test_sync_checkpoint_locations_are_the_constructor_arguments(tmp_path: Path) -> None:
    """SyncCheckpoint._checkpoint_dest / _checkpoint_src: the locations it was built with (empty source: None)."""
    dest, src = str(tmp_path / "dest"), str(tmp_path / "src")
    assert compat.sync_checkpoint_locations(SyncCheckpoint(checkpoint_dest=dest, checkpoint_src=src)) == (dest, src)
    assert compat.sync_checkpoint_locations(SyncCheckpoint(checkpoint_dest=dest, checkpoint_src="")) == (dest, None)


def test_connector_exception_handler_is_the_name_the_service_calls() -> None:
    """connector_service._handle_exception: what the service's handlers call, looked up at call time."""
    cs = pytest.importorskip("flytekit.extend.backend.connector_service")
    before = compat.connector_exception_handler()
    seen: list[tuple[str, str]] = []

    def handler(e: Exception, context: Any, task_type: str, operation: str) -> None:
        seen.append((task_type, operation))

    class _Context:
        def set_code(self, code: Any) -> None: ...
        def set_details(self, details: str) -> None: ...

    try:
        compat.replace_connector_exception_handler(handler)
        assert compat.connector_exception_handler() is handler
        # the real service, a task type no connector serves: flytekit reports the error through the handler
        asyncio.run(cs.AsyncConnectorService().GetTask(cs.GetTaskRequest(task_type="compat-pin"), _Context()))
        assert seen == [("compat-pin", cs.get_operation)]
    finally:
        compat.replace_connector_exception_handler(before)
    assert compat.connector_exception_handler() is before


def test_a_client_without_the_channel_fails_with_the_pin_not_a_login_hint() -> None:
    """cluster_principal passes a CompatError on: logging in again would not help."""
    from flytekitplugins.aios.remote import cluster_principal

    class _NoChannelRemote:  # a client of a flytekit that no longer keeps the channel
        client = object()

    with pytest.raises(CompatError, match=r"RawSynchronousFlyteClient\._channel.*install flytekit==1\.16\.31"):
        cluster_principal(_NoChannelRemote())


def test_instantiated_in_decides_the_registered_name_and_the_resolver_finds_the_alias() -> None:
    """TrackedInstance._instantiated_in: with it and the function's module both set to the core's alias module,
    the task keeps its pre-split name and flytekit's default resolver loads it from that alias, as on a pod."""
    from flytekit.core.python_auto_container import default_task_resolver

    from flytekitplugins.aios.policy_check import policy_check
    from flytekitplugins.aios_approvals.gate import verify_approvals

    for made, module, name in (
        (verify_approvals, "flytekitplugins.aios_approvals.gate", "verify_approvals"),
        (policy_check, "flytekitplugins.aios_policy.check", "policy_check"),
    ):
        assert made.name == f"{module}.{name}"
        args = made.task_resolver.loader_args(None, made)
        assert args == ["task-module", module, "task-name", name]
        assert default_task_resolver.load_task(args) is made


def test_setting_instantiated_in_on_an_object_without_it_names_the_pin() -> None:
    with pytest.raises(CompatError, match=r"flytekit==1\.16\.31"):
        compat.set_instantiated_in(object(), "x")
