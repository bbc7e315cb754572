"""Flyte 2 adapter (preview): the pack's governance for tasks of the ``flyte`` SDK (2.x).

Imports nothing from flytekit; needs the governance core (``flytekitplugins.aios_core``, ``aios_audit``,
``aios_policy``, ``aios_approvals``) and, at run time, the ``flyte`` SDK. Public API:

* :func:`governed`: decorator under ``@env.task`` (sync or async): fail-closed policy gate, approvals on
  ``flyte.new_condition`` verified against roles.yaml, one audited ``task`` record per attempt, and a span that
  joins flyteplugins-otel's trace of the run.
* :func:`wait_approvals` / :func:`await_approvals`: pause on a condition for requests opened with
  ``flytekitplugins.aios_approvals.open_request``, then verify them (roles, quorum, signatures, single use).
* :func:`flyte_execution`: the Flyte 2 identity (run name, action name, task, attempt) of audit records.
* :class:`Governed`: the same as a flyte task plugin config, ``task.override(plugin_config=Governed(...))`` or
  ``TaskEnvironment(..., plugin_config=Governed())`` (loaded on first access: it imports flyte).

See docs/flyte2.md.
"""

from typing import TYPE_CHECKING

from flytekitplugins.aios_flyte2.approvals import await_approvals, condition_name, wait_approvals
from flytekitplugins.aios_flyte2.gate import GovernSpec, governed
from flytekitplugins.aios_flyte2.identity import flyte_execution

if TYPE_CHECKING:
    from flytekitplugins.aios_flyte2.plugin import Governed

__all__ = [
    "GovernSpec",
    "Governed",
    "await_approvals",
    "condition_name",
    "flyte_execution",
    "governed",
    "wait_approvals",
]


def __getattr__(name: str) -> object:
    if name == "Governed":
        from flytekitplugins.aios_flyte2.plugin import Governed

        return Governed
    msg = f"module 'flytekitplugins.aios_flyte2' has no attribute {name!r}"
    raise AttributeError(msg)
