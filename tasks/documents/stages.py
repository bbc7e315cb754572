"""The Flyte tasks of ``process_documents``: thin, typed, audited wrappers around ``pipeline`` and ``report``.

Each task validates its tables with pandera at the boundary and appends one ``task`` audit record
(``@audited``) with input and output digests; policy decisions, approvals, models and quarantines
attach their own records. Raw document text never crosses a task boundary: parse and protect run in
one task, so only redacted text is ever written to Flyte's blob store.
"""

from __future__ import annotations

import ctypes
import dataclasses
import functools
import gc
import json
import logging
import os

import pandas as pd
from flytekit import Deck, Resources, task
from pandera.typing import DataFrame

from flytekitplugins.aios_approvals import ApprovalOutcome
from flytekitplugins.aios_audit import audit_log, audited, current_audit
from tasks.documents import pipeline, progress, report
from tasks.documents.schemas import (
    ActionRow,
    BatchSummary,
    ClassifiedDoc,
    DecidedDoc,
    DocumentRef,
    ProcessingOptions,
    ProtectedDoc,
    QuarantineRow,
    ResultRow,
)
from tasks.images import GOVERNED, REPORT_DECK_FIELDS

log = logging.getLogger(__name__)


@functools.cache
def _libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL("libc.so.6")
        return libc if hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


def release_memory() -> None:
    """Hand freed heap back to the OS after a chunk (glibc ``malloc_trim``; a no-op elsewhere).

    Tensors, token buffers and parsed pages of every shape pass through one long-lived process when
    map-task chunks run locally; without this, freed memory stays in glibc's heap fragmented and the
    peak RSS creeps up with the number of chunks instead of staying flat.
    """
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)


_frozen_in: list[int] = []


def freeze_long_lived() -> bool:
    """Take every object alive now (the imported libraries, the loaded models) out of the cycle collector's walks,
    once per process (``gc.freeze``); True the first time.

    A full collection walks every tracked object, and after torch, transformers, flytekit and pandas are imported
    that is over half a million of them: one such walk took 0.31 s of a 5.4 s run of 400 documents on the
    project's 2-core VM, nearly as long as the run's parsing, policy and audit work together. Frozen objects are
    still freed by reference counting; a cycle among them is never collected (the garbage of this moment, a few
    hundred objects, and any later cycle of these long-lived objects), the usual trade of ``gc.freeze``.
    """
    if os.getpid() in _frozen_in:
        return False
    gc.freeze()
    _frozen_in.append(os.getpid())
    return True


@task(**GOVERNED)
@audited(attributes={"stage": "ingest"})
def ingest(source: str, options: ProcessingOptions) -> list[DataFrame[DocumentRef]]:
    """List, digest and de-duplicate the documents of a source, in chunks of references (no content).

    Args:
        source: local folder, fsspec URL (s3://bucket/prefix) or database URL (sqlite:///db, postgresql://...).
        options: batch options (chunk size, size limit, ...).
    """
    from flytekitplugins.aios_core.context import in_cluster_task
    from flytekitplugins.aios_core.settings import get_settings

    settings = get_settings()  # the deployment's sources and tables, never the launch's: this task's settings
    chunks = pipeline.ingest_chunks(
        source,
        options,
        allowed=settings.document_sources,
        on_cluster=in_cluster_task(),
        tables=settings.document_tables,
    )
    scope = current_audit()
    if scope is not None:
        scope.set_attribute("documents", int(sum(len(c) for c in chunks)))
    return chunks


@task(**GOVERNED, retries=2, requests=Resources(cpu="2", mem="1Gi"))  # two CPUs: options.parse_workers
@audited(attributes={"stage": "parse_protect"})
def parse_protect(chunk: DataFrame[DocumentRef], options: ProcessingOptions) -> DataFrame[ProtectedDoc]:
    """Parse (PDF, DOCX, e-mail, HTML, text, OCR) and redact personal data and secrets; quarantine bad input.

    Args:
        chunk: document references of one chunk.
        options: batch options (page and size limits).
    """
    from flytekitplugins.aios_core.settings import get_settings

    try:
        return pipeline.parse_protect(chunk, options, get_settings())  # this task's settings, passed down
    finally:
        release_memory()


