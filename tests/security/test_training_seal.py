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


def test_a_model_loaded_again_after_its_weights_changed_runs_the_new_weights(tmp_path: Path) -> None:
    """Re-review of 2026-12-06: the encoder of a fine-tuned artifact was cached by its folder, so a second load of
    the folder after its weights had changed reported the new bytes' digest and ran the old encoder (an evaluation
    measured one model under another's digest). The encoder is now cached by the bytes too."""
    import numpy as np
    from safetensors.torch import load_file, save_file

    from tasks.ml.classifier import TextClassifier, train_head
    from tasks.ml.minilm import base_model_dir

    folder = tmp_path / "candidate"
    train_head(["great film", "awful film", "loved it", "hated it"], ["positive", "negative"] * 2, name=NAME,
               version="1").save(folder)  # fmt: skip
    for f in base_model_dir().iterdir():  # a fine-tuned artifact: its encoder beside its head
        (shutil.copytree if f.is_dir() else shutil.copy)(f, folder / f.name)
    texts = ["the plot was thin but the acting was great", "a dull, lifeless mess"]
    first = TextClassifier.load(folder, bf16=False)
    before = first.predict_proba(texts)
    weights = load_file(str(folder / "model.safetensors"))
    save_file(
        {k: (v * 0.5 if v.ndim == 2 else v).contiguous() for k, v in weights.items()}, str(folder / "model.safetensors")
    )
    second = TextClassifier.load(folder, bf16=False)
    assert second.digest != first.digest and second.encoder is not first.encoder
    assert second.encoder.ref.digest != first.encoder.ref.digest
    assert not np.allclose(second.predict_proba(texts), before)
