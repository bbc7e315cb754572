"""Flyte tasks of the drift check: data quality first (fails loudly), then drift (significant AND material).

Every check writes one ``kind="drift"`` audit record (the figures, the input digests, the models used);
a quality failure is recorded too, then raised.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

import pandas as pd
from flytekit import Deck, task

from flytekitplugins.aios_audit import AuditEvent, AuditRecord, ModelRef, audit_log
from flytekitplugins.aios_audit.stores import AuditStore
from flytekitplugins.aios_core.context import code_version, current_execution
from flytekitplugins.aios_core.digest import digest_value
from flytekitplugins.aios_core.errors import GovernanceDenied
from flytekitplugins.aios_core.settings import Settings, get_settings
from tasks.drift.effect_size import Thresholds, effect_sizes, profile_reference
from tasks.drift.report import DriftReport, QualityReport, feature_drifts
from tasks.images import GOVERNED

QUALITY_KIND = "quality"
"""The record :func:`check_quality` seals a passed validation in (status ``passed``; its suite, the rows' digests)."""


def record_drift(status: str, subject: str, attributes: dict[str, object], settings: Settings, **kw: object) -> str:
    """Append one kind="drift" audit record to ``settings``' store (durable or raise) and return its id."""
    event = AuditEvent(
        kind="drift",
        actor=settings.actor,
        status=status,
        subject=subject,
        execution=current_execution(),
        code_version=code_version(settings.code_version),
        attributes=attributes,
        **kw,  # type: ignore[arg-type]
    )
    return audit_log(settings).append(event).record_id


@task(**GOVERNED, enable_deck=True)
def check_quality(reference: pd.DataFrame, current: pd.DataFrame, suite: str, dataset: str) -> list[QualityReport]:
    """Validate both batches with a Great Expectations suite; any failure fails the check loudly.

    Args:
        reference: reference batch.
        current: current batch.
        suite: suite name, a file under config/expectations/.
        dataset: dataset label for the audit record.
    """
    from tasks.drift.deck_pages import quality_html
    from tasks.drift.quality import require_quality, validate

    settings = get_settings()  # this task's entry point: resolved once, passed down
    reports = [validate(reference, suite, "reference", settings), validate(current, suite, "current", settings)]
    Deck("quality", quality_html(suite, reports))
    if not all(r.success for r in reports):
        attrs = {"suite": suite, "failed": {r.batch: r.failed for r in reports if not r.success}}
        record_drift("quality_failed", f"dataset:{dataset}", attrs, settings)
        require_quality(reports)
    if not all(r.evaluated > 0 for r in reports):  # a validation that ran no expectation is no check of the rows
        empty = " and ".join(r.batch for r in reports if not r.evaluated)
        raise ValueError(f"suite {suite!r} evaluated no expectation on the {empty} batch; a quality check needs one")
    # the validation sealed with the digests of the rows it validated: measure_drift counts only such a record,
    # never a passed report typed by hand
    event = AuditEvent(
        kind=QUALITY_KIND,
        actor=settings.actor,
        status="passed",
        subject=f"dataset:{dataset}",
        execution=current_execution(),
        code_version=code_version(settings.code_version),
        inputs={"reference": digest_value(reference), "current": digest_value(current)},
        attributes={"suite": suite, "batches": {r.batch: {"rows": r.rows, "evaluated": r.evaluated} for r in reports}},
    )
    rid = audit_log(settings).append(event).record_id
    return [r.model_copy(update={"audit_record_id": rid}) for r in reports]


def _text_drift(
    report: DriftReport, reference: pd.DataFrame, current: pd.DataFrame, text_column: str, model_dir: str, n: int
) -> list[ModelRef]:
    from tasks.drift.text import embed_cached, embedding_drift, prediction_drift
    from tasks.ml.minilm import base_model_ref

    ref_txt = reference[text_column].astype(str).head(n).tolist()
    cur_txt = current[text_column].astype(str).head(n).tolist()
    e_ref, e_cur = embed_cached(ref_txt), embed_cached(cur_txt)
    report.embedding = embedding_drift(e_ref, e_cur)
    models = [base_model_ref()]
    if model_dir:
        from pathlib import Path

        from tasks.ml.classifier import TextClassifier

        clf = TextClassifier.load(Path(model_dir))
        shared = not (Path(model_dir) / "model.safetensors").is_file()
        p_ref = clf.predict_proba_embeddings(e_ref) if shared else clf.predict_proba(ref_txt)
        p_cur = clf.predict_proba_embeddings(e_cur) if shared else clf.predict_proba(cur_txt)
        th = report.thresholds
        report.prediction = prediction_drift(
            f"{clf.card.name}@{clf.card.version}",
            p_ref,
            p_cur,
            psi_threshold=th["psi"],
            js_threshold=th["js"],
            alpha=th["alpha"],
        )
        models.append(clf.ref)
    return models


MIN_ROWS = 20
"""Fewest rows a batch may have for a drift check: fewer cannot be told from noise, and an empty batch has none."""


def quality_seal(rec: AuditRecord | None, batches: Mapping[str, str], suite: str | None = None) -> bool:
    """True when ``rec`` is an intact passed ``kind="quality"`` record (of ``suite``, when given) that validated rows
    whose digests are ``batches`` (``{"reference": digest, "current": digest}``, or one of them)."""
    from flytekitplugins.aios_audit.records import intact

    if rec is None or not intact(rec) or rec.event.kind != QUALITY_KIND or rec.event.status != "passed":
        return False
    if suite is not None and rec.event.attributes.get("suite") != suite:
        return False
    return all(digest and rec.event.inputs.get(batch) == digest for batch, digest in batches.items())


def drift_sealed(store: AuditStore, rec: AuditRecord) -> bool:
    """Whether one of drift record ``rec``'s parents is an intact passed quality seal of exactly its two batches
    (the digests its ``inputs`` name): a check recorded before ``measure_drift`` required the seal may have been
    measured on quality reports typed by hand, and decides nothing."""
    batches = {k: str(rec.event.inputs.get(k) or "") for k in ("reference", "current")}
    return any(quality_seal(parent, batches) for parent in store.get_many(rec.event.parents).values())


def _require_checked(
    frames: dict[str, pd.DataFrame], digests: dict[str, str], quality: list[QualityReport], settings: Settings
) -> list[str]:
    """The ``kind="quality"`` records that stand behind both batches; refuse to measure (and so to record
    ``no_drift``) for a batch too small, or one no sealed passed quality check of exactly its rows stands behind.

    An empty current batch with an empty quality list was recorded as no drift; later a passed report typed by hand
    (``success: true`` and the batch's row count, no suite run) counted the same as a real validation."""
    for batch, frame in frames.items():
        if len(frame) < MIN_ROWS:
            msg = f"the {batch} batch has {len(frame)} row(s); a drift check needs at least {MIN_ROWS} in each batch"
            raise ValueError(msg)
    sealed: list[str] = []
    for batch, frame in frames.items():
        mine = [q for q in quality if q.batch == batch and q.success and q.rows == len(frame)]
        if not mine:
            msg = (
                f"no passed quality report of the {batch} batch ({len(frame)} rows) was handed in; run check_quality "
                "first (workflows.drift.check_drift does)"
            )
            raise ValueError(msg)
        found = next(
            (
                q.audit_record_id
                for q in mine
                if q.audit_record_id
                and quality_seal(audit_log(settings).get(q.audit_record_id), {batch: digests[batch]}, q.suite)
            ),
            "",
        )
        if not found:
            msg = (
                f"the passed quality report of the {batch} batch is not a sealed validation of these rows (no intact "
                "passed quality record of its suite names their digest): run check_quality on these batches "
                "(workflows.drift.check_drift does)"
            )
            raise GovernanceDenied(msg, reason_code="unsealed_quality")
        sealed.append(found)
    return sorted(set(sealed))


def _rows(reference: pd.DataFrame, text_column: str) -> dict[str, str]:
    """``{"reference_rows": digest}`` of labelled text rows, in the form the catalog pins a model's training data
    (:func:`tasks.ml.rows_digest`), so an evaluation can tell whether this check's reference batch is the candidate's
    own training rows; empty for a batch without a text column and a ``label`` column."""
    if not text_column or text_column not in reference.columns or "label" not in reference.columns:
        return {}
    from tasks.ml import rows_digest

    return {"reference_rows": rows_digest(reference[text_column].tolist(), reference["label"].tolist())}


@task(**GOVERNED, enable_deck=True)
def measure_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    quality: list[QualityReport],
    dataset: str,
    columns: list[str],
    text_column: str,
    model_dir: str,
    psi_threshold: float,
    js_threshold: float,
    wasserstein_threshold: float,
    text_sample: int,
) -> DriftReport:
    """Per-feature drift (significant and material), text embedding and prediction drift; Deck + audit record.

    A feature drifts when its p-value is below 0.01 / features (Bonferroni) and PSI, JS or W1/std reaches its
    materiality threshold; docs/drift.md defines each figure and gives the measured error rates.

    Args:
        reference: reference batch.
        current: current batch.
        quality: the passed quality reports (kept in the report).
        dataset: dataset label.
        columns: feature columns (empty: every column except ``text_column``).
        text_column: column with text for embedding drift (empty: none).
        model_dir: artifact folder of a classifier for prediction drift (empty: none).
        psi_threshold: PSI materiality threshold (natural log, deciles or categories; default 0.03).
        js_threshold: Jensen-Shannon distance (base 2) materiality threshold (default 0.1).
        wasserstein_threshold: exact W1 / reference std materiality threshold (default 0.2).
        text_sample: texts per batch to embed (CPU cost grows linearly).
    """
    from tasks.drift.plots import effect_size_chart, feature_histograms, report_table

    settings = get_settings()  # this task's entry point: resolved once, passed down
    digests = {"reference": digest_value(reference), "current": digest_value(current)}
    checked = _require_checked({"reference": reference, "current": current}, digests, quality, settings)
    th = Thresholds(psi=psi_threshold, js=js_threshold, wasserstein=wasserstein_threshold)
    cols = columns or [str(c) for c in reference.columns if c != text_column]
    start = time.perf_counter()
    es = effect_sizes(profile_reference(reference, cols), current)
    elapsed = (time.perf_counter() - start) * 1000
    report = DriftReport(
        dataset=dataset,
        n_ref=len(reference),
        n_cur=len(current),
        thresholds=vars(th),
        features=feature_drifts(es, th),
        quality=quality,
        effect_size_ms=round(elapsed, 2),
    )
    models = _text_drift(report, reference, current, text_column, model_dir, text_sample) if text_column else []
    Deck("drift", report_table(report) + effect_size_chart(report))
    Deck("features", feature_histograms(es, report))
    if report.embedding is not None:
        from tasks.drift.deck_pages import text_drift_html

        Deck("text", text_drift_html(report))
    attrs = {
        **report.summary(),
        "thresholds": report.thresholds,
        "effect_size_ms": report.effect_size_ms,
        "features": [
            f.model_dump(include={"name", "psi", "js", "wasserstein", "ks", "p_value", "drifted"})
            for f in report.features
        ],
        "embedding": report.embedding.model_dump() if report.embedding else None,
        "prediction": report.prediction.model_dump() if report.prediction else None,
    }
    report.audit_record_id = record_drift(
        "drift" if report.drifted else "no_drift",
        f"dataset:{dataset}",
        attrs,
        settings,
        inputs={**digests, **_rows(reference, text_column)},
        outputs={"report": digest_value(report)},
        models=models,
        parents=checked,  # the sealed validations of both batches
    )
    return report
