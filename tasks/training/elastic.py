"""The distributed fine-tuning task: kfpytorch ``Elastic``, with node/process counts chosen per run.

flytekit fixes a task's ``task_config`` when the task object is built, and
``with_overrides(task_config=...)`` neither runs locally (the task already ran when the call returns)
nor updates what Elastic derived from the config (task type, replica counts). So each
:class:`TrainingSpec` gets its own task object from :func:`training_task`, named after the spec
(``tasks.training.elastic.fine_tune_2x8``) and loaded on the cluster by :data:`training_resolver`
from the spec in its container arguments (``pyflyte-execute ... --resolver
tasks.training.elastic.training_resolver -- nnodes 2 nproc 8 restarts 1 ...``). The retraining
workflow builds it inside a ``@dynamic`` node from its inputs.

Serialized: ``nnodes == 1`` is a plain pod (``python-task``) running torch elastic inside;
``nnodes > 1`` is a ``pytorch`` task (a PyTorchJob of the Kubeflow training operator) with
``nnodes`` worker replicas. Each pod requests ``nproc_per_node`` GPUs of the declared accelerator.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd
from flytekit import Resources, task
from flytekit.core.base_task import PythonTask, TaskResolverMixin
from flytekit.core.tracker import TrackedInstance
from flytekit.extras import accelerators
from flytekit.types.directory import FlyteDirectory

from flytekitplugins.aios_audit import audited
from flytekitplugins.kfpytorch import Elastic
from tasks.images import TRAINING
from tasks.training.config import TrainConfig, TrainResult

ACCELERATORS: dict[str, Any] = {
    "": None,
    "nvidia-tesla-a100": accelerators.A100,
    "nvidia-a100-80gb": accelerators.A100_80GB,
    "nvidia-h100": accelerators.H100,
    "nvidia-h200": accelerators.H200,
    "nvidia-l4": accelerators.L4,
    "nvidia-tesla-t4": accelerators.T4,
}


@dataclass(frozen=True)
class TrainingSpec:
    """Where and how wide a fine-tuning run is.

    Args:
        nnodes: pods (nodes); > 1 becomes a PyTorchJob.
        nproc_per_node: worker processes per pod (one per GPU on a GPU node).
        max_restarts: worker-group restarts torch elastic makes before the task fails.
        gpu: request ``nproc_per_node`` GPUs per pod (ignored when running locally without CUDA).
        accelerator: GPU type for the node selector (a key of :data:`ACCELERATORS`, "" = any).
        retries: Flyte task retries (a retry resumes from the last checkpoint).
        start_method: ``spawn`` (the default, as in kfpytorch: safe from a many-threaded parent) or ``fork``.
    """

    nnodes: int = 1
    nproc_per_node: int = 2
    max_restarts: int = 1
    gpu: bool = True
    accelerator: str = "nvidia-h100"
    retries: int = 1
    start_method: str = "spawn"

    def __post_init__(self) -> None:
        if self.nnodes < 1 or self.nproc_per_node < 1 or self.max_restarts < 0 or self.retries < 0:
            msg = f"TrainingSpec: nnodes and nproc_per_node must be >= 1, max_restarts and retries >= 0 ({self})"
            raise ValueError(msg)
        if self.accelerator not in ACCELERATORS:
            msg = f"TrainingSpec.accelerator={self.accelerator!r}: use one of {sorted(ACCELERATORS)}"
            raise ValueError(msg)
        if self.start_method not in ("fork", "spawn"):
            msg = f"TrainingSpec.start_method={self.start_method!r}: use 'fork' or 'spawn'"
            raise ValueError(msg)

    @property
    def suffix(self) -> str:
        return f"{self.nnodes}x{self.nproc_per_node}"

    def to_args(self) -> list[str]:
        """Loader arguments (strings) that :meth:`from_args` turns back into this spec."""
        return [x for k, v in asdict(self).items() for x in (k, str(v))]

    @classmethod
    def from_args(cls, args: list[str]) -> TrainingSpec:
        """Inverse of :meth:`to_args`."""
        raw = dict(zip(args[::2], args[1::2], strict=True))
        types = {"gpu": lambda s: s == "True", "accelerator": str, "start_method": str}
        return cls(**{k: types.get(k, int)(v) for k, v in raw.items()})  # type: ignore[operator]


def _body(
    train: pd.DataFrame, start_model: FlyteDirectory, config: TrainConfig, name: str, version: str
) -> TrainResult:
    from tasks.training.worker import fine_tune_rank

    return fine_tune_rank(train, start_model, config, name, version)


@functools.cache
def training_task(spec: TrainingSpec) -> PythonTask:
    """The Elastic fine-tuning task for ``spec`` (one object per spec in a process)."""
    # Import the workers' code here, in the launching process: torch elastic forks the workers, and a forked child
    # that imports a module another thread of the parent was importing at that moment waits forever on its lock.
    import tasks.training.worker  # noqa: F401

    requests = Resources(cpu=str(4 * spec.nproc_per_node), mem=f"{8 * spec.nproc_per_node}Gi")
    limits = None
    if spec.gpu:
        requests = Resources(cpu=requests.cpu, mem=requests.mem, gpu=str(spec.nproc_per_node))
        limits = Resources(gpu=str(spec.nproc_per_node))

    def fine_tune(
        train: pd.DataFrame, start_model: FlyteDirectory, config: TrainConfig, name: str, version: str
    ) -> TrainResult:
        """Fine-tune MiniLM + head with DDP on every worker, checkpointing; rank 0 returns the artifact.

        Args:
            train: training rows (columns ``text``, ``label``).
            start_model: artifact to start from (its head, and its encoder when fine-tuned).
            config: hyper-parameters.
            name: catalog name of the produced model.
            version: version of the produced model.
        """
        return _body(train, start_model, config, name, version)

    fine_tune.__name__ = fine_tune.__qualname__ = f"fine_tune_{spec.suffix}"
    elastic = Elastic(
        nnodes=spec.nnodes,
        nproc_per_node=spec.nproc_per_node,
        max_restarts=spec.max_restarts,
        start_method=spec.start_method,
        monitor_interval=1,
        increase_shared_mem=False,
    )
    t = task(
        **TRAINING,
        task_config=elastic,
        requests=requests,
        limits=limits,
        accelerator=ACCELERATORS[spec.accelerator] if spec.gpu else None,
        shared_memory=True,
        retries=spec.retries,
        enable_deck=True,
    )(audited(fine_tune, kind="task", attributes={"training_spec": asdict(spec)}))
    t.set_resolver(training_resolver)
    t._aios_spec = spec  # type: ignore[attr-defined] - read by the resolver's loader_args
    return t


class ElasticTrainingResolver(TrackedInstance, TaskResolverMixin):
    """Rebuilds a :func:`training_task` on the cluster from the spec in its container arguments."""

    def name(self) -> str:
        return "ElasticTrainingResolver"

    def load_task(self, loader_args: list[str]) -> PythonTask:
        return training_task(TrainingSpec.from_args(loader_args))

    def loader_args(self, settings: Any, t: PythonTask) -> list[str]:  # type: ignore[override]
        spec = getattr(t, "_aios_spec", None)
        if not isinstance(spec, TrainingSpec):
            msg = f"{t.name} was not built by training_task(); it cannot be resolved by {self.name()}"
            raise TypeError(msg)
        return spec.to_args()

    def get_all_tasks(self) -> list[PythonTask]:
        return []


training_resolver = ElasticTrainingResolver()

# Registered variants (``pyflyte package`` lists them): one node with two workers (runs locally on CPU),
# and a two-node PyTorchJob with eight H100s per node.
fine_tune_1x2 = training_task(TrainingSpec())
fine_tune_2x8 = training_task(TrainingSpec(nnodes=2, nproc_per_node=8, max_restarts=2))
