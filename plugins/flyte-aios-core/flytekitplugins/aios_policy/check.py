"""Alias: the registered home of the ``policy_check`` task (``flytekitplugins.aios_policy.check.policy_check``).

The task is the flytekit plugin's (:mod:`flytekitplugins.aios.policy_check`, distribution ``flytekitplugins-aios``).
Flyte's resolver imports this module on a pod and reads the task from it; it is resolved from the plugin on first
access, so importing this module imports nothing of flytekit.
"""

from __future__ import annotations

from flytekitplugins.aios_core.extras import plugin_alias

__getattr__ = plugin_alias(__name__, "policy_check")
