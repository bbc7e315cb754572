"""Trivial tasks for benchmarks/policy_bench.py: the same body with and without the policy gate."""

from __future__ import annotations

from flytekit import task

from flytekitplugins.aios_policy import policy_gate


@task
def plain_add(x: int) -> int:
    """Trivial task without the plugin."""
    return x + 1


@task
@policy_gate(action="run_task", resource=lambda **i: {"type": "Task", "id": "bench.add"})
def gated_add(x: int) -> int:
    """The same trivial task behind a policy gate (decision + durable audit record)."""
    return x + 1
