"""Every private flytekit (and flyteidl client) member the pack touches, each behind one function.

Each function names the private member, the flytekit version it was checked on and what the pack relies on;
``tests/compat/test_flytekit_compat.py`` pins that behaviour. A missing member raises
:class:`~flytekitplugins.aios.compat.CompatError` naming the installed flytekit and the version to pin.

flytekit is imported inside the functions: importing this module stays cheap (``aios_core`` convention).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from flytekitplugins.aios.compat import CompatError, installed_version, missing_member

if TYPE_CHECKING:
    from flytekit import FlyteContext, LaunchPlan
    from flytekit.core.checkpointer import SyncCheckpoint
    from flytekit.core.interface import Interface
    from flytekit.models.interface import ParameterMap
    from flytekit.models.literals import LiteralMap
    from flytekit.remote import FlyteRemote

DISTRIBUTION = "flytekit"
CHECKED_ON = "1.16.31"
"""The flytekit version every member below was checked on (the version ``pyproject.toml`` pins)."""

ConnectorExceptionHandler = Callable[[Exception, Any, str, str], None]
"""``(exception, grpc.ServicerContext, task type, operation) -> None``: flytekit's connector error handler."""


def _missing(member: str, relies_on: str) -> CompatError:
    return missing_member(DISTRIBUTION, member, CHECKED_ON, relies_on)


def remote_grpc_channel(remote: FlyteRemote) -> Any:
    """The authenticated gRPC channel of ``remote``'s FlyteAdmin client.

    Private member: ``flytekit.clients.raw.RawSynchronousFlyteClient._channel`` (``FlyteRemote.client`` is a
    ``SynchronousFlyteClient``, its subclass); checked on flytekit 1.16.31.

    The pack relies on: it is a ``grpc.Channel`` carrying flytekit's authentication (the CLI's OAuth token)
    and error interceptors, so a generated flyteidl stub on it (``IdentityServiceStub(channel).UserInfo``)
    calls FlyteAdmin as the logged-in user; flytekit has no client method for ``IdentityService``.

    ``remote.client`` builds the client on first use: its configuration errors propagate unchanged.
    """
    channel = getattr(remote.client, "_channel", None)
    if channel is None:
        raise _missing("RawSynchronousFlyteClient._channel", "call FlyteAdmin's IdentityService")
    return channel


def set_python_interface(entity: Any, interface: Interface) -> None:
    """Give a flytekit entity (an approval ``Gate``) the Python interface it reports.

    Private member: ``Gate._python_interface`` (set in ``Gate.__init__``, read by the ``Gate.python_interface``
    property; flytekit's own ``approve()`` sets it the same way); checked on flytekit 1.16.31.

    The pack relies on: after the assignment ``entity.python_interface`` is ``interface``, so the gate node
    compiles with the upstream output's name and type as its input and output.

    Raises:
        CompatError: the attribute is missing, or ``python_interface`` does not report ``interface`` after it.
    """
    relies_on = "give an approval gate node the interface of its upstream output"
    _set_behind_property(entity, "python_interface", interface, relies_on)


def _set_behind_property(obj: Any, public: str, value: Any, relies_on: str) -> None:
    """Set ``obj._<public>`` and check that the read-only property ``obj.<public>`` then reports ``value``."""
    member = f"{type(obj).__name__}._{public}"
    if not hasattr(obj, f"_{public}"):
        raise _missing(member, relies_on)
    setattr(obj, f"_{public}", value)
    if getattr(obj, public) is not value:
        msg = (
            f"flytekit {installed_version(DISTRIBUTION)}: setting {member} no longer changes its {public} "
            f"(checked on flytekit {CHECKED_ON}): install flytekit=={CHECKED_ON}"
        )
        raise CompatError(msg)


def set_instantiated_in(task: Any, module: str) -> None:
    """Make flytekit name ``task`` as if it had been created in ``module`` (see :mod:`flytekitplugins.aios.naming`).

    Private member: ``TrackedInstance._instantiated_in`` (behind the read-only ``instantiated_in``), set by
    flytekit's instance tracker to the module whose top level created the task; checked on flytekit 1.16.31.

    The pack relies on: a ``PythonFunctionTask`` whose function's ``__module__`` is ``module`` is named
    ``<module>.<function>`` once ``instantiated_in`` is ``module`` (flytekit prefixes a name with
    ``instantiated_in`` only when the name does not already contain it).
    """
    _set_behind_property(task, "instantiated_in", module, relies_on="stable registered task names")


async def literal_map_to_kwargs(ctx: FlyteContext, lm: LiteralMap, python_types: dict[str, type]) -> dict[str, Any]:
    """Python values of the literals in ``lm``, converted with ``python_types`` (async, no event-loop nesting).

    Private member: ``flytekit.core.type_engine.TypeEngine._literal_map_to_kwargs`` (a coroutine classmethod;
    the public ``literal_map_to_kwargs`` runs it on flytekit's loop runner, which a connector's event loop
    must not block on); checked on flytekit 1.16.31.

    The pack relies on: awaited in a running event loop, it returns ``{name: value}`` for every name of
    ``python_types``, each converted by that type's transformer (dataclasses, lists, dicts...).
    """
    from flytekit.core.type_engine import TypeEngine

    convert = getattr(TypeEngine, "_literal_map_to_kwargs", None)
    if convert is None:
        raise _missing("TypeEngine._literal_map_to_kwargs", "read a connector's inputs inside its event loop")
    return dict(await convert(ctx, lm, python_types=python_types))