@task(**GOVERNED, retries=2, requests=Resources(cpu="2", mem="3Gi"))
@audited(attributes={"stage": "classify"})
def classify(docs: DataFrame[ProtectedDoc], options: ProcessingOptions) -> DataFrame[ClassifiedDoc]:
    """Classify the document type: cheap model first, stronger model when unsure, human review when both are.

    Args:
        docs: redacted documents of one chunk.
        options: batch options (thresholds, batch size).
    """
    from flytekitplugins.aios_core.settings import get_settings
    from tasks.documents.governance import check_model_use, ensure_catalogued
    from tasks.documents.models import FAST, STRONG, load_or_train, models_dir
    from tasks.documents.router import ResultCache, Router
    from tasks.ml.minilm import PRECISIONS

    settings = get_settings()  # this task's entry point: resolved once, passed down
    pipeline.check_thresholds(options, settings)  # before any model loads: the deployment's floors, not the launch's
    models = load_or_train(models_dir(settings), PRECISIONS[options.precision])
    freeze_long_lived()  # the libraries and models stay for the process: no collector walk over them per chunk
    ensure_catalogued(models_dir(settings), [FAST, STRONG], settings)
    ids = [(m.name, m.version) for m in (models.fast.encoder.ref, models.fast.ref, models.strong.ref)]
    decisions = check_model_use(options.principal, ids, settings)
    router = Router(models, options.fast_threshold, options.strong_threshold)
    scope = current_audit()
    if scope is not None:
        for ref in router.refs:
            scope.add_model(ref)
        scope.set_attribute("use_model_decisions", [d.get("audit_record_id", "") for d in decisions])
        # bf16 or fp32 (the hardware's fast one, or options.precision): answers differ in the last digits
        scope.set_attribute(
            "encoder_precision", {"fast": models.fast.encoder.precision, "strong": models.strong.encoder.precision}
        )
    cache = ResultCache(settings.state_dir / "cache" / "documents.db")
    try:
        return pipeline.classify(docs, options, router, cache, settings)
    finally:
        cache.close()
        release_memory()


@task(**GOVERNED, retries=2)
@audited(attributes={"stage": "decide"})
def decide(docs: DataFrame[ClassifiedDoc], options: ProcessingOptions) -> DataFrame[DecidedDoc]:
    """Extract typed fields, decide the action, ask policy, open approval requests where policy asks.

    Args:
        docs: classified documents of one chunk.
        options: batch options (principal, approval timeout).
    """
    from flytekitplugins.aios_core.settings import get_settings

    try:
        return pipeline.decide_chunk(docs, options, get_settings())  # this task's settings, passed down
    finally:
        release_memory()


@task(**GOVERNED)
def gather(parts: list[DataFrame[DecidedDoc]]) -> DataFrame[DecidedDoc]:
    """Join the decided chunks into one table (typed fields only, no text).

    Args:
        parts: decided tables, one per chunk.
    """
    frames = [p for p in parts if len(p)]
    # no chunk (an empty source): the schema's own empty table, its columns at their types (columns of nothing are
    # objects, which the schema refuses: an empty batch ended in a schema error instead of its summary)
    return pd.concat(frames, ignore_index=True) if frames else DecidedDoc.empty()


@task(**GOVERNED)
@audited(attributes={"stage": "plan_auto_actions"})
def auto_actions(decided: DataFrame[DecidedDoc], options: ProcessingOptions) -> DataFrame[ActionRow]:
    """Decisions the policy allowed outright: they are acted on now, before any approval gate.

    Args:
        decided: every decided document of the batch.
        options: batch options (principal).
    """
    return report.action_rows(decided, options.principal)


