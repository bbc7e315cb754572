"""The workflow-level approval gate: a real Flyte gate node followed by a verification task.

On a cluster, :func:`approval_gate` serializes to an ordinary ``ApproveCondition`` gate node (signal id =
gate name, timeout in the node metadata), so the console and ``FlyteRemote.set_signal`` work; the
``aios approvals`` CLI sets the signal once the last request of the gate in that execution is decided.
Locally the node never calls ``click.confirm``: it waits on the audit trail (see ``waiting``).
The task after the gate decides what the signal is worth: see ``verify``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flytekit import Deck
from flytekit.core import constants
from flytekit.core import interface as flyte_interface
from flytekit.core.context_manager import FlyteContext, FlyteContextManager
from flytekit.core.gate import Gate
from flytekit.core.promise import Promise, VoidPromise, flyte_entity_call_handler
from flytekit.core.type_engine import TypeEngine
from flytekit.deck import DeckField

from flytekitplugins.aios.compat.flytekit import set_python_interface
from flytekitplugins.aios.naming import registered_task
from flytekitplugins.aios_approvals.models import ApprovalOutcome
from flytekitplugins.aios_approvals.rules import validate_gate_name
from flytekitplugins.aios_approvals.verify import verify_requests
from flytekitplugins.aios_approvals.waiting import wait_for_decisions

DEFAULT_TIMEOUT = dt.timedelta(hours=1)


class ApprovalGate(Gate):
    """flytekit's approval gate with local execution replaced: wait on the audit trail, never on stdin."""

    def __init__(self, name: str, upstream_item: Any, timeout: dt.timedelta) -> None:
        super().__init__(name, upstream_item=upstream_item, timeout=timeout)
        self.approval_timeout = timeout

    def local_execute(self, ctx: FlyteContext, **kwargs: Any) -> Any:
        """Wait until every request is decided or expired; the timeout is enforced (the node fails)."""
        from flytekitplugins.aios_approvals.evaluate import Env
        from flytekitplugins.aios_core.settings import get_settings

        promise = next(iter(kwargs.values()))
        ids = TypeEngine.to_python_value(ctx, promise.val, list[str])
        env = Env.load(get_settings())  # the local gate node is an entry point: settings resolved once
        wait_for_decisions(self.name, ids, self.approval_timeout, env=env)
        return promise


# not flytekit's Input page: it wrote the request ids as they were launched, unescaped, into the Deck approvers open
# (a launcher's <img onerror=...> ran there); the pack's "approvals" page shows each request escaped
@registered_task("flytekitplugins.aios_approvals.gate", enable_deck=True, deck_fields=(DeckField.TIMELINE,))
def verify_approvals(gate: str, request_ids: list[str]) -> list[ApprovalOutcome]:
    """Verify that an authorized, audited, signed decision stands behind every request after a gate.

    A request with no authorized quorum behind it (the signal was set some other way) is ``refused``
    and audited; an approval already used by another execution is refused (exactly once).

    Args:
        gate: the gate (signal id) the requests waited on.
        request_ids: ids returned by ``open_request``.
    """
    from flytekitplugins.aios_approvals.deck import render_deck
    from flytekitplugins.aios_approvals.evaluate import Env
    from flytekitplugins.aios_core.settings import get_settings

    env = Env.load(get_settings())  # this task's entry point: settings resolved once, passed down
    outcomes = verify_requests(gate, request_ids, env=env)
    Deck("approvals", render_deck(gate, outcomes, env))
    return outcomes


def _gate_interface(request_ids: Promise) -> tuple[str, Any]:
    ctx = FlyteContextManager.current_context()
    if ctx.compilation_state is not None and ctx.compilation_state.mode == 1:
        if request_ids.ref.node_id == constants.GLOBAL_INPUT_NODE_ID:
            msg = "approval_gate: request_ids must come from a task that opened the requests, not a workflow input"
            raise ValueError(msg)
        io_type = request_ids.ref.node.flyte_entity.python_interface.outputs[request_ids.var]
        if io_type != list[str]:
            msg = f"approval_gate: request_ids must be a list[str] task output, got {io_type}"
            raise TypeError(msg)
        return request_ids.var, io_type
    return "o0", list[str]


def approval_gate(name: str, request_ids: Any, timeout: dt.timedelta = DEFAULT_TIMEOUT) -> Any:
    """Place a Flyte gate node waiting for a batch of approval requests, then verify the decisions.

    Work that needs no approval should not depend on the gate's output: it runs while the gate waits.

    Args:
        name: the gate name: kebab-case, equal to the approval kind in roles.yaml, used as the Flyte signal id
            (stable public API; validated here, at compile time).
        request_ids: a ``list[str]`` task output (ids from ``open_request``).
        timeout: how long the gate waits; past it the node fails (on a cluster and locally).

    Returns:
        A promise of ``list[ApprovalOutcome]`` (one per request: approved, rejected, timed_out or refused).
    """
    validate_gate_name(name)
    if not isinstance(timeout, dt.timedelta) or timeout <= dt.timedelta(0):
        msg = f"approval_gate {name!r}: timeout must be a positive datetime.timedelta, got {timeout!r}"
        raise ValueError(msg)
    if request_ids is None or isinstance(request_ids, VoidPromise) or not isinstance(request_ids, Promise):
        msg = f"approval_gate {name!r}: request_ids must be the list[str] output of a task, got {request_ids!r}"
        raise ValueError(msg)
    gate = ApprovalGate(name, upstream_item=request_ids, timeout=timeout)
    var, io_type = _gate_interface(request_ids)
    set_python_interface(gate, flyte_interface.Interface(inputs={var: io_type}, outputs={var: io_type}))
    gated = flyte_entity_call_handler(gate, **{var: request_ids})
    return verify_approvals(gate=name, request_ids=gated)
