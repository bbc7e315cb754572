"""Who may decide what: approval rules from config/roles.yaml, enforced in code.

``approvals.<gate>.roles`` lists the roles allowed to decide requests of that gate kind and
``approvals.<gate>.quorum.<risk>`` the number of distinct approvers needed. Rules checked on every
decision (and again by the step after the gate):

* the principal exists in ``principals:`` and holds one of the gate's roles;
* the principal is neither the requester nor the launcher of the request (separation of duties);
* one decision per (request, principal): a second one is a replay and changes nothing;
* a single authorized reject is final; approval needs ``quorum`` distinct authorized approvers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flytekitplugins.aios_core.errors import ConfigError
from flytekitplugins.aios_core.types import Risk

GATE_NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
RISKS: tuple[Risk, ...] = ("low", "medium", "high")


def validate_gate_name(name: Any) -> str:
    """Return ``name`` if it is a kebab-case gate name, else raise ValueError naming the fix."""
    if not isinstance(name, str) or not GATE_NAME.match(name) or len(name) > 63:
        suggestion = re.sub(r"[^a-z0-9]+", "-", str(name).lower()).strip("-") or "my-gate"
        msg = (
            f"approval gate name {name!r} is not kebab-case: gate names are Flyte signal ids and stable public API; "
            f"use lowercase letters, digits and single dashes, at most 63 characters (e.g. {suggestion!r})"
        )
        raise ValueError(msg)
    return name


@dataclass(frozen=True)
class GateRule:
    """Roles allowed to decide one gate kind, and the quorum per risk."""

    gate: str
    roles: tuple[str, ...]
    quorum: dict[str, int] = field(default_factory=dict)

    def quorum_for(self, risk: str) -> int:
        """Distinct approvers needed at ``risk`` (at least 1)."""
        return max(1, int(self.quorum.get(risk, 2 if risk == "high" else 1)))


@dataclass(frozen=True)
class RoleBook:
    """Principals with their roles, and the approval rule of every gate kind."""

    principals: dict[str, tuple[str, ...]]
    rules: dict[str, GateRule]
    source: str = ""

    def rule(self, gate: str) -> GateRule:
        """The rule for ``gate``; an unknown gate is a configuration error (fail closed)."""
        r = self.rules.get(gate)
        if r is None:
            known = ", ".join(sorted(self.rules)) or "none"
            msg = (
                f"no approval rule for gate {gate!r} in {self.source}: "
                f"add `approvals: {gate}: {{roles, quorum}}` (known: {known})"
            )
            raise ConfigError(msg)
        return r

    def roles_of(self, principal: str) -> tuple[str, ...]:
        """Roles of ``principal``; an unknown principal has none."""
        return self.principals.get(principal, ())

    def eligible(self, gate: str, exclude: set[str]) -> list[str]:
        """Principals who may decide ``gate`` requests, minus ``exclude`` (requester, launcher)."""
        allowed = set(self.rule(gate).roles)
        return sorted(p for p, roles in self.principals.items() if allowed & set(roles) and p not in exclude)


def load_rolebook(path: Path) -> RoleBook:
    """Parse roles.yaml; any malformed entry is a ConfigError naming the key."""
    from flytekitplugins.aios_core.text_files import read_yaml

    try:
        data = read_yaml(path, "approval rules file") or {}
    except ConfigError as e:
        raise ConfigError(f"{e}. Set AIOS_CONFIG_DIR or roles_file") from e
    if not isinstance(data, dict):
        raise ConfigError(f"approval rules file {path} must hold a mapping (principals:, approvals:)")
    principals: dict[str, tuple[str, ...]] = {}
    for pid, entry in (data.get("principals") or {}).items():
        roles = (entry or {}).get("roles", []) if isinstance(entry, dict) else []
        principals[str(pid)] = tuple(str(r) for r in roles)
    rules: dict[str, GateRule] = {}
    for gate, entry in (data.get("approvals") or {}).items():
        if not isinstance(entry, dict) or not entry.get("roles"):
            msg = f"{path}: approvals.{gate} must be a mapping with a non-empty `roles:` list"
            raise ConfigError(msg)
        quorum = {str(k): int(v) for k, v in (entry.get("quorum") or {}).items()}
        rules[str(gate)] = GateRule(str(gate), tuple(str(r) for r in entry["roles"]), quorum)
    return RoleBook(principals, rules, str(path))


def refusal_reason(book: RoleBook, gate: str, principal: str, requester: str, launcher: str) -> str | None:
    """Why ``principal`` may not decide a ``gate`` request, or None when they may.

    Returns a short machine code followed by a human explanation (``"role: ..."``).
    """
    if principal not in book.principals:
        return f"unknown_principal: {principal!r} is not listed under principals: in {book.source}"
    if principal in {requester, launcher}:
        who = "requester" if principal == requester else "launcher"
        return f"separation_of_duties: {principal} is the {who} of this request and may not decide it"
    allowed = book.rule(gate).roles
    if not set(allowed) & set(book.roles_of(principal)):
        return f"role: {principal} holds {list(book.roles_of(principal))}, gate {gate!r} needs one of {list(allowed)}"
    return None