@task(**GOVERNED)
def requests_for(decided: DataFrame[DecidedDoc], gate: str, posted_before: int) -> list[str]:
    """Approval request ids of one gate, released once the auto-allowed actions are posted.

    Args:
        decided: every decided document of the batch.
        gate: the approval gate (payment-signoff or document-review).
        posted_before: number of auto actions posted (orders this step after them).
    """
    log.info("%s auto actions posted; releasing the %s requests", posted_before, gate)
    ids = decided.loc[decided["gate"] == gate, "request_id"]
    return sorted({str(i) for i in ids if i})


@task(**GOVERNED)
@audited(attributes={"stage": "plan_approved_actions"})
def approved_actions(
    decided: DataFrame[DecidedDoc],
    payment: list[ApprovalOutcome],
    review: list[ApprovalOutcome],
    options: ProcessingOptions,
) -> DataFrame[ActionRow]:
    """Decisions whose approval request was verified as approved (after the gates).

    Args:
        decided: every decided document of the batch.
        payment: verified outcomes of the payment-signoff gate.
        review: verified outcomes of the document-review gate.
        options: batch options (principal).
    """
    approved = {o.request_id for o in [*payment, *review] if o.approved}
    scope = current_audit()
    if scope is not None:
        for o in [*payment, *review]:
            scope.add_approval({"request_id": o.request_id, "status": o.status, "approvers": o.approvers})
    return report.action_rows(decided, options.principal, approved)


@task(**{**GOVERNED, "deck_fields": REPORT_DECK_FIELDS}, enable_deck=True)
@audited(attributes={"stage": "summarize"})
def summarize(
    decided: DataFrame[DecidedDoc],
    payment: list[ApprovalOutcome],
    review: list[ApprovalOutcome],
    posted: list[int],
    source: str,
    options: ProcessingOptions,
) -> tuple[BatchSummary, DataFrame[ResultRow], DataFrame[QuarantineRow]]:
    """Outcomes per document, the batch summary (row conservation asserted) and the Deck.

    Args:
        decided: every decided document of the batch.
        payment: verified outcomes of the payment-signoff gate.
        review: verified outcomes of the document-review gate.
        posted: [posted, already posted] for auto actions, then for approved actions, then refused counts.
        source: the batch's source (labels are read from it when present and it is an allowed source).
        options: batch options (cost per CPU hour).
    """
    from flytekitplugins.aios_audit.metrics import record_cost
    from flytekitplugins.aios_core.context import in_cluster_task
    from flytekitplugins.aios_core.settings import get_settings

    settings = get_settings()  # this task's entry point: resolved once, passed down
    approvals = {o.request_id: o.status for o in [*payment, *review]}
    # source is a launch input: its labels file is read only where the deployment keeps documents
    labels = report.read_labels(source, settings.document_sources, on_cluster=in_cluster_task())
    # what was acted on is what the trail's claims say the acting point authorized, not what was decided
    holders = audit_log(settings).claim_holders(report.acted_claims(decided))
    results, quarantine = report.results_tables(decided, approvals, labels, holders)
    counts = (posted[0] + posted[2], posted[1] + posted[3], posted[4] + posted[5])
    summary = report.summarize(results, quarantine, counts, source, options)
    Deck("batch summary", report.deck_html(summary, results, quarantine))
    progress.stop()
    report.export_tables(summary, results, quarantine, settings.results_dir)
    # metrics aios.document.cost (one sample per document) and aios.workflow.cost (the batch's total)
    record_cost(summary.cost_per_document_usd, summary.documents_in, None, settings)
    print("AIOS_BATCH_SUMMARY " + json.dumps(dataclasses.asdict(summary), sort_keys=True), flush=True)
    return summary, results, quarantine


@task(**GOVERNED)
def counts(
    posted: int, already_posted: int, more_posted: int, more_already: int, refused: int, more_refused: int
) -> list[int]:
    """Pack the system-of-record counts of both posting steps.

    Args:
        posted: auto actions newly posted.
        already_posted: auto actions an earlier attempt had posted.
        more_posted: approved actions newly posted.
        more_already: approved actions an earlier attempt had posted.
        refused: auto actions the acting point refused (no policy decision stands behind them).
        more_refused: approved actions the acting point refused (no verified, unused approval behind them).
    """
    return [posted, already_posted, more_posted, more_already, refused, more_refused]
