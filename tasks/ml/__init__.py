"""Model code shared by the document, evaluation and retraining tasks (MiniLM, loaded offline)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flytekitplugins.aios_core.settings import Settings


def rows_digest(texts: list[str], labels: list[str]) -> str:
    """The digest of labelled rows in the one form the pack pins them everywhere: a model card's and the catalog's
    ``training_data_digests``, a retraining split's seal, and a drift check's ``reference_rows`` (so an evaluation can
    tell whether its drift check compared the candidate's own training rows with the rows it was tested on)."""
    from flytekitplugins.aios_core.digest import digest_value

    return digest_value({"texts": texts, "labels": labels})


def seal_split(subject: str, outputs: dict[str, str], attributes: dict[str, object], settings: Settings) -> str:
    """Seal the rows a step drew (training rows, held-out rows: ``outputs``, by role) in one ``kind="dataset"``
    record; returns its id. An evaluation counts a drift check only when one such seal drew its reference rows as
    training rows and the tested rows as held-out rows (``aios_catalog.evidence.split_training_rows``)."""
    from flytekitplugins.aios_audit import AuditEvent, audit_log
    from flytekitplugins.aios_catalog.evidence import SPLIT_KIND, SPLIT_STATUS
    from flytekitplugins.aios_core.context import code_version, current_execution

    event = AuditEvent(
        kind=SPLIT_KIND, actor=settings.actor, status=SPLIT_STATUS, subject=subject, execution=current_execution(),
        code_version=code_version(settings.code_version), outputs={k: v for k, v in outputs.items() if v},
        attributes=attributes,
    )  # fmt: skip
    return audit_log(settings).append(event).record_id


def seal_trained(subject: str, model: str, train: str, start: str, settings: Settings) -> str:
    """Seal, in the step that trained it, that the artifact ``model`` (its digest) was trained on the rows ``train``
    (:func:`rows_digest`) from the start model ``start`` ("" for none); returns the record id. An evaluation counts
    a drift check for a candidate only with such a seal binding it to the split the check's rows came from
    (``aios_catalog.evidence.trained_binds``)."""
    from flytekitplugins.aios_audit import AuditEvent, audit_log
    from flytekitplugins.aios_catalog.evidence import TRAINED_KIND
    from flytekitplugins.aios_core.context import code_version, current_execution

    inputs = {k: v for k, v in (("train", train), ("start", start)) if v}
    event = AuditEvent(
        kind=TRAINED_KIND, actor=settings.actor, status="trained", subject=subject, execution=current_execution(),
        code_version=code_version(settings.code_version), inputs=inputs, outputs={"model": model},
    )  # fmt: skip
    return audit_log(settings).append(event).record_id
