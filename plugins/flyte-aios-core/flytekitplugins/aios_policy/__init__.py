"""Policy gates: policy-as-code (Cedar) decided before a Flyte task acts. Fails closed.

Public API:

* :class:`PolicyRequest`, :func:`evaluate` (never raises; errors deny), :func:`evaluate_many` (batch),
  :func:`enforce` (evaluate + durable audit record; deny raises ``GovernanceDenied``),
  :func:`enforce_many` (a batch: one engine call, one durable audit transaction; denies returned).
* :func:`policy_gate` (decorator under ``@task``), :class:`PolicyGate` (task config),
  :class:`Check` (a pre/post-condition spec), :func:`policy_check` (a task whose output is the decision).
* :class:`PolicyEngine`, :func:`register_engine`, :func:`get_engine`: the engine interface (cedar default).

``PolicyGate`` and ``policy_check`` are the flytekit plugin's (:mod:`flytekitplugins.aios`, distribution
``flytekitplugins-aios``), re-exported here on first access; ``policy_gate`` is framework-neutral and lives here.
This package never imports flytekit.
"""

from typing import TYPE_CHECKING

from flytekitplugins.aios_core.extras import lazy_exports
from flytekitplugins.aios_policy.decide import enforce, enforce_many, evaluate, evaluate_many
from flytekitplugins.aios_policy.engine import PolicyEngine, PolicyLoadError, PolicySource, get_engine, register_engine
from flytekitplugins.aios_policy.request import PolicyRequest

if TYPE_CHECKING:
    from flytekitplugins.aios.policy_check import policy_check
    from flytekitplugins.aios.policy_task import PolicyGate
    from flytekitplugins.aios_policy.gate import Check, policy_gate

__all__ = [
    "Check",
    "PolicyEngine",
    "PolicyGate",
    "PolicyLoadError",
    "PolicyRequest",
    "PolicySource",
    "enforce",
    "enforce_many",
    "evaluate",
    "evaluate_many",
    "get_engine",
    "policy_check",
    "policy_gate",
    "register_engine",
]

_LAZY = {
    "Check": "flytekitplugins.aios_policy.gate",
    "policy_gate": "flytekitplugins.aios_policy.gate",
    "PolicyGate": "flytekitplugins.aios.policy_task",
    "policy_check": "flytekitplugins.aios.policy_check",
}


__getattr__ = lazy_exports(__name__, _LAZY)
