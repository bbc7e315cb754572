"""Alias: the registered home of the approval gate's verification task (``...aios_approvals.gate.verify_approvals``).

The task and :func:`approval_gate` are the flytekit plugin's (:mod:`flytekitplugins.aios.approval_gate`,
distribution ``flytekitplugins-aios``). Flyte's resolver imports this module on a pod and reads the task from it;
it is resolved from the plugin on first access, so importing this module imports nothing of flytekit.
"""

from __future__ import annotations

from flytekitplugins.aios_core.extras import plugin_alias

__getattr__ = plugin_alias(__name__, "approval_gate")
