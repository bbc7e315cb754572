"""Registered names that stay what they were before the pack was split into distributions.

flytekit names a task ``<module>.<function>`` and its default resolver imports ``<module>`` on the pod to find
it. The plugin's two tasks were defined in the governance core's packages before the split; their registered
names (``flytekitplugins.aios_approvals.gate.verify_approvals``, ``flytekitplugins.aios_policy.check.policy_check``)
are kept, so re-registering a workflow changes nothing but its image. The core keeps two alias modules at those
paths that resolve the task from this plugin on first attribute access (they import nothing at import time).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from flytekit import task

from flytekitplugins.aios.compat.flytekit import set_instantiated_in


def registered_task(module: str, **task_kwargs: Any) -> Callable[[Callable[..., Any]], Any]:
    """``@task(**task_kwargs)``, with the task named and resolved as ``<module>.<function>``.

    ``module`` is an alias module of the core that re-exports the task (PEP 562 ``__getattr__``).
    """

    def apply(fn: Callable[..., Any]) -> Any:
        importlib.import_module(module)  # inspect.getmodule, which flytekit uses, looks it up in sys.modules
        fn.__module__ = module
        made = task(**task_kwargs)(fn)
        set_instantiated_in(made, module)
        return made

    return apply
