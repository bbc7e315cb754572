"""Make any flytekit task governed: one audit record per execution, success or failure.

Two shapes, same record:

* a decorator placed UNDER ``@task`` (composes with any other task config, e.g. kfpytorch ``Elastic``)::

      @task(task_config=Elastic(nproc_per_node=2), enable_deck=True)
      @audited(subject_input="doc")
      def train(doc: FlyteFile) -> float: ...

* a task config following flytekit plugin conventions::

      @task(task_config=Audited(subject_input="doc"), enable_deck=True)
      def classify(doc: FlyteFile) -> str: ...

The body runs inside an :class:`~flytekitplugins.aios_audit.scope.AuditScope` (``current_audit()``) so that
policy gates, approvals and model loaders attach their decisions to this step's record. When the body
returns or raises, the record is appended durably; if that write fails the task fails with
:class:`AuditWriteError` (fail closed), even when the body succeeded.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import logging
import os
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast

from flytekit.core.python_function_task import PythonFunctionTask
from flytekit.extend import TaskPlugins

from flytekitplugins.aios_audit.observe import Observation, appending_own_record, observe_task
from flytekitplugins.aios_audit.recorder import digest_io, finish_scope, output_names
from flytekitplugins.aios_audit.scope import AuditScope

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])


@dataclasses.dataclass(frozen=True)
class Audited:
    """Audit configuration of a governed task.

    Args:
        kind: Record kind (``task`` unless the step is itself e.g. an ``action`` in a system of record).
        subject_input: Name of the input whose digest becomes the record's subject (e.g. the document).
        digest_inputs: Record content digests of the inputs (values never leave the task).
        digest_outputs: Record content digests of the outputs.
        deck: Publish the record as a Flyte Deck named ``audit`` when the task has ``enable_deck=True``.
        attributes: Static, non-sensitive metadata added to every record of this task.
    """

    kind: str = "task"
    subject_input: str | None = None
    digest_inputs: bool = True
    digest_outputs: bool = True
    deck: bool = True
    attributes: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.kind or not self.kind.replace("_", "").isalnum():
            msg = f"Audited(kind={self.kind!r}) is invalid: use a short snake_case word such as 'task' or 'action'"
            raise ValueError(msg)


def _task_name(fn: Callable[..., Any]) -> str:
    return f"{fn.__module__}.{fn.__qualname__}"


def run_audited(
    fn: Callable[..., Any], config: Audited, task_name: str, kwargs: dict[str, Any], outputs: Sequence[str]
) -> Any:
    """Run ``fn(**kwargs)`` inside an audit scope and append its record; re-raise the body's error.

    Args:
        fn: The task body.
        config: What to record.
        task_name: Flyte task name used when no Flyte context names it.
        kwargs: The native inputs.
        outputs: Output names, in order (``o0`` ... or a NamedTuple's fields).

    Returns:
        Whatever ``fn`` returns.

    Raises:
        AuditWriteError: The record could not be made durable (the task must not count as done).
    """
    from flytekitplugins.aios_core.settings import get_settings

    scope = AuditScope(task_name, get_settings())  # the task's entry point: settings resolved once, passed down
    with scope:
        if config.digest_inputs:
            scope.inputs.update(digest_io(kwargs))
        if config.subject_input and config.subject_input in scope.inputs:
            scope.subject = scope.inputs[config.subject_input]
        for k, v in config.attributes.items():
            scope.set_attribute(k, v)
        if "RANK" in os.environ and "WORLD_SIZE" in os.environ:
            scope.set_attribute("rank", int(os.environ["RANK"]))
            scope.set_attribute("world_size", int(os.environ["WORLD_SIZE"]))
        with observe_task(scope, kwargs, inspect.getdoc(fn) or "") as obs:
            try:
                result = fn(**kwargs)
            except BaseException as e:
                _finish(scope, config, obs, "failed", e)
                raise
            named = _outputs_dict(outputs, result) if config.digest_outputs or obs is not None else {}
            if config.digest_outputs:
                scope.outputs.update(digest_io(named))
            if obs is not None:
                obs.outputs = named
            _finish(scope, config, obs, "succeeded")
    return result


def _finish(
    scope: AuditScope, config: Audited, obs: Observation | None, status: str, error: BaseException | None = None
) -> None:
    """Append the attempt's record (its own: no separate span) and hand it to the observation."""
    with appending_own_record():
        record = finish_scope(scope, config.kind, status, error=error, deck=config.deck)
    if obs is not None:
        obs.record = record


def _outputs_dict(names: Sequence[str], result: Any) -> dict[str, Any]:
    if not names:
        return {}
    if len(names) == 1:
        return {names[0]: result}
    return dict(zip(names, tuple(result), strict=False))


def audited(
    fn: F | None = None,
    *,
    kind: str = "task",
    subject_input: str | None = None,
    digest_inputs: bool = True,
    digest_outputs: bool = True,
    deck: bool = True,
    attributes: dict[str, Any] | None = None,
) -> Any:
    """Decorator (under ``@task``) that appends an audit record for every execution of the function.

    Args:
        fn: The function (when used bare as ``@audited``).
        kind: Record kind.
        subject_input: Input whose digest becomes the record subject.
        digest_inputs: Record input digests.
        digest_outputs: Record output digests.
        deck: Publish an ``audit`` Flyte Deck when the task has ``enable_deck=True``.
        attributes: Static, non-sensitive metadata.

    Returns:
        The wrapped function (``functools.wraps``: flytekit sees the original signature and name).
    """
    config = Audited(kind, subject_input, digest_inputs, digest_outputs, deck, dict(attributes or {}))

    def wrap(f: F) -> F:
        signature = inspect.signature(f)
        name = _task_name(f)

        @functools.wraps(f)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            return run_audited(f, config, name, dict(bound.arguments), output_names(f))

        wrapper.__aios_audited__ = config  # type: ignore[attr-defined]
        return cast(F, wrapper)

    return wrap(fn) if fn is not None else wrap


class AuditedPythonFunctionTask(PythonFunctionTask[Audited]):
    """A plain ``python-task`` whose execution is audited (runs on any Flyte cluster, no backend plugin)."""

    def __init__(self, task_config: Audited, task_function: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(task_config=task_config, task_function=task_function, **kwargs)

    def execute(self, **kwargs: Any) -> Any:
        """Run the body inside an audit scope and append its record."""
        names = list(self.python_interface.outputs)
        return run_audited(super().execute, self.task_config, self.name, kwargs, names)

    def get_custom(self, settings: Any) -> dict[str, Any]:
        """Serialize the audit config into the task template (visible in the console and to tooling)."""
        cfg = self.task_config
        return {
            "aios_audit": {
                "kind": cfg.kind,
                "subject_input": cfg.subject_input or "",
                "digest_inputs": cfg.digest_inputs,
                "digest_outputs": cfg.digest_outputs,
            }
        }


TaskPlugins.register_pythontask_plugin(Audited, AuditedPythonFunctionTask)
