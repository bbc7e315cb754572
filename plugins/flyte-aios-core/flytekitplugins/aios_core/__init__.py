"""Shared core of the flyte-aios pack: settings, canonical digests, execution context, identity.

Everything here is cheap to import: no torch, pandas or flytekit at module import time, and the names below are
imported on first use, so that the ``aios`` command's entry point (:mod:`flytekitplugins.aios_core.entry`) runs
before any pydantic model is built.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flytekitplugins.aios_core.digest import canonical_json, digest_bytes, digest_value
    from flytekitplugins.aios_core.errors import AiosError, ConfigError, GovernanceDenied
    from flytekitplugins.aios_core.settings import Settings, get_settings, reset_settings

_HOME = {
    "canonical_json": "digest",
    "digest_bytes": "digest",
    "digest_value": "digest",
    "AiosError": "errors",
    "ConfigError": "errors",
    "GovernanceDenied": "errors",
    "Settings": "settings",
    "get_settings": "settings",
    "reset_settings": "settings",
}

__all__ = [
    "AiosError",
    "ConfigError",
    "GovernanceDenied",
    "Settings",
    "canonical_json",
    "digest_bytes",
    "digest_value",
    "get_settings",
    "reset_settings",
]


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)
