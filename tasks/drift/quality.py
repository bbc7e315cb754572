"""Data quality with Great Expectations, against suites kept in ``config/expectations/<suite>.json``.

A failed expectation fails the drift check loudly: :func:`require_quality` raises
:class:`DataQualityError` naming every failing expectation, its column and what was observed. A suite
file that is missing or invalid is an error too (never a silent pass).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pandas as pd

from flytekitplugins.aios_core.errors import AiosError
from flytekitplugins.aios_core.settings import Settings
from tasks.drift.report import ExpectationResult, QualityReport

# Great Expectations sends usage analytics by default; this pack never talks to the network at run time.
os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")


class DataQualityError(AiosError):
    """A batch failed its expectation suite; the message names every failing expectation."""

    def __init__(self, reports: list[QualityReport]) -> None:
        lines = [f"{r.batch} batch failed suite '{r.suite}': " + "; ".join(r.failed) for r in reports if not r.success]
        super().__init__("data quality check failed: " + " | ".join(lines))
        self.reports = reports


SUITE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
"""A suite is named, never given as a path: ``config/expectations/<name>.json`` of the deployment's config."""


def suite_path(suite: str, settings: Settings) -> Path:
    """``config/expectations/<suite>.json`` of ``settings.config_dir``, for a suite NAME only.

    The suite is a launch input: a path there (``/abs/path/nothing`` or ``../..``) once loaded a file the launcher
    had planted (``{"expectations": []}``), which "passed" any batch, and the seal said the check was validated.

    Raises:
        ValueError: ``suite`` is not a plain name (letters, digits, ``_`` and ``-``).
    """
    if not SUITE_NAME.fullmatch(suite):
        folder = settings.config_dir / "expectations"
        known = sorted(p.stem for p in folder.glob("*.json"))
        msg = f"expectation suite {suite[:80]!r} is not a suite name; name one of {known} (config/expectations/)"
        raise ValueError(msg)
    return settings.config_dir / "expectations" / f"{suite}.json"


def load_suite(suite: str, settings: Settings) -> Any:
    """The suite as a ``great_expectations.ExpectationSuite``; raises FileNotFoundError/ValueError clearly (an
    unknown name, a path instead of a name, an invalid file, or a suite without a single expectation)."""
    import great_expectations as gx

    path = suite_path(suite, settings)
    if not path.is_file():
        known = sorted(p.stem for p in path.parent.glob("*.json"))
        msg = f"expectation suite {suite!r} not found at {path}; known suites: {known}"
        raise FileNotFoundError(msg)
    data = json.loads(path.read_text(encoding="utf-8"))
    try:
        loaded = gx.ExpectationSuite(name=data.get("name", suite), expectations=data["expectations"])
    except Exception as e:
        msg = f"expectation suite {path} is invalid: {e}"
        raise ValueError(msg) from e
    if not loaded.expectations:  # validates nothing, so it would pass anything
        raise ValueError(f"expectation suite {path} holds no expectation; a quality check needs at least one")
    return loaded


def _exception_message(info: Any) -> str:
    """GE nests exception info per metric; find the first message (e.g. a missing column)."""
    if isinstance(info, dict):
        if info.get("exception_message"):
            return str(info["exception_message"]).splitlines()[0]
        for v in info.values():
            found = _exception_message(v)
            if found:
                return found
    return ""


def _describe(result: Any) -> str:
    cfg = result.expectation_config
    col = cfg.kwargs.get("column", "")
    r = result.result or {}
    if "unexpected_count" in r:
        observed = f"{r['unexpected_count']} unexpected ({r.get('unexpected_percent', 0):.2f}%)"
        sample = r.get("partial_unexpected_list") or []
        observed += f", e.g. {sample[:3]}" if sample else ""
    elif "observed_value" in r:
        observed = f"observed {r['observed_value']}"
    else:
        observed = _exception_message(result.exception_info) or "failed"
    return f"{cfg.type}({col}): {observed}" if col else f"{cfg.type}: {observed}"


def expectation_result(result: Any) -> ExpectationResult:
    """What one GE expectation result says, for the quality Deck (which ran, which failed, on how many rows)."""
    cfg, r = result.expectation_config, result.result or {}
    unexpected = r.get("unexpected_count")
    observed = _describe(result).split(": ", 1)[-1] if not result.success else str(r.get("observed_value", ""))
    return ExpectationResult(
        expectation=cfg.type, column=str(cfg.kwargs.get("column", "")), success=bool(result.success),
        unexpected=None if unexpected is None else int(unexpected), observed=observed,
    )  # fmt: skip


def validate(df: pd.DataFrame, suite: str, batch: str, settings: Settings) -> QualityReport:
    """Validate ``df`` against ``suite``.

    Args:
        df: the batch.
        suite: suite name (file stem under config/expectations/).
        batch: label for messages, e.g. ``reference`` or ``current``.
        settings: the caller's settings (the suite is read from their config dir).
    """
    import great_expectations as gx

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = {"globally": False}
    asset = context.data_sources.add_pandas("aios").add_dataframe_asset(batch)
    gx_batch = asset.add_batch_definition_whole_dataframe(batch).get_batch(batch_parameters={"dataframe": df})
    result = gx_batch.validate(load_suite(suite, settings))
    failed = [_describe(r) for r in result.results if not r.success]
    return QualityReport(
        suite=suite, batch=batch, success=bool(result.success), evaluated=len(result.results), failed=failed,
        rows=len(df), expectations=[expectation_result(r) for r in result.results],
    )  # fmt: skip


def require_quality(reports: list[QualityReport]) -> None:
    """Raise :class:`DataQualityError` when any report failed."""
    if any(not r.success for r in reports):
        raise DataQualityError(reports)
