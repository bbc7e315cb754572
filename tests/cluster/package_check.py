"""What the offline Flyte package must hold, and a checker that lists every difference.

``EXPECTED`` is the designed shape of the registered project: workflows (with their gate nodes and the
connector task types they use), launch plans (with schedules, inputs and failure notifications) and
tasks (task type, resource requests, image, secrets). :func:`check_package` compares a package loaded
with :func:`tests.foundation.packaging.load_package` against a manifest and returns one readable line per
problem, so a test can ``assert not problems`` and a human sees every missing item at once.

Names are Flyte entity names as registered (``<module>.<function>`` for workflows and tasks, the launch
plan's own name for launch plans). Only what is listed is checked; the lead's packaging test checks that
everything declared in code is packaged at all.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from flyteidl.admin import launch_plan_pb2, task_pb2, workflow_pb2
from flyteidl.core import tasks_pb2
from google.protobuf.json_format import MessageToDict

from tests.foundation.packaging import Package, gate_nodes


@dataclass(frozen=True)
class WorkflowSpec:
    """A workflow, the signal ids of its gate nodes and the connector task types it calls."""

    name: str
    gates: tuple[str, ...] = ()
    task_types: tuple[str, ...] = ()


@dataclass(frozen=True)
class LaunchPlanSpec:
    """A launch plan: its workflow, schedule (cron text or ``rate:<n>:<UNIT>``), inputs and notifications."""

    name: str
    workflow: str
    schedule: str | None = None
    default_inputs: tuple[str, ...] = ()
    fixed_inputs: tuple[str, ...] = ()
    notify_on_failure: bool = False


@dataclass(frozen=True)
class TaskSpec:
    """A task: its type, resource requests (``{"gpu": "1"}``; subset match), image prefix and secret keys."""

    name: str
    task_type: str | None = None
    requests: dict[str, str] = field(default_factory=dict)
    image_prefix: str | None = None
    secret_keys: tuple[str, ...] = ()


@dataclass(frozen=True)
class Manifest:
    """Everything the package must hold."""

    workflows: tuple[WorkflowSpec, ...] = ()
    launch_plans: tuple[LaunchPlanSpec, ...] = ()
    tasks: tuple[TaskSpec, ...] = ()

    def only(self, modules: Iterable[str]) -> Manifest:
        """The part of the manifest whose workflows live in ``modules`` (workflows not written yet stay out)."""
        mods = tuple(f"{m}." for m in modules)
        wfs = tuple(w for w in self.workflows if w.name.startswith(mods))
        names = {w.name for w in wfs}
        lps = tuple(lp for lp in self.launch_plans if lp.workflow in names)
        tasks = tuple(t for t in self.tasks if t.name.startswith(mods) or t.name.startswith("tasks."))
        return Manifest(wfs, lps, tasks)


def schedule_text(lp: launch_plan_pb2.LaunchPlan) -> str | None:
    """``"0 2 * * *"`` for a cron schedule, ``"rate:1:HOUR"`` for a fixed rate, None when unscheduled."""
    meta = lp.spec.entity_metadata
    if not meta.HasField("schedule"):
        return None
    s = meta.schedule
    if s.cron_schedule.schedule:
        return s.cron_schedule.schedule
    if s.cron_expression:
        return s.cron_expression
    if s.HasField("rate"):
        from flyteidl.admin import schedule_pb2

        return f"rate:{s.rate.value}:{schedule_pb2.FixedRateUnit.Name(s.rate.unit)}"
    return None


def task_requests(spec: task_pb2.TaskSpec) -> dict[str, str]:
    """Resource requests of a task, from its container or its pod template (kfpytorch, shared memory)."""
    tmpl = spec.template
    out = {tasks_pb2.Resources.ResourceName.Name(r.name).lower(): r.value for r in tmpl.container.resources.requests}
    if tmpl.HasField("k8s_pod"):
        pod = MessageToDict(tmpl.k8s_pod.pod_spec)
        for c in pod.get("containers", []):
            for k, v in c.get("resources", {}).get("requests", {}).items():
                out.setdefault("gpu" if k.endswith("gpu") else k, str(v))
    return out


def _called_task_types(wf: workflow_pb2.WorkflowSpec, pkg: Package) -> set[str]:
    types = set()
    for tmpl in [wf.template, *wf.sub_workflows]:
        for node in tmpl.nodes:
            if node.HasField("task_node"):
                task = pkg.tasks.get(node.task_node.reference_id.name)
                if task is not None:
                    types.add(task.template.type)
    return types


def _check_workflow(exp: WorkflowSpec, pkg: Package) -> list[str]:
    wf = pkg.workflows.get(exp.name)
    if wf is None:
        return [f"workflow {exp.name} is missing"]
    problems = []
    signals = {sid for _, sid, _ in gate_nodes(wf)}
    problems += [f"workflow {exp.name}: gate {g!r} is missing" for g in exp.gates if g not in signals]
    called = _called_task_types(wf, pkg)
    problems += [f"workflow {exp.name}: no task of type {t!r}" for t in exp.task_types if t not in called]
    return problems


def _check_launch_plan(exp: LaunchPlanSpec, pkg: Package) -> list[str]:
    lp = pkg.launch_plans.get(exp.name)
    if lp is None:
        return [f"launch plan {exp.name} is missing"]
    problems = []
    if lp.spec.workflow_id.name != exp.workflow:
        problems.append(f"launch plan {exp.name}: launches {lp.spec.workflow_id.name}, expected {exp.workflow}")
    got = schedule_text(lp)
    if got != exp.schedule:
        problems.append(f"launch plan {exp.name}: schedule is {got!r}, expected {exp.schedule!r}")
    defaults = {k for k, p in lp.spec.default_inputs.parameters.items() if p.HasField("default")}
    problems += [f"launch plan {exp.name}: no default for input {i!r}" for i in exp.default_inputs if i not in defaults]
    fixed = set(lp.spec.fixed_inputs.literals)
    problems += [f"launch plan {exp.name}: input {i!r} is not fixed" for i in exp.fixed_inputs if i not in fixed]
    notes = lp.spec.entity_metadata.notifications
    if exp.notify_on_failure and not any(n.phases for n in notes):
        problems.append(f"launch plan {exp.name}: no notification on failure")
    return problems


def _check_task(exp: TaskSpec, pkg: Package) -> list[str]:
    spec = pkg.tasks.get(exp.name)
    if spec is None:
        return [f"task {exp.name} is missing"]
    tmpl, problems = spec.template, []
    if exp.task_type is not None and tmpl.type != exp.task_type:
        problems.append(f"task {exp.name}: type {tmpl.type!r}, expected {exp.task_type!r}")
    requests = task_requests(spec)
    for k, v in exp.requests.items():
        if requests.get(k) != v:
            problems.append(f"task {exp.name}: resource request {k}={requests.get(k)!r}, expected {v!r}")
    if exp.image_prefix is not None and not tmpl.container.image.startswith(exp.image_prefix):
        problems.append(f"task {exp.name}: image {tmpl.container.image!r} is not {exp.image_prefix}*")
    keys = {s.key for s in tmpl.security_context.secrets}
    problems += [f"task {exp.name}: secret {k!r} not requested" for k in exp.secret_keys if k not in keys]
    return problems


def check_package(pkg: Package, expected: Manifest) -> list[str]:
    """Every difference between the package and the manifest, one line each (empty when it matches)."""
    problems: list[str] = []
    for w in expected.workflows:
        problems += _check_workflow(w, pkg)
    for lp in expected.launch_plans:
        problems += _check_launch_plan(lp, pkg)
    for t in expected.tasks:
        problems += _check_task(t, pkg)
    return problems


AUDIT_KEY = "audit-store-url"
SIGNING_KEY = "checkpoint-signing-key"


def _default_lp(workflow: str, *defaults: str) -> LaunchPlanSpec:
    return LaunchPlanSpec(workflow, workflow, default_inputs=defaults)


EXPECTED = Manifest(
    workflows=(
        WorkflowSpec("workflows.drift.check_drift"),
        WorkflowSpec("workflows.drift.flights_drift"),
        WorkflowSpec("workflows.evaluation.evaluate_model"),
        WorkflowSpec("workflows.evaluation.promote_after_approval"),
        WorkflowSpec("workflows.evaluation.vader_models"),
        WorkflowSpec("workflows.monitoring.monitor_flights"),
        WorkflowSpec("workflows.monitoring.monitor_text"),
        WorkflowSpec("workflows.retraining.retrain", gates=("model-promotion",)),
        WorkflowSpec(
            "workflows.document_processing.process_documents",
            gates=("payment-signoff", "document-review"),
            task_types=("aios_system_of_record",),
        ),
    ),
    launch_plans=(
        _default_lp(
            "workflows.drift.check_drift", "reference", "current", "dataset", "suite", "psi_threshold", "js_threshold"
        ),
        _default_lp("workflows.drift.flights_drift", "reference_months", "current_months", "n", "seed"),
        _default_lp(
            "workflows.evaluation.evaluate_model",
            "candidate",
            "champion",
            "test",
            "alpha",
            "latency_sample",
            "principal",
        ),
        _default_lp("workflows.evaluation.promote_after_approval"),
        _default_lp("workflows.evaluation.vader_models", "n_weak", "n_strong", "n_test", "seed"),
        _default_lp("workflows.monitoring.monitor_flights", "n", "psi_threshold", "retrain_target", "principal"),
        _default_lp("workflows.monitoring.monitor_text", "n", "current_source", "retrain_target"),
        _default_lp("workflows.document_processing.process_documents", "options"),
        LaunchPlanSpec(
            "process_documents_nightly",
            "workflows.document_processing.process_documents",
            schedule="0 2 * * *",
            default_inputs=("source", "options"),
            notify_on_failure=True,
        ),
        _default_lp("workflows.retraining.retrain", "source", "n_train", "nnodes", "nproc_per_node", "principal"),
        LaunchPlanSpec(
            "retrain_on_demand",
            "workflows.retraining.retrain",
            default_inputs=("source", "n_train", "nnodes", "nproc_per_node", "trigger_reason", "principal"),
            notify_on_failure=True,
        ),
        LaunchPlanSpec(
            "drift_check_hourly",
            "workflows.monitoring.monitor_flights",
            schedule="0 * * * *",
            default_inputs=("n", "psi_threshold", "js_threshold", "retrain_target", "principal"),
            notify_on_failure=True,
        ),
        LaunchPlanSpec(
            "text_drift_check_daily",
            "workflows.monitoring.monitor_text",
            schedule="0 6 * * *",
            default_inputs=("n", "reference_source", "current_source", "principal"),
            notify_on_failure=True,
        ),
    ),
    tasks=(
        TaskSpec("tasks.drift.check.check_quality", task_type="python-task", image_prefix="ghcr.io/flyte-aios/"),
        TaskSpec("tasks.drift.check.measure_drift", task_type="python-task"),
        TaskSpec("tasks.evaluation.tasks.evaluate_pair", task_type="python-task"),
        TaskSpec("tasks.evaluation.tasks.promote_approved", task_type="python-task"),
        TaskSpec("post_document_actions", task_type="aios_system_of_record"),
        TaskSpec(
            "tasks.training.elastic.fine_tune_2x8",
            task_type="pytorch",
            requests={"gpu": "8"},
            image_prefix="ghcr.io/flyte-aios/flyte-aios-gpu:",
            secret_keys=(AUDIT_KEY, SIGNING_KEY),
        ),
        TaskSpec(
            "tasks.training.elastic.fine_tune_1x2",
            task_type="python-task",
            requests={"gpu": "2"},
            image_prefix="ghcr.io/flyte-aios/flyte-aios-gpu:",
        ),
        TaskSpec(
            "tasks.documents.stages.decide",
            image_prefix="ghcr.io/flyte-aios/flyte-aios:",
            secret_keys=(AUDIT_KEY, SIGNING_KEY),
        ),
        TaskSpec("tasks.training.promotion.finish_promotion", secret_keys=(AUDIT_KEY, SIGNING_KEY)),
    ),
)
"""What the registered project holds today (kept in step with workflows/ and docs/runbook.md section 8)."""

PENDING: tuple[str, ...] = (
    "a model-promotion gate node inside evaluate_model (retrain has one; evaluate_model opens the request and "
    "promote_after_approval completes it)",
)
"""Designed but not in workflows/ when this manifest was last updated: add each to EXPECTED as it lands."""
