"""Fault tolerance: a DDP worker killed mid-run (hard exit, like a lost process) makes torch elastic restart
the group, which resumes from the last checkpoint and ends where an uninterrupted run ends."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


@pytest.fixture
def start_dir(tmp_path: Path) -> Path:
    from tasks.evaluation.data import binarize, load_vader, split
    from tasks.ml.classifier import train_head

    (rows,) = split(binarize(load_vader("movieReviewSnippets")), (64,), 0)
    head = train_head(rows["text"].tolist(), rows["label"].tolist(), name="vader-sentiment", version="start")
    head.save(tmp_path / "start")
    return tmp_path / "start"


def _run(start_dir: Path, version: str):
    from flytekit.types.directory import FlyteDirectory

    from tasks.evaluation.data import binarize, load_vader, split
    from tasks.training.config import TrainConfig
    from tasks.training.elastic import TrainingSpec, training_task

    (rows,) = split(binarize(load_vader("movieReviewSnippets")), (64,), 0)
    cfg = TrainConfig(max_steps=6, batch_size=4, grad_accum=2, max_length=32, trainable_layers=1, checkpoint_every=2)
    t = training_task(TrainingSpec(nproc_per_node=2, max_restarts=1, gpu=False, accelerator=""))
    return t(train=rows[["text", "label"]], start_model=FlyteDirectory(str(start_dir)), config=cfg,
             name="vader-sentiment", version=version)  # fmt: skip


def test_killed_worker_resumes_from_checkpoint(start_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clean = _run(start_dir, "v1")
    monkeypatch.setenv("AIOS_TRAIN_FAULT", "rank=1,step=3")  # rank 1 os._exit(13) after step 3, first group only
    resumed = _run(start_dir, "v1")

    assert clean.restarts == 0 and clean.resumed_from_step == 0
    assert resumed.restarts == 1, "torch elastic restarted the worker group once"
    assert resumed.resumed_from_step == 2, "the last checkpoint before the kill was at step 2"
    assert resumed.steps == clean.steps == 6
    assert resumed.world_size == clean.world_size == 2
    assert resumed.samples == 4 * 16 and clean.samples == 6 * 16  # only steps 3..6 re-ran after the restart
    assert max(abs(a - b) for a, b in zip(resumed.losses, clean.losses, strict=True)) < 1e-3
    assert resumed.config_digest == clean.config_digest and resumed.data_digest == clean.data_digest
