"""Parts of the pack that live in other distributions, imported on first use with a clear error when absent.

The governance core (``flyte-aios-core``) imports neither flytekit nor flyte. The flytekit-facing pieces
(``audited``, ``PolicyGate``, ``policy_check``, ``approval_gate``, signalling a gate node on a Flyte cluster) are
in ``flytekitplugins-aios`` (package :mod:`flytekitplugins.aios`); the core's packages re-export them lazily so
that ``from flytekitplugins.aios_audit import audited`` keeps working where that plugin is installed.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any

from flytekitplugins.aios_core.errors import ConfigError

FLYTEKIT_PLUGIN = "flytekitplugins-aios"


class PluginMissing(ConfigError, ImportError):
    """A part of the pack in a distribution that is not installed; the message names what to install."""


def flytekit_plugin(module: str, *, needed_for: str) -> ModuleType:
    """Import ``flytekitplugins.aios.<module>``; without the flytekit plugin (or flytekit), say what to install."""
    name = f"flytekitplugins.aios.{module}"
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if missing and (missing == "flytekit" or missing.startswith("flytekit.") or name.startswith(missing)):
            msg = (
                f"{needed_for} needs the flytekit plugin of flyte-aios, which is not installed here "
                f"(no module {missing!r}): pip install {FLYTEKIT_PLUGIN}"
            )
            raise PluginMissing(msg) from None
        raise


def lazy_exports(package: str, exports: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` (PEP 562) importing ``exports[name]`` (a module path) on the first access of ``name``.

    Modules of the flytekit plugin (``flytekitplugins.aios.*``) are imported through :func:`flytekit_plugin`, so a
    missing plugin is named; anything else is an ordinary module of the importing distribution.
    """

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            msg = f"module {package!r} has no attribute {name!r}"
            raise AttributeError(msg)
        if module.startswith("flytekitplugins.aios."):
            return getattr(flytekit_plugin(module.rsplit(".", 1)[1], needed_for=f"{package}.{name}"), name)
        return getattr(importlib.import_module(module), name)

    return __getattr__


def plugin_alias(package: str, module: str) -> Callable[[str], Any]:
    """A module ``__getattr__`` (PEP 562) that reads every public name from ``flytekitplugins.aios.<module>``.

    For the core's alias modules that keep a task's registered name (see :mod:`flytekitplugins.aios.naming`): Flyte's
    resolver imports the alias on a pod and reads the task from it; importing the alias imports nothing.
    """

    def __getattr__(name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(flytekit_plugin(module, needed_for=f"{package}.{name}"), name)

    return __getattr__
