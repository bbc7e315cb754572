"""Human-review corrections: the feedback loop from the document workflow back into retraining.

Format (one JSON object per line, UTF-8) in ``{state_dir}/feedback/corrections.jsonl``::

    {"text_digest": "sha256:...", "text": "...", "label": "negative", "reviewer": "user:alice",
     "source": "doc:sha256:...", "reviewed_at": "2025-01-01T10:00:00+00:00", "record_id": "..."}

* Every correction stands on a ``review_correction`` record of the audit trail (the reviewer as actor, the text's
  digest as subject, the label and source), written durably before the line: :func:`read_corrections` takes a line
  only when that record is intact and says exactly what the line says. A file anyone with a shell could write was
  sealed into training data with any reviewer's name and no review in the trail (review of 2026-12-06, R2).
* ``text_digest`` is ``digest_value(text)``: a line whose digest does not match its text is rejected
  (it was edited after review), as is a line that is not valid JSON, lacks a field or names a label the
  model does not have. Rejected lines are counted and their line numbers reported, never silently used.
* The newest review for a ``text_digest`` wins, newest as the trail orders the records (a reviewer may correct a
  correction): an old line copied to the end of the file does not bring a withdrawn label back.
* Writers append with :func:`append_correction` (one ``O_APPEND`` write per line, so concurrent writers
  do not interleave; the file is created 0600, its folders 0700); the retraining workflow reads with
  :func:`read_corrections`.

The file holds review text by design (it is training data); the audit trail only ever holds its digest.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from flytekitplugins.aios_core.digest import digest_value
from flytekitplugins.aios_core.settings import Settings

FEEDBACK_FILE = "feedback/corrections.jsonl"
REVIEW_KIND = "review_correction"
"""The audit record a correction stands on."""


class Correction(BaseModel):
    """One human-reviewed label for one text."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    text_digest: str = Field(pattern=r"^sha256:[0-9a-f]{64}$")
    text: str = Field(min_length=1)
    label: str = Field(min_length=1)
    reviewer: str = Field(min_length=1, description="principal who reviewed, e.g. user:alice")
    source: str = ""
    reviewed_at: dt.datetime | None = None
    record_id: str = Field(default="", description="the review_correction audit record it stands on")


@dataclass
class FeedbackBatch:
    """Valid corrections (newest per text) and what was rejected."""

    corrections: list[Correction] = field(default_factory=list)
    rejected: dict[int, str] = field(default_factory=dict)  # line number -> why
    path: str = ""

    @property
    def digest(self) -> str:
        """Content digest of the accepted corrections (training-data lineage)."""
        return digest_value([c.model_dump(mode="json") for c in self.corrections])


def feedback_path(settings: Settings) -> Path:
    """Where corrections are kept for this deployment (under ``settings.state_dir``)."""
    return settings.state_dir / FEEDBACK_FILE


