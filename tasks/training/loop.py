"""The data-parallel fine-tuning loop (one process per worker; torch elastic starts them).

Plain functions, no Flyte: :func:`run_training` is what every rank of the Elastic task executes.
Determinism: the data stream is a seeded permutation per epoch indexed by example position, dropout is
re-seeded from ``(seed, step, rank)`` every step, and a checkpoint holds the trainable weights, the
optimizer, the schedule, the stream position and the loss history. A resumed run therefore replays the
steps it lost exactly; only floating-point reduction order can differ.

Fault injection (tests and drills only): ``AIOS_TRAIN_FAULT="rank=1,step=5"`` makes that rank exit
hard (``os._exit``) right after finishing that step, on the first worker group of the first task
attempt only, as a node or process loss would.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from tasks.ml.finetune import PooledClassifier
from tasks.training.checkpoint import CheckpointStore
from tasks.training.config import TrainConfig

log = logging.getLogger(__name__)
FAULT_ENV = "AIOS_TRAIN_FAULT"


@dataclass
class LoopOutput:
    """What the loop measured (identical on every rank except timings)."""

    losses: list[float] = field(default_factory=list)
    resumed_from_step: int = 0
    samples: int = 0
    tokens: int = 0
    seconds: float = 0.0
    precision: str = "fp32"
    device: str = "cpu"
    trainable_params: int = 0


def dist_env() -> tuple[int, int, int]:
    """(rank, world_size, local_rank) from the torch elastic environment (1 process without it)."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("LOCAL_RANK", 0))


def setup_device(local_rank: int, world: int, timeout_s: float = 600.0) -> torch.device:
    """Pick the device, pin CPU threads, and join the process group (nccl on GPU, gloo on CPU) within
    ``timeout_s`` (the ``dist_timeout_s`` setting)."""
    import torch.distributed as dist

    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    else:
        torch.set_num_threads(max(1, int(os.environ.get("OMP_NUM_THREADS", "1"))))
        device = torch.device("cpu")
    if world > 1 and not dist.is_initialized():
        _init_process_group(device, world, timeout_s)
    return device


def _init_process_group(device: torch.device, world: int, timeout_s: float) -> None:
    """Join the group through the agent's store under a per-restart key prefix.

    After an elastic restart the agent's TCPStore still holds the previous group's addresses under the
    default keys; new workers that read them wait on dead peers. A prefix per restart keeps rounds apart.
    """
    import datetime as dt

    import torch.distributed as dist

    restart = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
    timeout = dt.timedelta(seconds=timeout_s)
    store = dist.TCPStore(
        os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), world, is_master=False, timeout=timeout
    )
    prefixed = dist.PrefixStore(f"aios/restart-{restart}", store)
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend, store=prefixed, rank=int(os.environ["RANK"]), world_size=world, timeout=timeout)


def use_bf16(cfg: TrainConfig, device: torch.device) -> bool:
    """Whether to autocast to bf16: ``auto`` uses it where the hardware runs it faster than fp32 (a CUDA device
    with native bf16, not emulated; on a CPU, :func:`tasks.ml.minilm.cpu_bf16_fast`)."""
    from tasks.ml.minilm import PRECISIONS, cpu_bf16_supported, cuda_bf16_supported

    forced = PRECISIONS[cfg.precision]
    if forced is not None:
        return forced
    return cuda_bf16_supported() if device.type == "cuda" else cpu_bf16_supported()


def stream_indices(n: int, seed: int, start: int, count: int) -> np.ndarray:
    """Example indices at stream positions ``[start, start+count)``: epoch e is permutation(seed + e)."""
    out = np.empty(count, dtype=np.int64)
    for k, pos in enumerate(range(start, start + count)):
        epoch, i = divmod(pos, n)
        if k == 0 or i == 0:
            perm = np.random.default_rng(seed + epoch).permutation(n)
        out[k] = perm[i]
    return out


def _optimizer(module: PooledClassifier, cfg: TrainConfig) -> tuple[torch.optim.Optimizer, Any]:
    enc = [p for p in module.encoder.parameters() if p.requires_grad]
    groups = [{"params": enc, "lr": cfg.lr}] if enc else []
    groups.append({"params": list(module.head.parameters()), "lr": cfg.head_lr})
    opt = torch.optim.AdamW(groups, weight_decay=cfg.weight_decay)

    def schedule(step: int) -> float:
        if step < cfg.warmup_steps:
            return (step + 1) / (cfg.warmup_steps + 1)
        return max(0.0, (cfg.max_steps - step) / max(1, cfg.max_steps - cfg.warmup_steps))

    return opt, torch.optim.lr_scheduler.LambdaLR(opt, schedule)


def _maybe_fail(rank: int, step: int) -> None:
    spec = os.environ.get(FAULT_ENV, "")
    if not spec or os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") != "0":
        return
    if os.environ.get("FLYTE_ATTEMPT_NUMBER", "0") not in ("", "0"):
        return
    want = dict(kv.split("=", 1) for kv in spec.split(",") if "=" in kv)
    if int(want.get("rank", -1)) == rank and int(want.get("step", -1)) == step:
        log.warning("fault injection: rank %d exits hard after step %d", rank, step)
        os._exit(int(want.get("code", 13)))


def _state(module: PooledClassifier, opt: Any, sched: Any, step: int, pos: int, losses: list[float]) -> dict[str, Any]:
    trainable = {n: p.detach().cpu().clone() for n, p in module.named_parameters() if p.requires_grad}
    return {"step": step, "pos": pos, "losses": list(losses), "trainable": trainable,
            "optimizer": opt.state_dict(), "scheduler": sched.state_dict()}  # fmt: skip


