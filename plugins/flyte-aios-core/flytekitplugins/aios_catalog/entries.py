"""Typed catalog entries and the changes recorded for them.

A :class:`ModelEntry` is what the catalog knows about one model version; a :class:`CatalogChange` is
one audited event in its life (seeded, registered, promoted, retired), read back from the audit trail.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Stage = Literal["candidate", "champion", "retired"]
STAGES: tuple[Stage, ...] = ("candidate", "champion", "retired")
DATA_CLASSES = ("public", "internal", "confidential", "restricted")


NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._\-]*$"
VERSION_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._=+\-]*$"
"""A name or version is one path segment (artifacts are kept under ``models/<name>/<version>``): no ``/``, no
``..`` alone, no leading dot."""


def check_model_id(name: str, version: str) -> None:
    """Refuse a model name or version that is not one safe path segment, before anything is written under it.

    Raises:
        ValueError: naming the value and the rule.
    """
    for what, value, pattern in (("name", name, NAME_PATTERN), ("version", version, VERSION_PATTERN)):
        if not re.fullmatch(pattern, value or ""):
            msg = (
                f"model {what} {value!r} is refused: use letters, digits and . _ - (a version may also hold = +), "
                "starting with a letter or digit; it names a folder, so no '/' and no '..'"
            )
            raise ValueError(msg)


class ModelEntry(BaseModel):
    """One model version in the catalog.

    Args:
        name: catalog name (the same for every version of one model), e.g. ``vader-sentiment``.
        version: version string, unique per name.
        digest: ``sha256:<hex>`` of the artifact (see ``tasks.ml.classifier.artifact_digest``).
        training_data_digests: content digests of the data the model was trained on.
        metrics: evaluation figures, e.g. ``{"accuracy": 0.91, "macro_f1": 0.90}``.
        allowed_data_classes: data classes the model may process (public, internal, confidential, restricted).
        owner: accountable principal or team, e.g. ``team:ml-platform``.
        stage: ``candidate`` (registered), ``champion`` (serving) or ``retired``.
        artifact_uri: where the artifact lives (local path, ``s3://``, ``pypi:``).
        description: free text for people.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, pattern=NAME_PATTERN)
    version: str = Field(min_length=1, pattern=VERSION_PATTERN)
    digest: str = Field(pattern=r"^sha256:[0-9a-f]{64}$")
    training_data_digests: list[str] = Field(default_factory=list)
    metrics: dict[str, float] = Field(default_factory=dict)
    allowed_data_classes: list[str] = Field(default_factory=lambda: ["public"])
    owner: str = Field(min_length=1)
    stage: Stage = "candidate"
    artifact_uri: str = ""
    description: str = ""

    @field_validator("allowed_data_classes")
    @classmethod
    def _known_classes(cls, v: list[str]) -> list[str]:
        unknown = sorted(set(v) - set(DATA_CLASSES))
        if unknown:
            msg = f"allowed_data_classes has unknown classes {unknown}; use any of {list(DATA_CLASSES)}"
            raise ValueError(msg)
        return v

    @property
    def model_id(self) -> str:
        """``name@version``: the resource id policies and audit records use."""
        return f"{self.name}@{self.version}"

    def with_stage(self, stage: Stage) -> ModelEntry:
        """A copy of this entry at another stage."""
        return self.model_copy(update={"stage": stage})


class CatalogChange(BaseModel):
    """One audited change of the catalog, as folded from a kind="catalog" audit record."""

    model_config = ConfigDict(frozen=True)

    seq: int
    record_id: str
    recorded_at: dt.datetime
    actor: str
    op: Literal["seed", "register", "promote", "retire"]
    model_id: str
    from_stage: Stage | None = None
    to_stage: Stage | None = None
    reason: str = ""
    evidence: dict[str, Any] = Field(default_factory=dict)
    policy_decisions: list[dict[str, Any]] = Field(default_factory=list)
    approvals: list[dict[str, Any]] = Field(default_factory=list)
