"""Errors of the model catalog, and the seed file reader."""

from __future__ import annotations

from pathlib import Path

import yaml

from flytekitplugins.aios_catalog.entries import ModelEntry
from flytekitplugins.aios_core.errors import AiosError, ConfigError, GovernanceDenied
from flytekitplugins.aios_core.types import PolicyDecision


class CatalogError(AiosError):
    """Unknown model, duplicate version or an impossible stage change."""


class ApprovalRequired(GovernanceDenied):
    """Policy asks for an approval before this promotion; ``decision.approval`` names the gate and risk."""

    def __init__(self, message: str, decision: PolicyDecision) -> None:
        super().__init__(message, reason_code="approval_required", record_id=decision.audit_record_id or None)
        self.decision = decision


def read_seed(path: Path) -> list[ModelEntry]:
    """Entries of a models.yaml file (``models:`` list); a missing file is an empty seed."""
    if not path.is_file():
        return []
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        return [ModelEntry.model_validate(m) for m in data.get("models", [])]
    except Exception as e:
        msg = f"model catalog seed {path} is invalid: {e}. Fix the entry named above (see config/models.yaml header)"
        raise ConfigError(msg) from e
