"""Types shared between the governance plugins (policy gates, approvals, audit, connectors).

Defined once here so that the policy plugin, the approval plugin, the connectors and the tasks agree
on them without importing each other.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Effect = Literal["allow", "deny", "require_approval"]
Risk = Literal["low", "medium", "high"]


class Principal(BaseModel):
    """Who acts: ``user:<name>`` or ``service:<name>``, with roles from config/roles.yaml."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(description="'user:alice' or 'service:document-pipeline'")
    roles: tuple[str, ...] = ()


class ApprovalRequirement(BaseModel):
    """What a policy asks for when its effect is ``require_approval``."""

    model_config = ConfigDict(frozen=True)

    gate: str = Field(description="approval kind, kebab-case, a key of `approvals:` in roles.yaml")
    risk: Risk = "medium"
    reason: str = ""


class PolicyDecision(BaseModel):
    """The result of one policy evaluation. Deny is the default for every failure."""

    model_config = ConfigDict(frozen=True)

    effect: Effect
    reasons: list[str] = Field(default_factory=list, description="human-readable reasons; errors land here")
    policy_ids: list[str] = Field(default_factory=list, description="ids of the policies that determined it")
    policy_set_digest: str = ""
    request_digest: str = ""
    engine: str = ""
    evaluated_at: dt.datetime = Field(default_factory=lambda: dt.datetime.now(dt.UTC))
    duration_us: float = 0.0
    approval: ApprovalRequirement | None = None
    audit_record_id: str = Field(default="", description="leaf hash of the audit record of this decision")
    attributes: dict[str, Any] = Field(default_factory=dict)

    @property
    def allowed(self) -> bool:
        """True only for an unconditional allow."""
        return self.effect == "allow"