async def dict_to_literal_map(ctx: FlyteContext, values: dict[str, Any], type_hints: dict[str, type]) -> LiteralMap:
    """A literal map of ``values``, each converted with its type from ``type_hints`` (async).

    Private member: ``flytekit.core.type_engine.TypeEngine._dict_to_literal_map`` (a coroutine classmethod;
    the public ``dict_to_literal_map`` blocks on flytekit's loop runner); checked on flytekit 1.16.31.

    The pack relies on: awaited in a running event loop, it returns a ``LiteralMap`` with one literal per key
    of ``values``, typed by ``type_hints`` (so an empty list keeps its element type) and read back by
    :func:`literal_map_to_kwargs` to the same values.
    """
    from flytekit.core.type_engine import TypeEngine

    convert = getattr(TypeEngine, "_dict_to_literal_map", None)
    if convert is None:
        raise _missing("TypeEngine._dict_to_literal_map", "write a connector's outputs inside its event loop")
    result: LiteralMap = await convert(ctx, values, type_hints=type_hints)
    return result


def set_launch_plan_parameters(lp: LaunchPlan, parameters: ParameterMap) -> None:
    """Replace the parameters (default inputs, with their descriptions) a launch plan serializes.

    Private member: ``flytekit.core.launch_plan.LaunchPlan._parameters`` (read by the ``parameters`` property,
    which has no setter); checked on flytekit 1.16.31.

    The pack relies on: after the assignment ``lp.parameters`` is ``parameters``, the object the launch plan's
    serialization (``pyflyte package`` / ``register``) writes as its default inputs.

    Raises:
        CompatError: the attribute is missing, or ``lp.parameters`` does not report ``parameters`` after it.
    """
    _set_behind_property(
        lp, "parameters", parameters, "put the workflow docstring's input descriptions back on a launch plan"
    )


def sync_checkpoint_locations(checkpoint: SyncCheckpoint) -> tuple[str | None, str | None]:
    """``(destination, source)`` of a task's checkpoint: where this attempt writes, where the previous one wrote.

    Private members: ``flytekit.core.checkpointer.SyncCheckpoint._checkpoint_dest`` and ``._checkpoint_src``
    (constructor arguments flytekit keeps; no public accessor); checked on flytekit 1.16.31.

    The pack relies on: both are the strings ``SyncCheckpoint(checkpoint_dest, checkpoint_src)`` was built
    with (the source ``None`` when empty), so the training loop writes and reads its own checkpoint files there.
    """
    relies_on = "read the checkpoint locations of a training task"
    for member in ("_checkpoint_dest", "_checkpoint_src"):
        if not hasattr(checkpoint, member):
            raise _missing(f"SyncCheckpoint.{member}", relies_on)
    return checkpoint._checkpoint_dest, checkpoint._checkpoint_src


def connector_exception_handler() -> ConnectorExceptionHandler:
    """The function flytekit's connector service calls when a connector raises (the current one).

    Private member: ``flytekit.extend.backend.connector_service._handle_exception`` (a module-level function
    the service's handlers look up at call time); checked on flytekit 1.16.31.

    The pack relies on: every connector error of ``pyflyte serve connector`` goes through this name, so
    :func:`replace_connector_exception_handler` changes what gRPC callers see.

    Raises:
        ImportError: flytekit's connector extras (grpc server, prometheus) are not installed.
    """
    from flytekit.extend.backend import connector_service

    handler = getattr(connector_service, "_handle_exception", None)
    if handler is None:
        raise _missing("connector_service._handle_exception", "mask the errors a connector returns to its callers")
    return handler


def replace_connector_exception_handler(handler: ConnectorExceptionHandler) -> None:
    """Make flytekit's connector service call ``handler`` instead of its own error handler.

    Private member: ``flytekit.extend.backend.connector_service._handle_exception`` (see
    :func:`connector_exception_handler`); checked on flytekit 1.16.31.

    The pack relies on: the service's ``CreateTask``/``GetTask``/``DeleteTask``/``ExecuteTaskSync`` handlers
    call the module-level name at call time, so the replacement applies to a server built before or after.

    Raises:
        ImportError: flytekit's connector extras (grpc server, prometheus) are not installed.
    """
    from flytekit.extend.backend import connector_service

    connector_exception_handler()  # raises CompatError when the member is gone
    connector_service._handle_exception = handler


__all__ = [
    "CHECKED_ON",
    "connector_exception_handler",
    "dict_to_literal_map",
    "literal_map_to_kwargs",
    "remote_grpc_channel",
    "replace_connector_exception_handler",
    "set_launch_plan_parameters",
    "set_python_interface",
    "sync_checkpoint_locations",
]
