"""What the cluster gets: the offline ``pyflyte package`` holds a ``pytorch`` task (PyTorchJob) for multi-node
training and a plain pod for single-node, each with the declared GPU requests and accelerator; a spec chosen
at run time (dynamic node) serializes the same way and is resolved back from its container arguments."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def templates(tmp_path_factory: pytest.TempPathFactory) -> dict:
    from flyteidl.admin.task_pb2 import TaskSpec

    out = tmp_path_factory.mktemp("pkg")
    pkg = out / "flyte-package.tgz"
    cmd = [str(Path(sys.executable).parent / "pyflyte"), "--pkgs", "workflows", "package",
           "--image", "ghcr.io/flyte-aios/flyte-aios:test", "-o", str(pkg), "--force"]  # fmt: skip
    env = dict(os.environ, PYTHONPATH=str(REPO))
    res = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    specs = {}
    with tarfile.open(pkg) as tar:
        for m in tar.getmembers():
            if m.name.endswith("_1.pb"):
                spec = TaskSpec()
                spec.ParseFromString(tar.extractfile(m).read())  # type: ignore[union-attr]
                specs[spec.template.id.name] = spec.template
    return specs


def _d(msg) -> dict:
    from google.protobuf.json_format import MessageToDict

    return msg if isinstance(msg, dict) else MessageToDict(msg)


def _gpu_request(t) -> str:
    from flyteidl.core.tasks_pb2 import Resources

    return next(r.value for r in t.container.resources.requests if r.name == Resources.GPU)


def test_multi_node_is_a_pytorchjob_with_gpus(templates: dict) -> None:
    t = templates["tasks.training.elastic.fine_tune_2x8"]
    assert t.type == "pytorch"
    custom = _d(t.custom)
    assert custom["workerReplicas"]["replicas"] == 2
    assert custom["elasticConfig"]["nprocPerNode"] == 8 and custom["elasticConfig"]["maxRestarts"] == 2
    assert custom["elasticConfig"]["minReplicas"] == 2 and custom["elasticConfig"]["maxReplicas"] == 2
    assert _gpu_request(t) == "8"
    assert t.extended_resources.gpu_accelerator.device == "nvidia-h100"
    assert t.metadata.retries.retries == 1
    assert t.extended_resources.shared_memory.mount_name, "shared memory for DDP"
    args = list(t.container.args)
    assert "tasks.training.elastic.training_resolver" in args and args[args.index("nnodes") + 1] == "2"


def test_single_node_is_a_plain_pod_with_gpus(templates: dict) -> None:
    t = templates["tasks.training.elastic.fine_tune_1x2"]
    assert t.type == "python-task" and not _d(t.custom)
    assert _gpu_request(t) == "2"
    assert t.extended_resources.gpu_accelerator.device == "nvidia-h100"
    assert "workflows.retraining.train_distributed" in templates  # the dynamic node sizing it from inputs


def test_launch_plan_and_workflow_defaults_are_typed(tmp_path: Path) -> None:
    from workflows.retraining import retrain, retrain_on_demand

    assert retrain_on_demand.name == "retrain_on_demand"
    inputs = retrain.python_interface.inputs_with_defaults
    assert all(default is not None for _, default in inputs.values()), "monitoring starts retrain with no inputs"
    assert {"trigger_reason", "drift_record"} <= set(inputs)


def test_runtime_spec_serializes_and_resolves_back() -> None:
    from flytekit.configuration import Image, ImageConfig, SerializationSettings
    from flytekit.tools.translator import get_serializable

    from tasks.training.elastic import TrainingSpec, training_resolver, training_task

    spec = TrainingSpec(nnodes=4, nproc_per_node=4, max_restarts=3, accelerator="nvidia-tesla-a100")
    settings = SerializationSettings(image_config=ImageConfig(default_image=Image("x", "img", "1")))
    t = get_serializable({}, settings, training_task(spec)).template  # type: ignore[attr-defined]
    assert t.type == "pytorch" and t.custom["workerReplicas"]["replicas"] == 4
    assert t.extended_resources.gpu_accelerator.device == "nvidia-tesla-a100"
    assert t.container.resources.to_flyte_idl() and _gpu_request(t.to_flyte_idl()) == "4"
    args = list(t.container.args)
    loader = args[args.index("--") + 1 :]
    assert training_resolver.load_task(loader) is training_task(spec)
    assert TrainingSpec.from_args(loader) == spec
