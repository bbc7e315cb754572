"""The typed input of a policy decision: who (principal), does what (action), to what (resource), given what.

A request carries typed fields only. Free text (a document's body, an LLM's answer) never belongs in a
request: policies decide on ``amount``, ``data_class``, ``confidence`` and the like, so text written by
an attacker cannot change a decision (prompt injection has nothing to act on).
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictStr, field_validator

from flytekitplugins.aios_core.digest import digest_bytes, digest_value

PRINCIPAL_KINDS = {"user": "User", "service": "Service"}


class PolicyRequest(BaseModel):
    """One question for the policy engine.

    Attributes:
        principal: ``user:<name>`` or ``service:<name>``; must be declared in config/roles.yaml.
        action: a Cedar action of the schema (``run_task``, ``act_on_document``, ``use_model``, ...).
        resource: ``{"type": "Document", "id": "sha256:..."}``; any other keys are entity attributes
            typed by the schema (``{"type": "Model", "id": "...", "approved_data_classes": ["personal"]}``).
        context: typed attributes the action's schema declares (``amount``, ``confidence``, ...).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    principal: StrictStr
    action: StrictStr
    resource: dict[str, Any]
    context: dict[str, Any] = Field(default_factory=dict)

    @field_validator("principal")
    @classmethod
    def _principal_shape(cls, v: str) -> str:
        kind, sep, name = v.partition(":")
        if not sep or kind not in PRINCIPAL_KINDS or not name:
            msg = f"principal {v!r} must look like 'user:<name>' or 'service:<name>'"
            raise ValueError(msg)
        return v

    @field_validator("resource")
    @classmethod
    def _resource_shape(cls, v: dict[str, Any]) -> dict[str, Any]:
        for key in ("type", "id"):
            if not isinstance(v.get(key), str) or not v[key]:
                msg = f"resource needs a non-empty string {key!r} (e.g. {{'type': 'Document', 'id': 'sha256:...'}})"
                raise ValueError(msg)
        return v

    @property
    def principal_uid(self) -> tuple[str, str]:
        """(Cedar entity type, id) of the principal, e.g. ``("Service", "document-pipeline")``."""
        kind, _, name = self.principal.partition(":")
        return PRINCIPAL_KINDS[kind], name

    @property
    def resource_attrs(self) -> dict[str, Any]:
        """Resource entity attributes (every key except ``type`` and ``id``)."""
        return {k: v for k, v in self.resource.items() if k not in ("type", "id")}

    def digest(self) -> str:
        """Content digest of the request (recorded with every decision)."""
        data = self.model_dump(mode="json")
        try:  # fast path, byte-identical to canonical_json for plain JSON values
            text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError):
            return digest_value(data)
        return digest_bytes(text.encode("utf-8"))

    def describe(self) -> str:
        """Short human form: ``service:x act_on_document Document::sha256:...``."""
        return f"{self.principal} {self.action} {self.resource['type']}::{self.resource['id']}"


def coerce_request(value: PolicyRequest | dict[str, Any]) -> PolicyRequest:
    """Accept a request or its dict form; raise ``ValueError`` naming what is malformed."""
    if isinstance(value, PolicyRequest):
        return value
    if not isinstance(value, dict):
        msg = f"a policy request must be a PolicyRequest or a mapping, got {type(value).__name__}"
        raise ValueError(msg)
    return PolicyRequest.model_validate(value)
