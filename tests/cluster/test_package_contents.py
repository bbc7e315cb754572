"""The offline package holds every workflow, launch plan, schedule, gate, connector task type and resource."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cluster.fixture_module import SOURCE, TAMPERED
from tests.cluster.package_check import (
    LaunchPlanSpec,
    Manifest,
    TaskSpec,
    WorkflowSpec,
    check_package,
)
from tests.foundation.packaging import REPO, load_package, run_package

pytestmark = pytest.mark.slow

FIXTURE = Manifest(
    workflows=(WorkflowSpec("govpkg.wf.governed", gates=("model-promotion",), task_types=("aios_policy_decision",)),),
    launch_plans=(
        LaunchPlanSpec(
            "govpkg_nightly", "govpkg.wf.governed", schedule="0 2 * * *", default_inputs=("n",), notify_on_failure=True
        ),
    ),
    tasks=(
        TaskSpec(
            "govpkg.wf.train",
            task_type="python-task",
            requests={"cpu": "2", "gpu": "1"},
            image_prefix="ghcr.io/flyte-aios/flyte-aios:",
            secret_keys=("audit-store-url", "checkpoint-signing-key"),
        ),
        TaskSpec("govpkg_gate", task_type="aios_policy_decision"),
    ),
)


def _package_source(tmp: Path, source: str):
    pkg = tmp / "govpkg"
    pkg.mkdir(parents=True, exist_ok=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "wf.py").write_text(source)
    out = tmp / "pkg.tgz"
    proc = run_package(tmp, "govpkg", out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return load_package(out)


def test_checker_passes_on_the_designed_package_and_names_each_missing_item(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONPATH", str(REPO))  # the temp package imports tasks.images from the project
    assert check_package(_package_source(tmp_path / "ok", SOURCE), FIXTURE) == []
    tampered = SOURCE
    for old, new in TAMPERED.items():
        assert old in tampered
        tampered = tampered.replace(old, new)
    problems = check_package(_package_source(tmp_path / "bad", tampered), FIXTURE)
    assert "launch plan govpkg_nightly: schedule is None, expected '0 2 * * *'" in problems
    assert "task govpkg.wf.train: resource request gpu=None, expected '1'" in problems
    assert "workflow govpkg.wf.governed: gate 'model-promotion' is missing" in problems
    assert len(problems) == 3, problems


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("project") / "flyte-package.tgz"
    proc = run_package(REPO, "workflows", out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return load_package(out)


def test_the_project_package_holds_everything_expected(project) -> None:
    from tests.cluster.package_check import EXPECTED

    assert check_package(project, EXPECTED) == []


def test_every_packaged_launch_plan_and_workflow_is_in_the_manifest(project) -> None:
    """A new workflow or launch plan must be added to EXPECTED (and the runbook), so nothing ships unchecked."""
    from tests.cluster.package_check import EXPECTED

    assert set(project.workflows) <= {w.name for w in EXPECTED.workflows}
    assert set(project.launch_plans) <= {lp.name for lp in EXPECTED.launch_plans}
