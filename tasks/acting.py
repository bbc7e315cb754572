"""The service identity a launched workflow acts as: its launch plan's ``principal`` input, not the shell's user.

A launch plan carries the principal (``service:retraining``, ``service:monitoring``...) as a described input;
the first task of the run calls :func:`act_as`, so every later step in this process (a local run, or a
task pod) records and is authorized as that principal instead of ``user:<login>``. Who launched it is kept
(``AIOS_LAUNCHED_BY``, ``Settings.launched_by``) and recorded as the ``launcher`` of every approval request the
run opens, so separation of duties still keeps that person from approving their own run's requests.

Only a service identity can be named this way. Whoever may launch a workflow chooses its inputs, so a ``user:``
principal there would let anyone with launch rights have the trail say that a person (a compliance reviewer, an
approver) started the run and made its requests: people act through approvals, signed with their own key, never
through an input (the document pipeline's options refuse the same, ``ProcessingOptions.principal``).
"""

from __future__ import annotations

import os
import re

from flytekitplugins.aios_core.settings import get_settings

_SERVICE = re.compile(r"service:[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
"""A service identity as config/roles.yaml names them: ``service:`` and a name of letters, digits, ``.``, ``_`` and
``-`` (no spaces, no control characters, at most 128 characters), so what the trail records is what roles.yaml
can list."""


def service_principal_problem(principal: str) -> str | None:
    """Why ``principal`` is not a service identity a launch input may name, or None when it is one.

    The one rule behind :func:`act_as` and ``ProcessingOptions.principal``: the input is quoted with its control
    characters escaped (``repr``), so a hostile value cannot rewrite the terminal that shows the message.
    """
    if _SERVICE.fullmatch(principal):
        return None
    return (
        f"principal {principal!r}: a launch input may name only a service identity ('service:<name>' from "
        "config/roles.yaml, e.g. service:retraining; the name letters, digits, '.', '_' or '-'); a person is never "
        "taken from an input, people decide through approvals signed with their own key"
    )


def act_as(principal: str) -> str:
    """Act as ``principal`` from here on in this process; returns the principal now acting.

    Args:
        principal: ``service:<name>`` (e.g. ``service:retraining``); empty keeps the configured identity.

    Raises:
        ValueError: for anything but a service identity (a ``user:`` principal, no ``kind:`` prefix, no name, a name
            with spaces or control characters): :func:`service_principal_problem`.
    """
    if not principal:
        return get_settings().actor
    problem = service_principal_problem(principal)
    if problem:
        raise ValueError(problem)
    before = get_settings()
    if not before.launched_by and before.actor != principal:  # the first act_as of the run: who launched it
        os.environ["AIOS_LAUNCHED_BY"] = before.actor  # stays the launcher of every request the run opens
    os.environ["AIOS_PRINCIPAL"] = principal  # settings are cached per AIOS_* value: the next read sees it
    return get_settings().actor
