"""Typed boundaries of the document pipeline: options, batch summary and pandera table schemas.

Every stage reads and writes one of these tables; pandera validates them at each task boundary
(flytekitplugins-pandera), so a stage that drops a column or a row's status fails loudly.
Redacted text travels only between parse/protect, classify and extract; later tables hold typed fields.
Every schema here derives from ``PackDataFrameModel``: ``DataFrame[S]`` of these schemas converts through
:class:`ValidatingTransformer`; any other pandera schema keeps flytekitplugins-pandera's own transformer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pandera.pandas as pa
from flytekit import Deck, FlyteContext, FlyteContextManager
from flytekit.loggers import logger
from flytekit.models.literals import Literal
from flytekit.models.types import LiteralType
from pandera.errors import SchemaError, SchemaErrors
from pandera.typing import Series

from flytekitplugins.aios.compat import pandera as pandera_compat
from flytekitplugins.aios.compat.pandera import PackDataFrameModel
from tasks.acting import service_principal_problem
from tasks.described import describe_fields
from tasks.documents.html_tables import passed_report_html

STATUSES = ("ok", "duplicate", "quarantine")
MIN_CHARS = 20
"""Characters of text a document needs after parsing and OCR (fewer: quarantined ``no_text``)."""


@describe_fields
@dataclass
class ProcessingOptions:
    """Options of one batch (typed defaults; every field shows in the Flyte launch form).

    Attributes:
        chunk_size: documents per mapped task (the unit of fan-out; memory per task scales with it).
        max_file_mb: larger files are quarantined (``too_large``) without being read.
        max_expanded_mb: bytes one document may expand to (DOCX members, PDF content streams, image pixels),
            checked before anything is expanded; more is quarantined (``decompression_bomb``).
        max_compression_ratio: largest decompressed/compressed ratio of one DOCX member or PDF stream over
            1 MiB; higher is quarantined (``decompression_bomb``).
        max_pages: most PDF pages a document may have (at least 1); a longer PDF is quarantined ``truncated``.
        ocr_pages: most pages rendered for OCR when a PDF has no text layer (0: no OCR; at most max_pages); a
            longer PDF without one is quarantined ``truncated``.
        max_chars: most characters of text a document may have (at least 20, the least a document needs); a
            longer one is quarantined ``truncated``, never cut.
        fast_threshold: confidence at which the cheap model's label is accepted.
        strong_threshold: confidence at which the stronger model's label is accepted; below: human review.
        approval_timeout_s: seconds an approval request stays open (then it times out: no action).
        batch_size: documents per forward pass of the models (1 .. 1024).
        cost_per_cpu_hour: price of one CPU hour (USD), for the cost-per-document figure.
        principal: the service principal the pipeline acts as.
        sql_table: table to read when the source is a database URL (columns id, name, content); one of the
            deployment's document tables (AIOS_DOCUMENT_TABLES, default documents).
        progress: show a progress bar on local runs (auto: when stderr is a terminal).
        parse_workers: processes that parse one chunk's documents (this one and forked helpers), at most the
            CPUs the task may use; 1 parses in the task's process alone.
        precision: the encoders' precision: auto (bf16 where the hardware runs it faster than fp32: AMX,
            AVX512-BF16 on AMD, a GPU with native bf16; fp32 elsewhere), bf16 or fp32 (e.g. to re-run a batch at
            the other precision and compare). Each classify record names the precision used.
    """

    chunk_size: int = 256
    max_file_mb: float = 25.0
    max_expanded_mb: float = 50.0
    max_compression_ratio: float = 100.0
    max_pages: int = 50
    ocr_pages: int = 3
    max_chars: int = 200_000
    fast_threshold: float = 0.8
    strong_threshold: float = 0.7
    approval_timeout_s: float = 3600.0
    batch_size: int = 32
    cost_per_cpu_hour: float = 0.05
    principal: str = "service:document-pipeline"
    sql_table: str = "documents"
    progress: str = "auto"
    parse_workers: int = 2
    precision: str = "auto"

    def __post_init__(self) -> None:
        checks = [
            (self.chunk_size >= 1, "chunk_size", "use a positive number of documents per chunk"),
            # a negative count sliced text and pages from the end (max_chars=-50 dropped each document's last 50
            # characters, silently); a batch of 0 or less failed the classify task deep in torch, and one past
            # 1,024 pads that many documents into one forward pass (tens of GB of attention at 10k documents)
            (self.max_pages >= 1, "max_pages", "use at least 1 page"),
            (0 <= self.ocr_pages <= self.max_pages, "ocr_pages", "use 0 (no OCR) .. max_pages"),
            (
                self.max_chars >= MIN_CHARS,
                "max_chars",
                f"use at least {MIN_CHARS} characters (fewer: no document passes)",
            ),
            (1 <= self.batch_size <= 1024, "batch_size", "use 1 .. 1024 documents per forward pass"),
            # finite: an infinite size or ratio switched off the limit that stops a zip bomb or an oversized file
            (0 < self.max_file_mb < math.inf, "max_file_mb", "use a positive size in MiB"),
            (0 < self.max_expanded_mb < math.inf, "max_expanded_mb", "use a positive size in MiB"),
            (1 <= self.max_compression_ratio < math.inf, "max_compression_ratio", "use a ratio of at least 1"),
            (0 <= self.cost_per_cpu_hour < math.inf, "cost_per_cpu_hour", "use a price of 0 or more"),
            (0.0 < self.fast_threshold <= 1.0, "fast_threshold", "use a confidence in (0, 1]"),
            (0.0 < self.strong_threshold <= 1.0, "strong_threshold", "use a confidence in (0, 1]"),
            (0 < self.approval_timeout_s <= 86_400, "approval_timeout_s", "use 1 s .. 24 h (the gate waits 25 h)"),
            (self.progress in {"auto", "on", "off"}, "progress", "use auto, on or off"),
            (1 <= self.parse_workers <= 64, "parse_workers", "use 1 .. 64 processes"),
            (self.precision in {"auto", "bf16", "fp32"}, "precision", "use auto, bf16 or fp32"),
        ]
        for ok, name, fix in checks:
            if not ok:
                msg = f"ProcessingOptions.{name}={getattr(self, name)!r} is invalid: {fix}"
                raise ValueError(msg)
        if problem := service_principal_problem(self.principal):  # the rule act_as applies to the other workflows
            msg = f"ProcessingOptions.principal is invalid: {problem}"
            raise ValueError(msg)


@dataclass
class BatchSummary:
    """What happened to a batch: every document is either processed or quarantined."""

    documents_in: int = 0
    processed: int = 0
    quarantined: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    quarantine_reasons: dict[str, int] = field(default_factory=dict)
    routes: dict[str, int] = field(default_factory=dict)
    routed_to_review: int = 0
    approvals: dict[str, int] = field(default_factory=dict)
    posted: int = 0
    already_posted: int = 0
    refused_at_acting_point: int = 0
    latency_ms_p50: float = 0.0
    latency_ms_p95: float = 0.0
    latency_ms_p99: float = 0.0
    cpu_seconds: float = 0.0
    cost_per_document_usd: float = 0.0
    accuracy: float = -1.0
    labelled: int = 0
    source: str = ""


class DocumentRef(PackDataFrameModel):
    """One document to process: a reference, never the content."""

    doc_id: Series[str] = pa.Field(unique=True)
    uri: Series[str]
    name: Series[str]
    size: Series[int] = pa.Field(ge=0)
    digest: Series[str]
    status: Series[str] = pa.Field(isin=STATUSES)
    reason: Series[str]

    class Config:
        strict = True


class _Common(PackDataFrameModel):
    doc_id: Series[str] = pa.Field(unique=True)
    name: Series[str]
    digest: Series[str]
    status: Series[str] = pa.Field(isin=STATUSES)
    reason: Series[str]
    fmt: Series[str]
    ocr: Series[bool]
    pii: Series[int] = pa.Field(ge=0)
    secrets: Series[int] = pa.Field(ge=0)
    personal: Series[bool]
    injection: Series[bool]
    latency_ms: Series[float] = pa.Field(ge=0)
    cpu_s: Series[float] = pa.Field(ge=0)


class ProtectedDoc(_Common):
    """After parse + protect: redacted text (``text`` is empty unless ``status == 'ok'``)."""

    sealed_by: Series[str] = pa.Field(
        description="audit record id of the chunk's seal by the step that made this row (tasks.documents.seals)"
    )

    text: Series[str]

    class Config:
        strict = True


class ClassifiedDoc(ProtectedDoc):
    """After classification: label, confidence and the route that produced them."""

    label: Series[str]
    confidence: Series[float] = pa.Field(ge=0, le=1)
    route: Series[str] = pa.Field(isin=("fast", "strong", "review", "none"))
    cached: Series[bool]


class DecidedDoc(_Common):
    """After extraction, decision and policy: typed fields only, text dropped."""

    label: Series[str]
    confidence: Series[float] = pa.Field(ge=0, le=1)
    route: Series[str] = pa.Field(isin=("fast", "strong", "review", "none"))
    cached: Series[bool]
    amount: Series[float] = pa.Field(nullable=True)
    currency: Series[str]
    parties: Series[str]
    dates: Series[str]
    action: Series[str]
    effect: Series[str] = pa.Field(isin=("allow", "require_approval", "deny", "none"))
    gate: Series[str]
    request_id: Series[str]
    policy_record: Series[str]
    decision_digest: Series[str]

    class Config:
        strict = True


class ActionRow(PackDataFrameModel):
    """One decision to post to the system of record (see ``aios_connectors.system_of_record.COLUMNS``)."""

    action_key: Series[str] = pa.Field(unique=True)
    doc_digest: Series[str]
    decision_digest: Series[str]
    action: Series[str]
    doc_type: Series[str]
    amount: Series[float] = pa.Field(nullable=True)
    currency: Series[str]
    request_id: Series[str]
    principal: Series[str]
    policy_record: Series[str] = pa.Field(description="audit record id of the policy decision the acting point checks")

    class Config:
        strict = True


class ResultRow(DecidedDoc):
    """Final row of a processed document: the decided fields plus the outcome."""

    outcome: Series[str]
    true_label: Series[str]


class QuarantineRow(PackDataFrameModel):
    """A document that could not be processed, with its reason code."""

    doc_id: Series[str] = pa.Field(unique=True)
    name: Series[str]
    digest: Series[str]
    reason: Series[str] = pa.Field(str_length={"min_value": 1})
    fmt: Series[str]

    class Config:
        strict = True


def _decks_enabled() -> bool:
    params = FlyteContextManager.current_context().user_space_params
    return bool(params is not None and params.enable_deck)


class ValidatingTransformer(pandera_compat.QuickStringsTransformer):
    """flytekitplugins-pandera's transformer, minus the report nobody sees.

    The plugin renders an HTML validation report (great_tables) for every table it validates and publishes it
    as a Deck, but a task without ``enable_deck=True`` drops that Deck unread: the rendering was about 30 % of
    the pipeline's non-model time. Here the report is rendered only when the running task publishes Decks: for
    a table that passed, the same content as plain HTML (:func:`.html_tables.passed_report_html`, added to the
    task's Decks, which flytekit writes when the task ends); for one that failed, the plugin's own error report
    (the plugin's path: it validates again, reports, then raises or warns as the annotation's ``on_error``
    says). The validation itself is unchanged (``lazy=True``, the annotation's ``on_error``, the plugin's memo
    that skips re-validating a table this process just wrote), only quicker on string columns
    (``quick_string_checks``: same checks, same failures).

    It converts the pack's schemas only (``DataFrame[S]`` with ``S`` a ``PackDataFrameModel``); the plugin's
    internals it uses are reached through ``flytekitplugins.aios.compat.pandera``.
    """

    def _validate(self, df: Any, python_type: Any) -> tuple[Any, str]:
        schema, config = pandera_compat.pandera_schema(self, python_type)
        try:
            return schema.validate(df, lazy=True), schema.name
        except (SchemaError, SchemaErrors) as exc:
            if config.on_error == "raise":
                raise
            if config.on_error != "warn":
                msg = f"Invalid on_error value: {config.on_error}"
                raise ValueError(msg) from exc
            logger.warning(str(exc))
            return df, schema.name

    def _passed(self, df: Any, python_type: Any) -> tuple[Any, str] | None:
        """``df`` validated and its name, its passed report added to the task's Decks; None when it failed."""
        schema, _ = pandera_compat.pandera_schema(self, python_type)
        try:
            val = schema.validate(df, lazy=True)
        except (SchemaError, SchemaErrors):
            return None
        Deck(f"Pandera Report: {schema.name}", passed_report_html(val, schema))
        return val, schema.name

    def _checked(self, df: Any, python_type: Any) -> tuple[Any, str] | None:
        """``df`` validated and its name (:meth:`_passed` when the running task publishes Decks, else
        :meth:`_validate`); None when it failed in a task that publishes Decks: the caller then takes the plugin's
        path (its error report, then its ``on_error``)."""
        if _decks_enabled():
            return self._passed(df, python_type)
        return self._validate(df, python_type)

    def to_literal(self, ctx: FlyteContext, python_val: Any, python_type: Any, expected: LiteralType) -> Literal:
        """Validate and write the table (its report in the task's Decks when it publishes them)."""
        import pandas

        if not isinstance(python_val, pandas.DataFrame):
            return super().to_literal(ctx, python_val, python_type, expected)
        checked = self._checked(python_val, python_type)
        if checked is None:  # the plugin's error report, then its on_error
            return super().to_literal(ctx, python_val, python_type, expected)
        val, name = checked
        lv = pandera_compat.structured_dataset_engine(self).to_literal(ctx, val, pandas.DataFrame, expected)
        pandera_compat.validation_memo(self).add((lv.scalar.structured_dataset.uri, name))
        return lv

    def to_python_value(self, ctx: FlyteContext, lv: Literal, expected_python_type: Any) -> Any:
        """Read and validate the table (skipped when this process wrote and validated it)."""
        import pandas

        if not (lv and lv.scalar and lv.scalar.structured_dataset):
            return super().to_python_value(ctx, lv, expected_python_type)
        df = pandera_compat.structured_dataset_engine(self).to_python_value(ctx, lv, pandas.DataFrame)
        schema, _ = pandera_compat.pandera_schema(self, expected_python_type)
        if (lv.scalar.structured_dataset.uri, schema.name) in pandera_compat.validation_memo(self):
            return df
        checked = self._checked(df, expected_python_type)
        if checked is None:  # the plugin's error report, then its on_error
            return super().to_python_value(ctx, lv, expected_python_type)
        return checked[0]


# Every module that declares a task on these tables imports this one, so the registration is in place before
# any conversion, locally and in a task's pod. Only DataFrame[S] of the pack's schemas is registered:
# flytekitplugins-pandera's transformer keeps every other pandera DataFrame.
pandera_compat.use_for_pack_schemas(ValidatingTransformer())
