"""What ``evaluate_model`` evaluates when launched without models: a weak and a strong head trained on VADER tweets.

The launch plan then runs as it is: it trains both heads on real text (offline), registers them, checks the
held-out rows for drift against the training rows, and evaluates strong (candidate) against weak (champion).
"""

from __future__ import annotations

from typing import NamedTuple

import pandas as pd
from flytekit import task
from flytekit.types.directory import FlyteDirectory

from tasks.acting import act_as
from tasks.images import GOVERNED

SOURCE, MODEL, OWNER = "tweets", "vader-sentiment", "team:ml-platform"


class EvaluationInputs(NamedTuple):
    candidate: FlyteDirectory
    champion: FlyteDirectory
    test: pd.DataFrame
    drift_record: str


def _drift_record(reference: pd.DataFrame, current: pd.DataFrame) -> str:
    from tasks.drift.check import check_quality, measure_drift

    dataset = f"vader-{SOURCE}"
    quality = check_quality.task_function(reference=reference, current=current, suite="vader_text", dataset=dataset)
    report = measure_drift.task_function(
        reference=reference, current=current, quality=quality, dataset=dataset, columns=["score"],
        text_column="text", model_dir="", psi_threshold=0.03, js_threshold=0.1, wasserstein_threshold=0.2,
        text_sample=200,
    )  # fmt: skip
    return report.audit_record_id


@task(**GOVERNED, enable_deck=True)
def evaluation_inputs(
    candidate: FlyteDirectory | None,
    champion: FlyteDirectory | None,
    test: pd.DataFrame | None,
    drift_record: str,
    principal: str,
) -> EvaluationInputs:
    """The models and rows to evaluate: the ones given, else a freshly trained VADER pair (see module doc).

    Args:
        candidate: challenger artifact, or None for the VADER default.
        champion: champion artifact, or None for the VADER default.
        test: held-out rows, or None for the VADER default.
        drift_record: audit record id of the candidate's drift check ("" with the default: checked here).
        principal: the service identity the evaluation acts as.
    """
    from tasks.evaluation.train import register_models, train_vader_models

    act_as(principal)
    given = [x is not None for x in (candidate, champion, test)]
    if all(given):
        return EvaluationInputs(candidate, champion, test, drift_record)  # type: ignore[arg-type]
    if any(given):
        msg = "give candidate, champion and test together, or none of them to evaluate the VADER default pair"
        raise ValueError(msg)
    s = train_vader_models.task_function(source=SOURCE, name=MODEL, n_weak=30, n_strong=500, n_test=400, seed=0)
    register_models.task_function(models=[s.weak, s.strong], owner=OWNER)
    return EvaluationInputs(s.strong, s.weak, s.test, drift_record or _drift_record(s.train, s.test))
