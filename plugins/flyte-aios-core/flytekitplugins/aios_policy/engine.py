"""Policy engines behind one small interface, chosen by ``kind`` (default ``cedar``).

Contract for an engine (implement :class:`PolicyEngine`):

* ``decide`` answers a batch of requests against the policies in ``source`` and returns one
  :class:`Verdict` per request, in order. A request the engine cannot judge (unknown principal,
  ill-typed attribute, evaluation error) gets a ``deny`` verdict naming why; it never raises for one
  bad request.
* ``decide``, ``validate`` and ``rule_ids`` raise :class:`PolicyLoadError` when the policy set itself
  is unusable (missing directory, parse error, empty set, schema violation). Callers turn every
  exception into a deny: engines never need to fail open.
* Parsed policy sets are cached per process, keyed by the policy directory and a content digest.

A Rego engine (``regorus``) can be added with ``register_engine("rego", RegoEngine)``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from flytekitplugins.aios_core.errors import AiosError
from flytekitplugins.aios_core.types import ApprovalRequirement, Effect
from flytekitplugins.aios_policy.request import PolicyRequest


class PolicyLoadError(AiosError):
    """The policy set cannot be used (missing, unparseable, empty or invalid). Every decision denies."""


@dataclass(frozen=True)
class PolicySource:
    """Where policies and the principals' roles come from."""

    policy_dir: Path
    roles_file: Path


@dataclass
class Verdict:
    """An engine's answer to one request."""

    effect: Effect
    reasons: list[str] = field(default_factory=list)
    policy_ids: list[str] = field(default_factory=list)
    policy_set_digest: str = ""
    approval: ApprovalRequirement | None = None


class PolicyEngine(Protocol):
    """A policy engine (see the module docstring for the contract)."""

    kind: str

    def decide(self, requests: Sequence[PolicyRequest], source: PolicySource) -> list[Verdict]:
        """One verdict per request, in order."""
        ...

    def validate(self, source: PolicySource) -> list[str]:
        """Problems with the policy set (empty when it is valid); raises PolicyLoadError if unreadable."""
        ...

    def rule_ids(self, source: PolicySource) -> list[str]:
        """Ids of every rule in the set, in file order (for coverage and mutation checks)."""
        ...

    def policy_set_digest(self, source: PolicySource) -> str:
        """Content digest of everything that decides (policies, schema, roles)."""
        ...


_lock = threading.Lock()
_factories: dict[str, Callable[[], PolicyEngine]] = {}
_engines: dict[str, PolicyEngine] = {}


def register_engine(kind: str, factory: Callable[[], PolicyEngine]) -> None:
    """Make an engine available under ``kind`` (``AIOS_POLICY_ENGINE=<kind>`` selects it)."""
    with _lock:
        _factories[kind] = factory
        _engines.pop(kind, None)


def get_engine(kind: str = "cedar") -> PolicyEngine:
    """The process-wide engine of ``kind`` (callers pass ``settings.policy_engine``; ``AIOS_POLICY_ENGINE``)."""
    with _lock:
        engine = _engines.get(kind)
        if engine is None:
            factory = _factories.get(kind)
            if factory is None:
                if kind != "cedar":
                    known = ", ".join(sorted({"cedar", *_factories}))
                    msg = f"unknown policy engine {kind!r}: known kinds are {known} (AIOS_POLICY_ENGINE)"
                    raise PolicyLoadError(msg)
                from flytekitplugins.aios_policy.cedar_engine import CedarEngine

                factory = CedarEngine
                _factories["cedar"] = factory
            engine = factory()
            _engines[kind] = engine
        return engine
