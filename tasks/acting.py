"""The service identity a launched workflow acts as: its launch plan's ``principal`` input, not the shell's user.

A launch plan carries the principal (``service:retraining``, ``service:monitoring``...) as a described input;
the first task of the run calls :func:`act_as`, so every later step in this process (a local run, or a
task pod) records and is authorized as that principal instead of ``user:<login>``.

Only a service identity can be named this way. Whoever may launch a workflow chooses its inputs, so a ``user:``
principal there would let anyone with launch rights have the trail say that a person (a compliance reviewer, an
approver) started the run and made its requests: people act through approvals, signed with their own key, never
through an input (the document pipeline's options refuse the same, ``ProcessingOptions.principal``).
"""

from __future__ import annotations

import os

from flytekitplugins.aios_core.settings import get_settings


def act_as(principal: str) -> str:
    """Act as ``principal`` from here on in this process; returns the principal now acting.

    Args:
        principal: ``service:<name>`` (e.g. ``service:retraining``); empty keeps the configured identity.

    Raises:
        ValueError: for anything but a service identity (a ``user:`` principal, no ``kind:`` prefix).
    """
    if not principal:
        return get_settings().actor
    kind, _, name = principal.partition(":")
    if kind != "service" or not name:
        msg = (
            f"principal {principal!r}: a launch input may name only a service identity ('service:<name>' from "
            "config/roles.yaml, e.g. service:retraining); a person is never taken from an input, people decide "
            "through approvals signed with their own key"
        )
        raise ValueError(msg)
    os.environ["AIOS_PRINCIPAL"] = principal  # settings are cached per AIOS_* value: the next read sees it
    return get_settings().actor
