"""The training seal names the start model whose bytes were trained (review of 2026-12-06, R1).

The pack's training step seals what it trained (``kind="trained"``: the artifact, the rows, the start model), and an
evaluation counts a candidate's drift check only from no start model or from the champion it is compared with. The
start model's digest was taken after training, of the start folder as it was by then: a local shell that swapped the
folder while the task trained (a head fitted on the held-out rows loaded, a weak honest head in its place afterwards)
had the seal name the weak head, and the candidate was registered, evaluated as ``drift_passed`` against the weak
head and sent to sign-off. The start model is now copied and digested before a byte of it is loaded, trained from the
copy, and that digest is sealed. Real pack training task (torch elastic, one forked worker), real models.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

NAME = "vader-sentiment"


def _head(rows: Any, folder: Path) -> Path:
    from tasks.ml.classifier import train_head

    train_head(rows["text"].tolist(), rows["label"].tolist(), name=NAME, version="start").save(folder)
    return folder


def test_the_training_seal_names_the_start_model_that_was_trained(
    aios_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flytekit.types.directory import FlyteDirectory

    from flytekitplugins.aios_audit import audit_log
    from flytekitplugins.aios_core.settings import get_settings
    from tasks.evaluation.data import binarize, load_vader, split
    from tasks.ml.classifier import artifact_digest
    from tasks.training import worker
    from tasks.training.config import TrainConfig
    from tasks.training.elastic import TrainingSpec, training_task

    train, held_out = split(binarize(load_vader("movieReviewSnippets")), (48, 48), 0)
    loaded = _head(held_out, tmp_path / "start")  # fitted on the held-out rows: no seal may vouch for it
    weak = _head(train.head(6), tmp_path / "weak")
    loaded_digest, weak_digest = artifact_digest(loaded), artifact_digest(weak)
    real_loop = worker.train_loop

    def swapped_while_training(*args: Any, **kwargs: Any) -> Any:
        for f in weak.iterdir():  # the local shell: the start folder now holds the weak head's bytes
            shutil.copyfile(f, loaded / f.name)
        return real_loop(*args, **kwargs)

    monkeypatch.setattr(worker, "train_loop", swapped_while_training)  # the forked worker inherits it
    cfg = TrainConfig(max_steps=2, batch_size=4, max_length=32, trainable_layers=1, checkpoint_every=0)
    task = training_task(TrainingSpec(nproc_per_node=1, max_restarts=0, gpu=False, accelerator="", start_method="fork"))
    result = task(
        train=train[["text", "label"]], start_model=FlyteDirectory(str(loaded)), config=cfg, name=NAME, version="v1"
    )
    assert artifact_digest(loaded) == weak_digest  # the swap happened while the task trained
    (seal,) = [r for r in audit_log(get_settings()).scan() if r.event.kind == "trained"]
    assert seal.event.outputs["model"] == result.digest
    assert seal.event.inputs["start"] == loaded_digest != weak_digest
