"""Typed training configuration and result of the retraining workflow (shown in the Flyte console).

Batching: ``batch_size`` is per worker and micro-step; one optimizer step consumes
``batch_size * grad_accum * world_size`` examples (the global batch). The data order is a pure function
of ``(seed, step)``, so a run resumed from a checkpoint sees exactly the batches it would have seen.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Literal

from flytekit.types.directory import FlyteDirectory

from flytekitplugins.aios_core.digest import digest_value
from tasks.described import describe_fields

Precision = Literal["auto", "bf16", "fp32"]
MAX_POSITIONS = 512
"""Tokens the MiniLM encoder has position embeddings for (``max_position_embeddings``): a longer ``max_length`` let a
long text index past them, an error deep inside a training worker."""


@describe_fields
@dataclass
class TrainConfig:
    """Hyper-parameters of one fine-tuning run.

    Args:
        max_steps: optimizer steps to run (the run's length; resumes continue up to it).
        batch_size: examples per worker per micro-step.
        grad_accum: micro-steps accumulated per optimizer step.
        lr: learning rate of the encoder.
        head_lr: learning rate of the classification head.
        weight_decay: AdamW weight decay.
        warmup_steps: linear warm-up steps, then linear decay to zero at max_steps.
        max_length: tokens per text (truncation).
        trainable_layers: top encoder layers to fine-tune (-1: all, embeddings included).
        precision: ``auto`` (bf16 autocast where the hardware runs it faster than fp32), ``bf16`` or ``fp32``.
        seed: seed of initialization, data order and dropout.
        checkpoint_every: save a checkpoint every this many optimizer steps (0: never).
    """

    max_steps: int = 60
    batch_size: int = 16
    grad_accum: int = 1
    lr: float = 5e-5
    head_lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_steps: int = 4
    max_length: int = 64
    trainable_layers: int = -1
    precision: str = "auto"
    seed: int = 0
    checkpoint_every: int = 10

    def __post_init__(self) -> None:
        for name in ("max_steps", "batch_size", "grad_accum", "max_length"):
            if getattr(self, name) < 1:
                msg = f"TrainConfig.{name}={getattr(self, name)} must be >= 1"
                raise ValueError(msg)
        if self.precision not in ("auto", "bf16", "fp32"):
            msg = f"TrainConfig.precision={self.precision!r}: use 'auto', 'bf16' or 'fp32'"
            raise ValueError(msg)
        if self.checkpoint_every < 0 or self.warmup_steps < 0 or not self.lr > 0 or not self.head_lr > 0:
            msg = "TrainConfig: checkpoint_every and warmup_steps must be >= 0, lr and head_lr > 0"
            raise ValueError(msg)
        # `not x > 0` refuses NaN too (it compares false with everything: `lr <= 0` let NaN through); infinity here
        for name in ("lr", "head_lr", "weight_decay"):
            if not math.isfinite(getattr(self, name)):
                raise ValueError(f"TrainConfig.{name}={getattr(self, name)} must be a finite number")
        if self.weight_decay < 0:
            raise ValueError(f"TrainConfig.weight_decay={self.weight_decay} must be >= 0")
        if self.max_length > MAX_POSITIONS:
            msg = f"TrainConfig.max_length={self.max_length}: the encoder reads at most {MAX_POSITIONS} tokens a text"
            raise ValueError(msg)
        if self.trainable_layers < -1:
            msg = f"TrainConfig.trainable_layers={self.trainable_layers}: give -1 (all) or the top layers to train"
            raise ValueError(msg)
        from tasks.seeds import check_seed

        check_seed(self.seed, "TrainConfig.seed")

    def digest(self) -> str:
        """Content digest of the configuration (lineage; a checkpoint only resumes the same config)."""
        return digest_value(asdict(self))


@dataclass
class TrainResult:
    """What rank 0 of a fine-tuning run returns.

    Args:
        model: the ``minilm-finetuned`` artifact folder.
        digest: its artifact digest.
        losses: mean training loss per optimizer step (averaged over workers), steps 1..max_steps.
        steps: optimizer steps completed.
        resumed_from_step: step of the checkpoint this run resumed from (0: started fresh).
        restarts: worker-group restarts torch elastic made during this run.
        world_size: workers (nnodes * nproc_per_node).
        samples: examples processed by this run (all workers, resumed part only).
        tokens: non-padding tokens processed by this run (all workers).
        seconds: wall time of the training loop.
        precision: ``bf16`` or ``fp32`` as actually used.
        device: ``cpu`` or ``cuda``.
        config_digest: digest of the TrainConfig.
        data_digest: digest of the training rows.
        trainable_params: parameters updated by the optimizer.
    """

    model: FlyteDirectory
    digest: str
    losses: list[float] = field(default_factory=list)
    steps: int = 0
    resumed_from_step: int = 0
    restarts: int = 0
    world_size: int = 1
    samples: int = 0
    tokens: int = 0
    seconds: float = 0.0
    precision: str = "fp32"
    device: str = "cpu"
    config_digest: str = ""
    data_digest: str = ""
    trainable_params: int = 0
