"""Unit level: feedback file format, deterministic data stream, config validation, fine-tuned artifact format."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from flytekitplugins.aios_core.settings import get_settings
from tasks.ml.feedback import append_correction, feedback_path, read_corrections
from tasks.training.config import TrainConfig
from tasks.training.elastic import TrainingSpec
from tasks.training.loop import stream_indices


def test_feedback_validates_digest_label_and_keeps_newest(aios_env: Path) -> None:
    settings = get_settings()
    append_correction("great film", "positive", "user:alice", settings=settings)
    append_correction("great film", "negative", "user:bob", settings=settings)  # a correction of the correction
    append_correction("awful", "neutral", "user:alice", settings=settings)  # unknown label
    assert feedback_path(settings).stat().st_mode & 0o077 == 0  # review text: the pack's user only (0600)
    with open(feedback_path(get_settings()), "a", encoding="utf-8") as f:
        good = json.loads(feedback_path(get_settings()).read_text().splitlines()[0])
        f.write(json.dumps({**good, "text": "edited after review"}) + "\n")
        f.write("not json\n")
    batch = read_corrections(feedback_path(settings), labels=["negative", "positive"], settings=settings)
    assert [(c.text, c.label, c.reviewer) for c in batch.corrections] == [("great film", "negative", "user:bob")]
    assert sorted(batch.rejected) == [3, 4, 5]
    assert "text_digest does not match" in batch.rejected[4] and "label 'neutral'" in batch.rejected[3]
    assert batch.digest.startswith("sha256:")
    assert read_corrections(aios_env / "missing.jsonl", settings=settings).corrections == []


def test_stream_is_a_pure_function_of_position() -> None:
    whole = stream_indices(10, seed=3, start=0, count=25)
    assert np.array_equal(np.concatenate([stream_indices(10, 3, 0, 7), stream_indices(10, 3, 7, 18)]), whole)
    assert sorted(whole[:10]) == list(range(10)) and sorted(whole[10:20]) == list(range(10))  # epochs are permutations
    assert not np.array_equal(whole[:10], whole[10:20])


def test_config_and_spec_validation() -> None:
    with pytest.raises(ValueError, match="batch_size"):
        TrainConfig(batch_size=0)
    with pytest.raises(ValueError, match="precision"):
        TrainConfig(precision="fp8")
    assert TrainConfig().digest() == TrainConfig().digest() != TrainConfig(seed=1).digest()
    # each of these was accepted: a NaN rate (`lr <= 0` is false for NaN), an infinite one, a negative decay, more
    # tokens than the encoder has positions for, a layer count below -1 (trained everything), a seed numpy refuses
    bad = [
        ({"lr": float("nan")}, r"lr and head_lr > 0"),
        ({"head_lr": float("inf")}, r"TrainConfig.head_lr=inf must be a finite number"),
        ({"weight_decay": float("nan")}, r"TrainConfig.weight_decay=nan must be a finite number"),
        ({"weight_decay": -0.1}, r"TrainConfig.weight_decay=-0.1 must be >= 0"),
        ({"max_length": 513}, r"TrainConfig.max_length=513: the encoder reads at most 512 tokens"),
        ({"trainable_layers": -2}, r"TrainConfig.trainable_layers=-2: give -1 \(all\)"),
        ({"seed": -1}, r"TrainConfig.seed=-1: give a whole number from 0 to 4294967295"),
    ]
    for kwargs, want in bad:
        with pytest.raises(ValueError, match=want):
            TrainConfig(**kwargs)  # type: ignore[arg-type]
    assert TrainConfig(max_length=512, trainable_layers=-1, weight_decay=0.0, seed=2**32 - 1).max_length == 512
    with pytest.raises(ValueError, match="accelerator"):
        TrainingSpec(accelerator="tpu-v9")
    spec = TrainingSpec(nnodes=3, nproc_per_node=4, gpu=False, accelerator="")
    assert TrainingSpec.from_args(spec.to_args()) == spec


def test_workers_are_spawned_by_default() -> None:
    """A forked worker inherits every lock another thread of the launching process held at that instant (an
    import, an allocator, a client's pool) and can wait on it forever: seen as a DDP worker stuck in a futex wait
    while the suite ran under load. Spawned workers start clean, as kfpytorch's own default does."""
    from tasks.training.elastic import training_task

    t = training_task(TrainingSpec(gpu=False, accelerator=""))
    assert TrainingSpec().start_method == "spawn"
    assert t.task_config.start_method == "spawn"


def test_finetuned_artifact_loads_as_text_classifier(tmp_path: Path) -> None:
    import torch

    from tasks.ml.classifier import ModelCard, TextClassifier, artifact_digest
    from tasks.ml.finetune import build_classifier, freeze_lower_layers, save_finetuned

    w = np.random.default_rng(0).normal(size=(2, 384)).astype(np.float32)
    module, tok = build_classifier(w, np.zeros(2, np.float32), 2)
    assert freeze_lower_layers(module, 1) < freeze_lower_layers(module, -1)
    card = ModelCard(name="m", version="1", labels=["negative", "positive"])
    digest = save_finetuned(module, tok, card, tmp_path / "a")
    clf = TextClassifier.load(tmp_path / "a", bf16=False)
    assert clf.card.kind == "minilm-finetuned" and clf.digest == digest == artifact_digest(tmp_path / "a")
    texts = ["a wonderful surprise", "dull and far too long"]
    module.eval()
    with torch.no_grad():
        ref = torch.softmax(module(**tok(texts, padding=True, return_tensors="pt")), -1).numpy()
    assert np.allclose(clf.predict_proba(texts), ref, atol=1e-4)
    with pytest.raises(FileExistsError):
        save_finetuned(module, tok, card, tmp_path / "a")


def test_a_model_name_or_version_that_leaves_the_state_dir_is_refused_before_any_copy(tmp_path: Path) -> None:
    """register_candidate copied the model to state_dir/models/<name>/<version> before the catalog checked the
    name: ``../`` or an absolute name wrote outside the state dir, then failed with a raw pydantic error."""
    from flytekit.types.directory import FlyteDirectory

    from flytekitplugins.aios_core.settings import get_settings
    from tasks.training.promotion import _persist, authorize_retraining

    src = tmp_path / "artifact"
    src.mkdir()
    (src / "weights.bin").write_bytes(b"w")
    settings = get_settings()
    outside = tmp_path / "outside"
    for name, version in ((f"../../../{outside.name}", "v1"), (str(outside), "v1"), ("ok", "../../../x")):
        with pytest.raises(ValueError, match="is refused: use letters"):
            _persist(FlyteDirectory(str(src)), name, version, settings)
    assert not outside.exists() and not (tmp_path / "x").exists()
    assert not (settings.state_dir / "models").exists()
    with pytest.raises(Exception, match="is refused: use letters"):
        authorize_retraining(principal="service:retraining", name="../escape")
