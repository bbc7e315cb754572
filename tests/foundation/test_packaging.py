"""Every workflow and launch plan in workflows/ serializes offline, and the package says what the code declares."""

from __future__ import annotations

import importlib
import pkgutil
import textwrap
from pathlib import Path

import pytest

from tests.foundation.packaging import REPO, gate_nodes, load_package, run_package


def _declared() -> dict[str, dict[str, object]]:
    """Workflows, launch plans and tasks that the modules under workflows/ declare, found by importing them."""
    from flytekit.core.base_task import PythonTask
    from flytekit.core.gate import Gate
    from flytekit.core.launch_plan import LaunchPlan
    from flytekit.core.workflow import WorkflowBase

    import workflows

    found: dict[str, dict[str, object]] = {"workflows": {}, "launch_plans": {}, "tasks": {}, "gates": {}}
    for mod in pkgutil.walk_packages(workflows.__path__, "workflows."):
        m = importlib.import_module(mod.name)
        for obj in vars(m).values():
            if isinstance(obj, WorkflowBase):
                found["workflows"][obj.name] = obj
                gates = [n.flyte_entity for n in obj.nodes if isinstance(n.flyte_entity, Gate)]
                found["gates"][obj.name] = gates
            elif isinstance(obj, LaunchPlan):
                found["launch_plans"][obj.name] = obj
            elif isinstance(obj, PythonTask):
                found["tasks"][obj.name] = obj
    return found


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("pkg") / "flyte-package.tgz"
    proc = run_package(REPO, "workflows", out)
    assert proc.returncode == 0, f"pyflyte package failed:\n{proc.stdout}\n{proc.stderr}"
    return load_package(out)


def test_every_declared_workflow_and_launch_plan_is_packaged(package) -> None:
    declared = _declared()
    assert declared["workflows"], "workflows/ declares no workflow"
    missing_wf = set(declared["workflows"]) - set(package.workflows)
    missing_lp = set(declared["launch_plans"]) - set(package.launch_plans)
    assert not missing_wf, f"workflows not in the package: {sorted(missing_wf)}"
    assert not missing_lp, f"launch plans not in the package: {sorted(missing_lp)}"
    # every workflow has its default launch plan too (what the console launches)
    assert set(declared["workflows"]) <= set(package.launch_plans)


def test_task_types_and_resources_match_the_code(package) -> None:
    from flytekit.configuration import ImageConfig, SerializationSettings

    settings = SerializationSettings(image_config=ImageConfig.auto_default_image())
    for name, task in _declared()["tasks"].items():
        if name not in package.tasks:
            continue  # a task defined in workflows/ but used by no workflow is not packaged
        tmpl = package.tasks[name].template
        assert tmpl.type == task.task_type, f"{name}: packaged type {tmpl.type} != declared {task.task_type}"
        assert dict(tmpl.custom) == dict(task.get_custom(settings) or {}) or tmpl.HasField("custom")
        req = task.resources.requests if hasattr(task, "resources") else None
        if req is not None and req.cpu:
            got = {r.name: r.value for r in tmpl.container.resources.requests}
            assert got, f"{name}: declared resource requests missing from the package"


def test_gate_nodes_and_schedules_are_packaged(package) -> None:
    declared = _declared()
    for wf_name, gates in declared["gates"].items():
        packaged = gate_nodes(package.workflows[wf_name])
        assert len(packaged) >= len(gates), f"{wf_name}: {len(gates)} gate(s) declared, {len(packaged)} packaged"
    for lp_name, lp in declared["launch_plans"].items():
        spec = package.launch_plans[lp_name].spec
        if lp.schedule is not None:
            sched = spec.entity_metadata.schedule
            assert sched.cron_expression or sched.cron_schedule.schedule or sched.rate.value, (
                f"{lp_name}: schedule lost"
            )


def test_a_broken_workflow_fails_packaging(tmp_path: Path) -> None:
    """A workflow that stops serializing makes the package step fail loudly."""
    pkg = tmp_path / "brokenwf"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "wf.py").write_text(
        textwrap.dedent(
            '''
            from flytekit import task, workflow

            @task
            def count(n: int) -> int:
                """Count."""
                return n + 1

            @task
            def shout(s: str) -> str:
                """Shout."""
                return s.upper()

            @workflow
            def broken(n: int = 1) -> str:
                """Calls shout with an input name it does not have (a rename upstream): must not serialize."""
                return shout(text=count(n=n))
            '''
        )
    )
    proc = run_package(tmp_path, "brokenwf", tmp_path / "out.tgz")
    assert proc.returncode != 0
    assert "text" in (proc.stdout + proc.stderr)
    assert not (tmp_path / "out.tgz").exists()
    # and the same layout, fixed, packages fine: the failure above is the broken call, not the harness
    fixed = (pkg / "wf.py").read_text().replace("shout(text=count(n=n))", "shout(s=n)")
    fixed = fixed.replace("def broken(n: int = 1)", "def broken(n: str = '1')")
    (pkg / "wf.py").write_text(fixed)
    ok = run_package(tmp_path, "brokenwf", tmp_path / "out.tgz")
    assert ok.returncode == 0, ok.stderr
    assert "broken" in " ".join(load_package(tmp_path / "out.tgz").workflows)