def append_correction(text: str, label: str, reviewer: str, *, settings: Settings, source: str = "") -> Correction:
    """Record one correction in the audit trail, then append it durably (fsync) to the deployment's corrections file
    (:func:`feedback_path`); return it.

    Args:
        text: the reviewed text.
        label: the label the reviewer chose.
        reviewer: the reviewing principal (``user:alice``).
        settings: the caller's settings (state folder, audit store).
        source: where the text came from (document digest, request id).

    Raises:
        GovernanceDenied: ``audit_write_failed`` when the review record could not be written (nothing is appended);
            ``unsafe_state_file`` when the corrections folder is another user's or others may write it (review R9:
            ``mkdir(parents=True, mode=0o700)`` gave the parents the umask's mode, 0777 under umask 0; nothing is
            recorded).
    """
    from flytekitplugins.aios_audit import AuditEvent, audit_log
    from flytekitplugins.aios_audit.private_files import UnsafeFile, state_refusal, touch_private
    from flytekitplugins.aios_core.context import current_execution
    from flytekitplugins.aios_core.errors import GovernanceDenied

    target = feedback_path(settings)
    try:  # before the review is recorded: a correction whose line cannot be kept is not recorded either
        # the folder 0700 whatever the umask, the file 0600: another user's folder or one others may write refused,
        # and so is a file found there that is not this user's own (a link another user left before the folder
        # was narrowed had the reviewed text appended to their world-readable file: re-review R10b)
        touch_private(target)
    except UnsafeFile as e:
        risk = "another local user could read or replace the training data; the correction was not recorded"
        fallback = f"remove {e.path}, and keep the state folder where only this user can write (AIOS_STATE_DIR)"
        raise state_refusal(e, f"the corrections folder {target.parent}", risk, fallback) from None
    text_digest = digest_value(text)
    event = AuditEvent(
        kind=REVIEW_KIND, actor=reviewer, status="corrected", subject=text_digest, execution=current_execution(),
        inputs={"text": text_digest}, attributes={"label": label, "source": source},
    )  # fmt: skip
    try:
        record = audit_log(settings).append(event)
    except Exception as e:
        raise GovernanceDenied(
            f"the correction could not be recorded in the audit trail, so it is not kept: {e}",
            reason_code="audit_write_failed",
        ) from e
    c = Correction(
        text_digest=text_digest,
        text=text,
        label=label,
        reviewer=reviewer,
        source=source,
        reviewed_at=dt.datetime.now(dt.UTC),
        record_id=record.record_id,
    )
    line = (c.model_dump_json() + "\n").encode("utf-8")
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)
    return c


def _parse(line: str, labels: set[str] | None) -> tuple[Correction | None, str]:
    try:
        c = Correction.model_validate(json.loads(line))
    except (json.JSONDecodeError, ValidationError) as e:
        return None, f"not a valid correction: {str(e).splitlines()[0]}"
    if digest_value(c.text) != c.text_digest:
        return None, "text_digest does not match text (edited after review?)"
    if labels is not None and c.label not in labels:
        return None, f"label {c.label!r} is not one of {sorted(labels)}"
    return c, ""


def read_corrections(path: Path, labels: list[str] | None = None, *, settings: Settings) -> FeedbackBatch:
    """Read and validate the corrections file; a missing file is an empty batch.

    Args:
        path: the JSONL file (:func:`feedback_path` of the caller's settings).
        labels: allowed labels (None: any).
        settings: the caller's settings: the audit trail each correction's review record is read from.
    """
    from flytekitplugins.aios_audit import audit_log

    target = Path(path)
    batch = FeedbackBatch(path=str(target))
    if not target.is_file():
        return batch
    allowed = set(labels) if labels is not None else None
    store = audit_log(settings)
    newest: dict[str, tuple[int, Correction]] = {}
    for n, raw in enumerate(target.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
        if not raw.strip():
            continue
        c, why = _parse(raw, allowed)
        seq = _reviewed(c, store) if c is not None else 0
        if c is not None and not seq:
            c, why = None, "no intact review_correction record in the audit trail says this (written by hand?)"
        if c is None:
            batch.rejected[n] = why
            continue
        if c.text_digest not in newest or newest[c.text_digest][0] < seq:
            newest[c.text_digest] = (seq, c)
    batch.corrections = [c for _, c in sorted(newest.values(), key=lambda sc: sc[0])]
    return batch


def _reviewed(c: Correction, store: Any) -> int:
    """The sequence number of the trail's record ``c.record_id`` when it is an intact review of this text, label,
    source and reviewer, else 0."""
    from flytekitplugins.aios_audit.records import intact

    rec = store.get(c.record_id) if c.record_id else None
    if rec is None or not intact(rec):
        return 0
    ev = rec.event
    said = (ev.kind, ev.actor, ev.subject, ev.attributes.get("label"), ev.attributes.get("source", ""))
    return int(rec.seq) if said == (REVIEW_KIND, c.reviewer, c.text_digest, c.label, c.source) else 0
