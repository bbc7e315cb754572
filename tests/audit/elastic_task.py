"""An audited task that also runs under kfpytorch Elastic (two local ranks)."""

from __future__ import annotations

from flytekit import task

from flytekitplugins.aios_audit import audited
from flytekitplugins.kfpytorch import Elastic


@task(task_config=Elastic(nnodes=1, nproc_per_node=2, start_method="fork"))
@audited
def ranked(x: int) -> int:
    """Return x from every rank.

    Args:
        x: A number.
    """
    return x
