"""Alias: the registered home of the approval gate's verification task (``...aios_approvals.gate.verify_approvals``).

The task and :func:`approval_gate` are the flytekit plugin's (:mod:`flytekitplugins.aios.approval_gate`,
distribution ``flytekitplugins-aios``). Flyte's resolver imports this module on a pod and reads the task from it;
it is resolved from the plugin on first access, so importing this module imports nothing of flytekit.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name.startswith("__"):
        raise AttributeError(name)
    from flytekitplugins.aios_core.extras import flytekit_plugin

    return getattr(flytekit_plugin("approval_gate", needed_for=f"{__name__}.{name}"), name)
