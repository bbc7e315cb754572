"""The service identity a launched workflow acts as: its launch plan's ``principal`` input, not the shell's user.

A launch plan carries the principal (``service:retraining``, ``service:monitoring``...) as a described input;
the first task of the run calls :func:`act_as`, so every later step in this process (a local run, or a
task pod) records and is authorized as that principal instead of ``user:<login>``.
"""

from __future__ import annotations

import os

from flytekitplugins.aios_core.settings import get_settings


def act_as(principal: str) -> str:
    """Act as ``principal`` from here on in this process; returns the principal now acting.

    Args:
        principal: ``kind:name`` (e.g. ``service:retraining``); empty keeps the configured identity.
    """
    if not principal:
        return get_settings().actor
    if ":" not in principal:
        msg = f"principal {principal!r} must look like 'service:retraining' or 'user:alice'"
        raise ValueError(msg)
    os.environ["AIOS_PRINCIPAL"] = principal  # settings are cached per AIOS_* value: the next read sees it
    return get_settings().actor
