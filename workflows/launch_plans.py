"""Named launch plans whose console form describes every input (flytekit drops the descriptions of overridden defaults).

``LaunchPlan.get_or_create(..., default_inputs={...})`` rebuilds the parameters it overrides from a bare
interface, so the console shows ``n`` as the description of ``n``. :func:`described_launch_plan` creates the
launch plan the same way and puts the workflow docstring's ``Args`` descriptions back.
"""

from __future__ import annotations

from typing import Any

from flytekit import LaunchPlan
from flytekit.core.context_manager import FlyteContextManager
from flytekit.core.interface import transform_inputs_to_parameters
from flytekit.core.workflow import WorkflowBase
from flytekit.models.interface import Parameter, ParameterMap, Variable

from flytekitplugins.aios.compat.flytekit import set_launch_plan_parameters


def _describe(param: Parameter, description: str) -> Parameter:
    v = param.var
    var = Variable(v.type, description, artifact_partial_id=v.artifact_partial_id, artifact_tag=v.artifact_tag)
    return Parameter(
        var, default=param.default, required=param.required, artifact_query=param.artifact_query,
        artifact_id=param.artifact_id,
    )  # fmt: skip


def described_launch_plan(workflow: WorkflowBase, name: str, **kwargs: Any) -> LaunchPlan:
    """``LaunchPlan.get_or_create`` with every input described as in the workflow docstring.

    Args:
        workflow: the workflow to launch.
        name: the launch plan's name (stable: schedules and the console refer to it).
        **kwargs: what ``LaunchPlan.get_or_create`` takes (``default_inputs``, ``schedule``, ``notifications``...).
    """
    lp = LaunchPlan.get_or_create(workflow=workflow, name=name, **kwargs)
    ctx = FlyteContextManager.current_context()
    documented = transform_inputs_to_parameters(ctx, workflow.python_interface).parameters
    params = {}
    for key, param in lp.parameters.parameters.items():
        doc = documented[key].var.description if key in documented else ""
        params[key] = _describe(param, doc) if doc and param.var.description in ("", key) else param
    set_launch_plan_parameters(lp, ParameterMap(params))  # flytekit has no setter; the package serializes it
    return lp
