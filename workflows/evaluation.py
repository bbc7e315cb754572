"""Champion/challenger evaluation on held-out labelled data, and the governed promotion it leads to.

Public workflow: :func:`evaluate_model`. The decision is the policy's (``promote_model``): a worse
challenger is kept out; a better one is promoted, after a ``model-promotion`` approval where the policy
asks for one (then :func:`promote_after_approval` completes it). Reproduce on real VADER text::

    python -m workflows.evaluation           # trains, registers, evaluates; prints the figures as JSON
    pyflyte run workflows/evaluation.py evaluate_model   # the same from the launch plan's defaults
    pyflyte run workflows/evaluation.py evaluate_model --candidate DIR --champion DIR --test FILE.parquet

Without ``candidate``/``champion``/``test`` the workflow trains a weak and a strong head on VADER tweets
and evaluates strong against weak (``tasks.evaluation.defaults``). It acts as its ``principal`` input
(default ``service:retraining``, the catalog writer), not as the user who launched it.
"""

from __future__ import annotations

import pandas as pd
from flytekit import Deck, task, workflow
from flytekit.types.directory import FlyteDirectory

from tasks.evaluation.defaults import evaluation_inputs
from tasks.evaluation.report import EvaluationReport
from tasks.evaluation.tasks import decide_promotion, evaluate_pair, promote_approved
from tasks.evaluation.train import VaderSplits, register_models, train_vader_models
from tasks.images import GOVERNED


@task(**GOVERNED, enable_deck=True)
def publish_decision(report: EvaluationReport) -> EvaluationReport:
    """Deck "decision": the policy's final decision with the figures (the evaluation Deck precedes the decision).

    Args:
        report: the evaluation after decide_promotion.
    """
    from tasks.evaluation.plots import confusion_matrices, summary_table

    Deck("decision", summary_table(report) + confusion_matrices(report))
    return report


@workflow
def evaluate_model(
    candidate: FlyteDirectory | None = None,
    champion: FlyteDirectory | None = None,
    test: pd.DataFrame | None = None,
    dataset: str = "vader",
    drift_record: str = "",
    alpha: float = 0.05,
    latency_sample: int = 64,
    cpu_price_per_hour: float = 0.048,
    principal: str = "service:retraining",
) -> EvaluationReport:
    """Evaluate a candidate against the champion on the same held-out rows; policy decides promote / keep.

    Args:
        candidate: artifact folder of the challenger (registered in the catalog as a candidate); empty: a
            strong head trained on VADER tweets.
        champion: artifact folder of the current champion (or a baseline when the name has none); empty: a
            weak head trained on VADER tweets.
        test: held-out labelled rows with columns ``text`` and ``label``; empty: 400 held-out VADER tweets.
        dataset: dataset label for the report and the audit record.
        drift_record: audit record id of the candidate's drift check; only "no_drift" passes (empty fails;
            with the VADER default the check runs first).
        alpha: significance level of the exact McNemar test.
        latency_sample: documents timed per model for latency percentiles and cost.
        cpu_price_per_hour: USD per vCPU-hour used by the cost model.
        principal: service identity the evaluation and promotion act as (policy decides what it may do).
    """
    given = evaluation_inputs(
        candidate=candidate, champion=champion, test=test, drift_record=drift_record, principal=principal
    )
    report = evaluate_pair(
        candidate=given.candidate,
        champion=given.champion,
        test=given.test,
        dataset=dataset,
        drift_record=given.drift_record,
        alpha=alpha,
        latency_sample=latency_sample,
        cpu_price_per_hour=cpu_price_per_hour,
    )
    return publish_decision(report=decide_promotion(report=report))


@workflow
def promote_after_approval(evaluation_record: str, approval_request_id: str) -> str:
    """Complete a promotion the policy sent for approval; fails closed unless the request is approved.

    Args:
        evaluation_record: audit record id of the evaluation (its figures are the evidence).
        approval_request_id: the ``model-promotion`` request, approved with ``aios approvals approve``.
    """
    return promote_approved(evaluation_record=evaluation_record, approval_request_id=approval_request_id)


@workflow
def vader_models(
    source: str = "tweets",
    name: str = "vader-sentiment",
    n_weak: int = 30,
    n_strong: int = 500,
    n_test: int = 400,
    seed: int = 0,
    owner: str = "team:ml-platform",
) -> VaderSplits:
    """Train and register two real candidates on VADER text (weak: few examples; strong: many).

    Args:
        source: VADER source.
        name: catalog name.
        n_weak: training examples of the weak model.
        n_strong: training examples of the strong model.
        n_test: held-out rows.
        seed: split seed.
        owner: owner recorded in the catalog.
    """
    out = train_vader_models(source=source, name=name, n_weak=n_weak, n_strong=n_strong, n_test=n_test, seed=seed)
    register_models(models=[out.weak, out.strong], owner=owner)
    return out


if __name__ == "__main__":
    from tasks.evaluation.demo import main

    main()
