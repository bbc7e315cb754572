"""Offline `pyflyte package` helpers: build the package, load its protobufs back with flyteidl."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

from flyteidl.admin import launch_plan_pb2, task_pb2, workflow_pb2

REPO = Path(__file__).resolve().parents[2]
IMAGE = "ghcr.io/flyte-aios/aios:test"


@dataclass
class Package:
    """Entities of one offline package, keyed by entity name."""

    tasks: dict[str, task_pb2.TaskSpec] = field(default_factory=dict)
    workflows: dict[str, workflow_pb2.WorkflowSpec] = field(default_factory=dict)
    launch_plans: dict[str, launch_plan_pb2.LaunchPlan] = field(default_factory=dict)


def run_package(root: Path, pkgs: str, out: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run ``pyflyte --pkgs <pkgs> package`` in ``root`` with no cluster; returns the finished process."""
    env = {**os.environ, "PYTHONPATH": f"{root}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    pyflyte = Path(sys.executable).parent / "pyflyte"
    cmd = [str(pyflyte), "--pkgs", pkgs, "package", "--image", IMAGE, "-o", str(out), "--force"]
    return subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=timeout)


def load_package(tgz: Path) -> Package:
    """Parse every .pb file of a package archive (suffix _1 task, _2 workflow, _3 launch plan)."""
    pkg = Package()
    with tarfile.open(tgz) as tar:
        for member in tar.getmembers():
            if not member.name.endswith(".pb"):
                continue
            f = tar.extractfile(member)
            assert f is not None
            data = f.read()
            stem = Path(member.name).stem
            if stem.endswith("_1"):
                t = task_pb2.TaskSpec.FromString(data)
                pkg.tasks[t.template.id.name] = t
            elif stem.endswith("_2"):
                w = workflow_pb2.WorkflowSpec.FromString(data)
                pkg.workflows[w.template.id.name] = w
            elif stem.endswith("_3"):
                lp = launch_plan_pb2.LaunchPlan.FromString(data)
                pkg.launch_plans[lp.id.name] = lp
    return pkg


def gate_nodes(wf: workflow_pb2.WorkflowSpec) -> list[tuple[str, str, float]]:
    """(node id, signal id or 'sleep', timeout seconds) of every gate node, sub-workflows included."""
    out = []
    templates = [wf.template, *wf.sub_workflows]
    for tmpl in templates:
        for node in tmpl.nodes:
            if node.HasField("gate_node"):
                g = node.gate_node
                kind = g.WhichOneof("condition")
                sid = g.approve.signal_id if kind == "approve" else g.signal.signal_id if kind == "signal" else kind
                out.append((node.id, sid, node.metadata.timeout.seconds))
    return out
