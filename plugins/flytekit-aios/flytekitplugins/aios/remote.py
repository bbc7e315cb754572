"""Cluster side of the CLI: the caller's identity from Flyte's auth, and the gate signal via FlyteRemote.

Locally (``approvals_backend: local``) identity is ``--as``, checked against roles.yaml: trust on
configuration, since anyone who can edit the config or run the CLI can claim any principal. Against a
cluster (``approvals_backend: flyteremote``) the principal is ``user:<preferred_username>`` from FlyteAdmin's
``IdentityService.UserInfo`` for the CLI's OAuth token; ``--as`` may only repeat it.

After an accepted decision leaves no pending request of that gate in that execution, the CLI sets the Flyte
signal (``SignalSetRequest`` with a boolean ``true`` literal, the value ``FlyteRemote.approve`` sends). The
signal only means "decisions are in": the verification task after the gate decides what each is worth.
"""

from __future__ import annotations

from typing import Any

from flyteidl.admin import signal_pb2
from flyteidl.core import identifier_pb2, literals_pb2

from flytekitplugins.aios_approvals.clock import get_clock
from flytekitplugins.aios_approvals.evaluate import Env, evaluate
from flytekitplugins.aios_approvals.models import ApprovalRequest
from flytekitplugins.aios_approvals.state import pending_candidates
from flytekitplugins.aios_core.errors import AiosError


class RemoteError(AiosError):
    """The cluster could not be reached or refused the call."""


def split_execution(execution: str) -> tuple[str, str, str]:
    """``project/domain/name`` -> its three parts; anything else is an error naming the value."""
    parts = execution.split("/")
    if len(parts) != 3 or not all(parts):
        msg = f"request execution {execution!r} is not project/domain/name: was the request opened in a Flyte task?"
        raise RemoteError(msg)
    return parts[0], parts[1], parts[2]


def build_signal_request(signal_id: str, execution: str, value: bool = True) -> signal_pb2.SignalSetRequest:
    """The flyteidl request that releases gate ``signal_id`` of ``execution`` (what ``set_signal`` sends)."""
    project, domain, name = split_execution(execution)
    return signal_pb2.SignalSetRequest(
        id=identifier_pb2.SignalIdentifier(
            signal_id=signal_id,
            execution_id=identifier_pb2.WorkflowExecutionIdentifier(project=project, domain=domain, name=name),
        ),
        value=literals_pb2.Literal(scalar=literals_pb2.Scalar(primitive=literals_pb2.Primitive(boolean=value))),
    )


def flyte_remote(execution: str = "") -> Any:
    """A FlyteRemote from the usual flytekit config (``FLYTECTL_CONFIG``, ``~/.flyte/config.yaml``)."""
    from flytekit.configuration import Config
    from flytekit.remote import FlyteRemote

    project, domain = (split_execution(execution)[:2]) if execution else (None, None)
    return FlyteRemote(Config.auto(), default_project=project, default_domain=domain)


def cluster_principal(remote: Any) -> str:
    """``user:<preferred_username>`` of the CLI's OAuth identity, from FlyteAdmin's UserInfo.

    Without a ``preferred_username`` the whole e-mail address is the name (``user:carol@example.com``), then the
    subject: never the e-mail's local part, which made ``carol@attacker.example`` the approver ``user:carol``."""
    from flyteidl.service import identity_pb2, identity_pb2_grpc

    from flytekitplugins.aios.compat import CompatError
    from flytekitplugins.aios.compat.flytekit import remote_grpc_channel

    try:
        channel = remote_grpc_channel(remote)
        info = identity_pb2_grpc.IdentityServiceStub(channel).UserInfo(identity_pb2.UserInfoRequest())
    except CompatError:
        raise  # the installed flytekit lacks what the pack relies on: the message names the pin
    except Exception as e:
        msg = f"cannot read your identity from the Flyte cluster ({e}); log in (`flytectl`/pyflyte auth) and retry"
        raise RemoteError(msg) from e
    name = info.preferred_username or info.email or info.subject
    if not name:
        msg = "the Flyte cluster returned no user identity: is authentication enabled on FlyteAdmin?"
        raise RemoteError(msg)
    return f"user:{name}"


def gate_settled(env: Env, req: ApprovalRequest) -> bool:
    """True when no request of ``req``'s gate in ``req``'s execution is still pending."""
    for st in pending_candidates(env.store, get_clock().now()):  # unexpired, its approval unused
        r = st.request
        if r.execution == req.execution and r.signal_id == req.signal_id and evaluate(st, env).status == "pending":
            return False
    return True


def release_gate(remote: Any, req: ApprovalRequest) -> signal_pb2.SignalSetRequest:
    """Set the gate's signal through ``FlyteRemote.set_signal``; returns the request it sends."""
    from flytekit.models.literals import Literal

    msg = build_signal_request(req.signal_id, req.execution, True)
    project, domain, name = split_execution(req.execution)
    try:
        remote.set_signal(req.signal_id, name, Literal.from_flyte_idl(msg.value), project=project, domain=domain)
    except Exception as e:
        text = f"setting signal {req.signal_id!r} on {req.execution} failed: {e}"
        raise RemoteError(text) from e
    return msg
