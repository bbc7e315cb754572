"""What one rank of the fine-tuning task does: build the model, run the loop, save the artifact (rank 0)."""

from __future__ import annotations

import html
import logging
import os
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
from flytekit.types.directory import FlyteDirectory

from tasks.ml import rows_digest, seal_trained
from tasks.ml.classifier import ModelCard, artifact_digest, check_unchanged, load_head
from tasks.ml.finetune import build_classifier, freeze_lower_layers, save_finetuned
from tasks.ml.minilm import base_model_dir, model_digest
from tasks.training.checkpoint import CheckpointStore
from tasks.training.config import TrainConfig, TrainResult
from tasks.training.loop import LoopOutput, _Run, dist_env, setup_device, train_loop, use_bf16

log = logging.getLogger(__name__)


def training_rows(train: pd.DataFrame, labels: list[str]) -> tuple[list[str], np.ndarray, str]:
    """Texts, label indices and the content digest of the training rows (columns ``text``, ``label``)."""
    missing = {"text", "label"} - set(train.columns)
    if missing:
        msg = f"training data lacks columns {sorted(missing)}; expected 'text' and 'label'"
        raise ValueError(msg)
    unknown = sorted(set(train["label"]) - set(labels))
    if unknown:
        msg = f"training labels {unknown} are not labels of the start model {labels}"
        raise ValueError(msg)
    texts = train["text"].astype(str).tolist()
    y = np.array([labels.index(v) for v in train["label"]], dtype=np.int64)
    return texts, y, rows_digest(texts, train["label"].tolist())


def _build_run(
    train: pd.DataFrame, start_dir: Path, cfg: TrainConfig, dist_timeout_s: float
) -> tuple[_Run, list[str], str, int]:
    rank, world, local_rank = dist_env()
    device = setup_device(local_rank, world, dist_timeout_s)
    import torch

    torch.manual_seed(cfg.seed)
    weight, bias, labels = load_head(start_dir)
    texts, y, data_digest = training_rows(train, labels)
    encoder_dir = start_dir if (start_dir / "model.safetensors").is_file() else None
    module, tokenizer = build_classifier(weight, bias, len(labels), encoder_dir)
    trainable = freeze_lower_layers(module, cfg.trainable_layers)
    module.to(device)
    model = module
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        model = DistributedDataParallel(module, device_ids=[local_rank] if device.type == "cuda" else None)
    run = _Run(model, module, tokenizer, texts, y, cfg, device, use_bf16(cfg, device), rank, world)
    return run, labels, data_digest, trainable


def _card(name: str, version: str, labels: list[str], start_dir: Path, cfg: TrainConfig, out: LoopOutput) -> ModelCard:
    start = ModelCard.model_validate_json((start_dir / "aios_model.json").read_text(encoding="utf-8"))
    return ModelCard(
        name=name,
        version=version,
        labels=labels,
        base_model_digest=model_digest(str(base_model_dir())),
        training_data_digests=[],
        metrics={"final_train_loss": out.losses[-1] if out.losses else float("nan")},
        params={**asdict(cfg), "start_model": f"{start.name}@{start.version}", "world_size": dist_env()[1]},
    )


def fine_tune_rank(
    train: pd.DataFrame, start_model: FlyteDirectory, config: TrainConfig, name: str, version: str
) -> TrainResult:
    """Body of the Elastic task on every rank; rank 0 writes the artifact and returns the result.

    Args:
        train: training rows (``text``, ``label``).
        start_model: artifact to start from.
        config: hyper-parameters.
        name: catalog name of the produced model.
        version: its version.
    """
    import flytekit
    import torch.distributed as dist

    from flytekitplugins.aios_core.settings import get_settings

    settings = get_settings()  # every rank's entry point: settings resolved once, passed down
    work = Path(flytekit.current_context().working_directory)
    # the start model is copied and digested before a byte of it is loaded, and trained from that copy: its digest,
    # taken after training, once sealed whatever the start folder held by then (a folder swapped while it trained
    # had the seal name an honest start model for weights loaded from another)
    start_dir = Path(tempfile.mkdtemp(prefix="start-", dir=work))
    shutil.copytree(Path(start_model.download()), start_dir, dirs_exist_ok=True)
    start_digest = artifact_digest(start_dir)
    run, labels, data_digest, trainable = _build_run(train, start_dir, config, settings.dist_timeout_s)
    check_unchanged(start_dir, start_digest)
    ident = {"config_digest": config.digest(), "data_digest": data_digest}
    out = train_loop(run, CheckpointStore.from_flyte_context(), ident)
    out.trainable_params = trainable
    # A fresh folder per attempt: a retried task or a second run in the same sandbox never collides with an
    # earlier artifact. Only rank 0 writes (and only its return value is used).
    folder = work / f"model-{name}-{version}-rank{run.rank}"
    digest = ""
    if run.rank == 0:
        folder = Path(tempfile.mkdtemp(prefix=f"model-{name}-{version}-", dir=work))
        card = _card(name, version, labels, start_dir, config, out)
        card = card.model_copy(update={"training_data_digests": [data_digest]})
        digest = save_finetuned(run.module, run.tokenizer, card, folder)
        # sealed here, by the step that trained it: this artifact, the rows it was trained on, what it started from
        seal_trained(f"{name}@{version}", digest, data_digest, start_digest, settings)
        _audit(card, digest, start_dir, start_digest, ident, out)
        _deck(out, config)
    if run.world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return TrainResult(
        model=FlyteDirectory(str(folder)), digest=digest, losses=out.losses, steps=len(out.losses),
        resumed_from_step=out.resumed_from_step, restarts=int(os.environ.get("TORCHELASTIC_RESTART_COUNT", 0)),
        world_size=run.world, samples=out.samples, tokens=out.tokens, seconds=round(out.seconds, 3),
        precision=out.precision, device=out.device, config_digest=ident["config_digest"], data_digest=data_digest,
        trainable_params=trainable,
    )  # fmt: skip


def _audit(
    card: ModelCard, digest: str, start_dir: Path, start_digest: str, ident: dict[str, str], out: LoopOutput
) -> None:
    from flytekitplugins.aios_audit import ModelRef, current_audit

    scope = current_audit()
    if scope is None:
        return
    start = ModelCard.model_validate_json((start_dir / "aios_model.json").read_text(encoding="utf-8"))
    scope.add_model(ModelRef(name=start.name, version=start.version, digest=start_digest))
    scope.add_model(ModelRef(name=card.name, version=card.version, digest=digest))
    scope.add_output("model", digest)
    scope.set_subject(f"{card.name}@{card.version}")
    figures = {"steps": len(out.losses), "resumed_from_step": out.resumed_from_step, "samples": out.samples,
               "tokens": out.tokens, "seconds": round(out.seconds, 3), "precision": out.precision,
               "final_loss": out.losses[-1] if out.losses else None}  # fmt: skip
    scope.set_attribute("training", {**ident, **figures, "config": card.params})


def _deck(out: LoopOutput, cfg: TrainConfig) -> None:
    from flytekit import Deck

    from tasks.training.report import loss_curve_html

    Deck("training", loss_curve_html(out.losses, out.resumed_from_step) + f"<pre>{html.escape(str(asdict(cfg)))}</pre>")
