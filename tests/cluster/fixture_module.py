"""A small governed project used to show that the package checker notices a missing schedule, resource or gate.

It is written into a temporary package and packaged with `pyflyte package`; it is not part of the Flyte project.
"""

SOURCE = '''
from datetime import timedelta

from flytekit import CronSchedule, Email, LaunchPlan, Resources, WorkflowExecutionPhase, approve, task, workflow

from flytekitplugins.aios_connectors import PolicyDecisionTask
from tasks.images import GOVERNED_TASK_SECRETS, cpu_image

gate = PolicyDecisionTask(name="govpkg_gate")


@task(requests=Resources(cpu="2", mem="1Gi", gpu="1"), container_image=cpu_image, secret_requests=GOVERNED_TASK_SECRETS)
def train(n: int) -> int:
    """Train.

    Args:
        n: steps.
    """
    return n


@workflow
def governed(n: int = 1) -> int:
    """Gate, train, approve.

    Args:
        n: steps.
    """
    d = gate(principal="service:retraining", action="use_model", resource={"type": "Model", "id": "m"}, context={})
    x = train(n=n)
    d >> x
    return approve(x, "model-promotion", timeout=timedelta(hours=1))


nightly = LaunchPlan.get_or_create(
    governed,
    name="govpkg_nightly",
    schedule=CronSchedule(schedule="0 2 * * *"),
    default_inputs={"n": 3},
    notifications=[Email(phases=[WorkflowExecutionPhase.FAILED], recipients_email=["ops@example.com"])],
)
'''

TAMPERED = {
    'schedule=CronSchedule(schedule="0 2 * * *"),': "",
    ', gpu="1"': "",
    'return approve(x, "model-promotion", timeout=timedelta(hours=1))': "return x",
}
