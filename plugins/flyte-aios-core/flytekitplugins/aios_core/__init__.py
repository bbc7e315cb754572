"""Shared core of the flyte-aios pack: settings, canonical digests, execution context, identity.

Everything here is cheap to import: no torch, pandas or flytekit at module import time.
"""

from flytekitplugins.aios_core.digest import canonical_json, digest_bytes, digest_value
from flytekitplugins.aios_core.errors import AiosError, ConfigError, GovernanceDenied
from flytekitplugins.aios_core.settings import Settings, get_settings, reset_settings

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
