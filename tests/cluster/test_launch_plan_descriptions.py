"""The console launch form of every launch plan: each input is described, and each workflow can be launched as is.

Decodes the offline ``pyflyte package`` output (what FlyteAdmin would receive): every input of every launch
plan, and every field of a dataclass input (its JSON schema in the literal type), carries a description
that is not just its name; every public workflow has a launch plan whose inputs all have defaults.
"""

from __future__ import annotations

import json

import pytest
from flyteidl.core import types_pb2
from google.protobuf.json_format import MessageToDict

from tests.foundation.packaging import REPO, Package, load_package, run_package

pytestmark = pytest.mark.slow

# Completes one earlier evaluation: its two inputs are that run's record and approval ids, never defaults.
NEEDS_IDS = {"workflows.evaluation.promote_after_approval"}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Package:
    out = tmp_path_factory.mktemp("described") / "flyte-package.tgz"
    proc = run_package(REPO, "workflows", out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return load_package(out)


def _field_problems(where: str, lt: types_pb2.LiteralType) -> list[str]:
    """Fields of a dataclass/pydantic input whose JSON schema has no description."""
    if lt.simple != types_pb2.STRUCT or not lt.HasField("metadata"):
        return []
    schema = MessageToDict(lt.metadata)
    props = schema.get("properties", {})
    return [f"{where}: field {k!r} has no description" for k, v in props.items() if not v.get("description")]


def input_problems(pkg: Package) -> list[str]:
    """One line per launch plan input (or field of one) with no description, or one that only repeats its name."""
    problems = []
    for name, lp in sorted(pkg.launch_plans.items()):
        for key, param in sorted(lp.spec.default_inputs.parameters.items()):
            text = param.var.description.strip()
            if not text or text.strip("`").lower() == key.lower():
                problems.append(f"launch plan {name}: input {key!r} is described as {text!r}")
            problems += _field_problems(f"launch plan {name}: input {key!r}", param.var.type)
    return problems


def test_every_launch_plan_input_is_described_in_the_console_form(project: Package) -> None:
    assert len(project.launch_plans) >= 12
    assert input_problems(project) == []


def test_the_checker_names_an_input_described_only_by_its_name(project: Package) -> None:
    """flytekit's own LaunchPlan.get_or_create(default_inputs=...) describes an overridden input by its name."""
    from flytekit import LaunchPlan
    from flytekit.configuration import ImageConfig, SerializationSettings
    from flytekit.tools.translator import get_serializable

    from workflows.drift import flights_drift

    bare = LaunchPlan.get_or_create(flights_drift, name="bare_flights_check", default_inputs={"n": 10})
    settings = SerializationSettings(image_config=ImageConfig.auto_default_image())
    idl = get_serializable({}, settings, bare).to_flyte_idl()
    pkg = Package(launch_plans={"bare_flights_check": idl})
    assert input_problems(pkg) == ["launch plan bare_flights_check: input 'n' is described as 'n'"]


def test_option_fields_are_described(project: Package) -> None:
    lp = project.launch_plans["process_documents_nightly"]
    schema = MessageToDict(lp.spec.default_inputs.parameters["options"].var.type.metadata)
    assert "approval request stays open" in schema["properties"]["approval_timeout_s"]["description"]
    cfg = MessageToDict(project.launch_plans["retrain_on_demand"].spec.default_inputs.parameters["config"].var.type)
    assert "learning rate" in json.dumps(cfg["metadata"]["properties"]["lr"])


def test_every_public_workflow_has_a_launch_plan_that_runs_on_its_defaults(project: Package) -> None:
    runnable: dict[str, list[str]] = {}
    for name, lp in project.launch_plans.items():
        required = [k for k, p in lp.spec.default_inputs.parameters.items() if p.required and not p.HasField("default")]
        if not required:
            runnable.setdefault(lp.spec.workflow_id.name, []).append(name)
    public = {w for w in project.workflows if w.startswith("workflows.")}
    missing = sorted(public - set(runnable) - NEEDS_IDS)
    assert missing == [], f"no launch plan of these runs without typed inputs: {missing}"
    for wf in ("workflows.drift.check_drift", "workflows.evaluation.evaluate_model"):
        assert wf in runnable[wf], runnable[wf]  # their default launch plans run as they are


def test_service_identities_come_from_the_launch_plan(project: Package) -> None:
    want = {
        "retrain_on_demand": "service:retraining",
        "drift_check_hourly": "service:monitoring",
        "text_drift_check_daily": "service:monitoring",
        "workflows.evaluation.evaluate_model": "service:retraining",
    }
    for lp_name, principal in want.items():
        param = project.launch_plans[lp_name].spec.default_inputs.parameters["principal"]
        assert param.default.scalar.primitive.string_value == principal, lp_name