def _restore(state: dict[str, Any], module: PooledClassifier, opt: Any, sched: Any) -> tuple[int, int, list[float]]:
    missing = set(state["trainable"]) - {n for n, p in module.named_parameters() if p.requires_grad}
    if missing:
        msg = f"checkpoint holds parameters this run does not train: {sorted(missing)[:3]}..."
        raise ValueError(msg)
    module.load_state_dict(state["trainable"], strict=False)
    opt.load_state_dict(state["optimizer"])
    sched.load_state_dict(state["scheduler"])
    return int(state["step"]), int(state["pos"]), [float(x) for x in state["losses"]]


@contextlib.contextmanager
def _maybe_no_sync(model: Any, skip: bool) -> Iterator[None]:
    with model.no_sync() if skip else contextlib.nullcontext():
        yield


@dataclass
class _Run:
    """Everything one rank needs during the loop."""

    model: Any  # DDP-wrapped or the module itself
    module: PooledClassifier
    tokenizer: Any
    texts: list[str]
    y: np.ndarray
    cfg: TrainConfig
    device: torch.device
    bf16: bool
    rank: int
    world: int


def _optimizer_step(run: _Run, opt: Any, sched: Any, pos: int) -> tuple[float, int]:
    """One optimizer step (``grad_accum`` micro-steps); returns (mean loss over ranks, tokens on this rank)."""
    cfg, bs = run.cfg, run.cfg.batch_size
    idx = stream_indices(len(run.texts), cfg.seed, pos, bs * cfg.grad_accum * run.world)
    opt.zero_grad(set_to_none=True)
    loss_sum, tokens = 0.0, 0
    for micro in range(cfg.grad_accum):
        start = (micro * run.world + run.rank) * bs
        sel = idx[start : start + bs]
        batch = run.tokenizer(
            [run.texts[i] for i in sel], padding=True, truncation=True, max_length=cfg.max_length, return_tensors="pt"
        ).to(run.device)
        target = torch.as_tensor(run.y[sel], device=run.device)
        with _maybe_no_sync(run.model, run.world > 1 and micro < cfg.grad_accum - 1):
            with torch.autocast(run.device.type, dtype=torch.bfloat16, enabled=run.bf16):
                logits = run.model(**batch)
            loss = torch.nn.functional.cross_entropy(logits.float(), target) / cfg.grad_accum
            loss.backward()
        loss_sum += float(loss.detach())
        tokens += int(batch["attention_mask"].sum())
    torch.nn.utils.clip_grad_norm_([p for p in run.module.parameters() if p.requires_grad], 1.0)
    opt.step()
    sched.step()
    return _mean_over_ranks(loss_sum, run), tokens


def _mean_over_ranks(value: float, run: _Run) -> float:
    if run.world == 1:
        return value
    import torch.distributed as dist

    t = torch.tensor([value], dtype=torch.float64, device=run.device)
    dist.all_reduce(t)
    return float(t.item()) / run.world


def _resume(
    run: _Run, store: CheckpointStore, opt: Any, sched: Any, ident: dict[str, str]
) -> tuple[int, int, list[float]]:
    state = store.load_latest()
    if state is None:
        return 0, 0, []
    if {k: state.get(k) for k in ident} != ident:
        log.warning("checkpoint step %s belongs to another config or data set: starting fresh", state.get("step"))
        return 0, 0, []
    step, pos, losses = _restore(state, run.module, opt, sched)
    log.info("rank %d resumed from checkpoint at step %d", run.rank, step)
    return step, pos, losses


def train_loop(run: _Run, store: CheckpointStore, ident: dict[str, str]) -> LoopOutput:
    """Run (or resume) the optimizer steps up to ``cfg.max_steps``, checkpointing on rank 0.

    Rank 0 shows the steps: a rich bar when its stderr is a terminal (a local run), otherwise a
    ``progress: training: <step>/<max> steps ... (loss x)`` line per quarter and every 30 s (a pod's log).

    Args:
        run: model, data and place of this rank.
        store: where checkpoints are read and written.
        ident: ``config_digest`` and ``data_digest``; a checkpoint of anything else is not resumed.
    """
    import torch.distributed as dist

    from flytekitplugins.aios_core.progress import Reporter

    cfg = run.cfg
    opt, sched = _optimizer(run.module, cfg)
    step, pos, losses = _resume(run, store, opt, sched, ident)
    out = LoopOutput(resumed_from_step=step, precision="bf16" if run.bf16 else "fp32", device=run.device.type)
    global_batch = cfg.batch_size * cfg.grad_accum * run.world
    run.model.train()
    start = time.perf_counter()
    with Reporter("steps", mode="auto" if run.rank == 0 else "off") as bars:
        bars.stage("training", cfg.max_steps, done=step)
        while step < cfg.max_steps:
            torch.manual_seed(cfg.seed * 1_000_003 + step * 1009 + run.rank)  # dropout independent of resumes
            loss, tokens = _optimizer_step(run, opt, sched, pos)
            step, pos = step + 1, pos + global_batch
            losses.append(round(loss, 6))
            out.samples += global_batch
            out.tokens += int(_mean_over_ranks(float(tokens), run) * run.world)
            if cfg.checkpoint_every and step % cfg.checkpoint_every == 0 and step < cfg.max_steps:
                if run.rank == 0 and store.dest:
                    store.save({**_state(run.module, opt, sched, step, pos, losses), **ident})
                if run.world > 1:
                    dist.barrier()  # a rank killed after this line resumes from this step
            bars.update("training", step, info=f"loss {loss:.4f}")
            _maybe_fail(run.rank, step)
    out.seconds = time.perf_counter() - start
    out.losses = losses
    return out
