"""Scheduled monitoring: drift checks on a schedule; drift past the threshold starts retraining.

Launch plans (stable names, public API): ``drift_check_hourly`` (flights, cron ``0 * * * *``) and
``text_drift_check_daily`` (VADER text, cron ``0 6 * * *``). The chain: load batches -> check_drift
(quality + effect sizes) -> decide_retraining (thresholds + policy run_task, audited) -> conditional
``retrain_on_drift``: start_retraining (dynamic node launching ``retrain_target``) or skip_retraining.
The run acts as its ``principal`` input (default ``service:monitoring``) and returns one line saying
what happened: ``retraining not started: <why>`` or ``retraining ran: ... PROMOTED/KEPT/REJECTED (<why>)``.
"""

from __future__ import annotations

import pandas as pd
from flytekit import CronSchedule, conditional, task, workflow

from tasks.drift.monitor import (
    DEFAULT_TARGET,
    acting_principal,
    decide_retraining,
    skip_retraining,
    start_retraining,
)
from tasks.images import GOVERNED
from workflows.drift import check_drift, load_flight_batches
from workflows.launch_plans import described_launch_plan
from workflows.notifications import on_failure


@task(**GOVERNED)
def load_text_batches(
    reference_source: str, current_source: str, n: int, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Reference and current samples of VADER snippets (disjoint when the sources are the same).

    Args:
        reference_source: VADER source of the reference batch.
        current_source: VADER source of the current batch.
        n: rows per batch.
        seed: sampling seed.
    """
    from flytekitplugins.aios_core.settings import get_settings
    from tasks.evaluation.data import load_vader, split
    from tasks.seeds import SEED_MAX, check_seed

    check_seed(seed)  # checked as given (the current batch of another source is drawn with the next seed)
    data_dir = get_settings().data_dir  # this task's entry point
    if reference_source == current_source:
        ref, cur = split(load_vader(reference_source, data_dir), (n, n), seed)
        return ref, cur
    ref_rows, cur_rows = load_vader(reference_source, data_dir), load_vader(current_source, data_dir)
    return split(ref_rows, (n,), seed)[0], split(cur_rows, (n,), (seed + 1) % (SEED_MAX + 1))[0]


@workflow
def monitor_flights(
    reference_months: list[int] = [1, 2, 3, 4],  # noqa: B006
    current_months: list[int] = [9, 10, 11, 12],  # noqa: B006
    n: int = 50000,
    seed: int = 0,
    psi_threshold: float = 0.03,
    js_threshold: float = 0.1,
    wasserstein_threshold: float = 0.2,
    retrain_target: str = DEFAULT_TARGET,
    principal: str = "service:monitoring",
) -> str:
    """Drift check on flights; starts ``retrain_target`` when drift crosses the thresholds and policy allows.

    Args:
        reference_months: months of the reference batch.
        current_months: months of the current batch.
        n: rows per batch (0 = all).
        seed: sampling seed.
        psi_threshold: PSI materiality threshold (rule: docs/drift.md).
        js_threshold: Jensen-Shannon materiality threshold.
        wasserstein_threshold: normalized Wasserstein materiality threshold.
        retrain_target: workflow to launch on drift (``module.workflow``).
        principal: service identity the check acts as (policy run_task decides whether it may start retraining).
    """
    acting = acting_principal(principal=principal)
    ref, cur = load_flight_batches(reference_months=reference_months, current_months=current_months, n=n, seed=seed)
    acting >> ref
    report = check_drift(
        reference=ref,
        current=cur,
        dataset="flights",
        suite="flights",
        psi_threshold=psi_threshold,
        js_threshold=js_threshold,
        wasserstein_threshold=wasserstein_threshold,
    )
    d = decide_retraining(report=report, target=retrain_target)
    return (
        conditional("retrain_on_drift")
        .if_(d.trigger.is_true())
        .then(start_retraining(target=retrain_target, reason=d.reason, drift_record=d.record_id))
        .else_()
        .then(skip_retraining(reason=d.reason))
    )


@workflow
def monitor_text(
    reference_source: str = "tweets",
    current_source: str = "movieReviewSnippets",
    n: int = 300,
    seed: int = 0,
    model_dir: str = "",
    retrain_target: str = DEFAULT_TARGET,
    principal: str = "service:monitoring",
) -> str:
    """Text drift check (MiniLM embeddings, score distribution, predictions); starts retraining on drift.

    Args:
        reference_source: VADER source the model was trained on.
        current_source: VADER source of the current batch.
        n: texts per batch.
        seed: sampling seed.
        model_dir: classifier artifact for prediction/confidence drift (empty: none).
        retrain_target: workflow to launch on drift (``module.workflow``).
        principal: service identity the check acts as (policy run_task decides whether it may start retraining).
    """
    acting = acting_principal(principal=principal)
    ref, cur = load_text_batches(reference_source=reference_source, current_source=current_source, n=n, seed=seed)
    acting >> ref
    report = check_drift(
        reference=ref,
        current=cur,
        dataset="vader-text",
        suite="vader_text",
        columns=["score"],
        text_column="text",
        model_dir=model_dir,
        text_sample=n,
    )
    d = decide_retraining(report=report, target=retrain_target)
    return (
        conditional("retrain_on_text_drift")
        .if_(d.trigger.is_true())
        .then(start_retraining(target=retrain_target, reason=d.reason, drift_record=d.record_id))
        .else_()
        .then(skip_retraining(reason=d.reason))
    )


drift_check_hourly = described_launch_plan(
    monitor_flights,
    "drift_check_hourly",
    schedule=CronSchedule(schedule="0 * * * *"),
    default_inputs={"n": 50000},
    notifications=on_failure(),
)

text_drift_check_daily = described_launch_plan(
    monitor_text,
    "text_drift_check_daily",
    schedule=CronSchedule(schedule="0 6 * * *"),
    default_inputs={"n": 300},
    notifications=on_failure(),
)
