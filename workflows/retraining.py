"""Retraining: fine-tune the MiniLM classifier with DDP (kfpytorch Elastic), evaluate, and promote under governance.

Public names (stable API): workflow :func:`retrain` (the monitoring chain starts it on drift, passing
``trigger_reason`` and ``drift_record``) and launch plan ``retrain_on_demand``. The chain::

    prepare_data (VADER + human-review corrections) -> start_model (catalog champion, else frozen baseline)
    -> train_distributed (dynamic: Elastic task with nnodes x nproc_per_node from the inputs, checkpoints)
    -> register_candidate (training lineage record + catalog candidate)
    -> check_drift (held-out vs training rows) -> evaluate_pair + decide_promotion (policy promote_model)
    -> approval gate "model-promotion" -> finish_promotion (promotes only with a verified approval)

The run acts as its ``principal`` input (default ``service:retraining``), and its first step asks policy
whether that principal could ever register and promote the model: when it could not, the run fails in
seconds with the reason, before any data is loaded or any step trained.

Run locally (2 CPU workers, gloo)::

    pyflyte run workflows/retraining.py retrain --n_train 512 \\
        --config '{"max_steps": 48, "batch_size": 8, "lr": 1e-4}'
"""

from __future__ import annotations

import pandas as pd
from flytekit import dynamic, task, workflow
from flytekit.types.directory import FlyteDirectory

from flytekitplugins.aios_approvals import approval_gate
from tasks.drift.report import DriftReport
from tasks.evaluation.tasks import decide_promotion, evaluate_pair
from tasks.images import GOVERNED
from tasks.training.config import TrainConfig, TrainResult
from tasks.training.data import prepare_data, start_model
from tasks.training.elastic import TrainingSpec, training_task
from tasks.training.promotion import (
    GATE,
    RetrainSummary,
    authorize_retraining,
    finish_promotion,
    promotion_requests,
    register_candidate,
)
from workflows.drift import check_drift
from workflows.launch_plans import described_launch_plan
from workflows.notifications import on_failure


@dynamic(**GOVERNED)
def train_distributed(
    train: pd.DataFrame,
    start: FlyteDirectory,
    config: TrainConfig,
    name: str,
    version: str,
    nnodes: int,
    nproc_per_node: int,
    max_restarts: int,
    gpu: bool,
    accelerator: str,
) -> TrainResult:
    """Run the Elastic fine-tuning task sized by the inputs (a plain pod for one node, a PyTorchJob for more).

    Args:
        train: training rows.
        start: start model artifact.
        config: hyper-parameters.
        name: catalog name of the produced model.
        version: its version.
        nnodes: nodes (pods).
        nproc_per_node: workers per node (GPUs per pod on a GPU node).
        max_restarts: worker-group restarts before the task fails.
        gpu: request GPUs (one per worker).
        accelerator: GPU type, e.g. ``nvidia-h100`` ("" = any).
    """
    spec = TrainingSpec(
        nnodes=nnodes, nproc_per_node=nproc_per_node, max_restarts=max_restarts, gpu=gpu, accelerator=accelerator
    )
    return training_task(spec)(train=train, start_model=start, config=config, name=name, version=version)


@task(**GOVERNED)
def drift_record_of(report: DriftReport) -> str:
    """The audit record id of a drift check (the evaluation reads drift_passed from it).

    Args:
        report: the drift report.
    """
    return report.audit_record_id


@task(**GOVERNED)
def dataset_label(source: str) -> str:
    """The dataset label of a VADER source in reports and audit records (``vader-<source>``).

    Args:
        source: VADER source.
    """
    return f"vader-{source}"


@workflow
def retrain(
    trigger_reason: str = "on demand",
    drift_record: str = "",
    source: str = "movieReviewSnippets",
    n_train: int = 2000,
    n_test: int = 600,
    seed: int = 0,
    use_feedback: bool = True,
    min_abs_score: float = 0.5,
    model_name: str = "vader-sentiment",
    owner: str = "team:ml-platform",
    config: TrainConfig = TrainConfig(),
    nnodes: int = 1,
    nproc_per_node: int = 2,
    max_restarts: int = 1,
    gpu: bool = True,
    accelerator: str = "nvidia-h100",
    principal: str = "service:retraining",
) -> RetrainSummary:
    """Fine-tune on real labelled text + review corrections; promote only under policy and an authorized approval.

    Args:
        trigger_reason: why it runs (the monitoring chain passes the drift reason).
        drift_record: audit record id of the drift decision that triggered it ("" on demand).
        source: VADER source of the labelled text.
        n_train: VADER training rows (corrections are added).
        n_test: held-out rows for the evaluation.
        seed: sampling seed.
        use_feedback: add human-review corrections from the state dir.
        min_abs_score: drop snippets rated closer to neutral than this (ambiguous labels).
        model_name: catalog name of the model.
        owner: owner recorded in the catalog.
        config: fine-tuning hyper-parameters.
        nnodes: nodes for training (> 1: PyTorchJob).
        nproc_per_node: DDP workers per node.
        max_restarts: torch elastic worker-group restarts (each resumes from the last checkpoint).
        gpu: request one GPU per worker on the cluster.
        accelerator: GPU type (nvidia-h100, nvidia-tesla-a100, ...; "" = any).
        principal: service identity the run acts as; checked against policy before any training.
    """
    allowed = authorize_retraining(principal=principal, name=model_name)
    data = prepare_data(
        source=source, n_train=n_train, n_test=n_test, seed=seed, use_feedback=use_feedback, min_abs_score=min_abs_score
    )
    allowed >> data.train  # nothing loads or trains before the policy check passed
    label = dataset_label(source=source)
    start = start_model(train=data.train, name=model_name, seed=seed)
    result = train_distributed(
        train=data.train, start=start, config=config, name=model_name, version=data.lineage.version,
        nnodes=nnodes, nproc_per_node=nproc_per_node, max_restarts=max_restarts, gpu=gpu, accelerator=accelerator,
    )  # fmt: skip
    registered = register_candidate(
        result=result, lineage=data.lineage, config=config, name=model_name, owner=owner,
        trigger=trigger_reason, drift_record=drift_record,
    )  # fmt: skip
    drift = check_drift(
        reference=data.reference, current=data.test, dataset=label, suite="vader_text",
        columns=["score"], text_column="text", model_dir="", text_sample=200,
    )  # fmt: skip
    evaluated = evaluate_pair(
        candidate=registered.candidate, champion=start, test=data.test, dataset=label,
        drift_record=drift_record_of(report=drift), alpha=0.05, latency_sample=32, cpu_price_per_hour=0.048,
    )  # fmt: skip
    report = decide_promotion(report=evaluated)
    outcomes = approval_gate(GATE, promotion_requests(report=report))
    return finish_promotion(report=report, outcomes=outcomes, result=result, training_record=registered.training_record)


retrain_on_demand = described_launch_plan(
    retrain,
    "retrain_on_demand",
    default_inputs={"source": "movieReviewSnippets", "n_train": 2000, "nnodes": 1, "nproc_per_node": 2},
    notifications=on_failure(),
)
