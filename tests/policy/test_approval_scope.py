"""The approval pass is skipped only for actions no approval policy can match; any wider scope keeps it."""

from __future__ import annotations

from pathlib import Path

import pytest

from flytekitplugins.aios_core.settings import get_settings
from flytekitplugins.aios_policy import evaluate
from flytekitplugins.aios_policy.cedar_load import _scoped_actions, load_policy_set
from flytekitplugins.aios_policy.engine import PolicySource
from tests.policy.conftest import POLICIES

RUN = {"principal": "service:document-pipeline", "action": "run_task", "resource": {"type": "Task", "id": "t.add"}}


def _scope(op: str, **kw: object) -> dict:
    return {"action": {"op": op, **kw}}


def test_scoped_actions_from_policy_scopes() -> None:
    one = _scope("==", entity={"type": "Action", "id": "a"})
    two = _scope("==", entity={"type": "Action", "id": "b"})
    assert _scoped_actions([one, two]) == frozenset({"a", "b"})
    assert _scoped_actions([]) == frozenset()
    assert _scoped_actions([one, _scope("All")]) is None
    assert _scoped_actions([one, _scope("in", entities=[{"type": "Action", "id": "a"}])]) is None


def test_shipped_policies_scope_approvals_to_their_actions() -> None:
    ps = load_policy_set(PolicySource(POLICIES, POLICIES.parent / "roles.yaml"))
    assert ps.approval_actions is not None
    assert "act_on_document" in ps.approval_actions and "run_task" not in ps.approval_actions


@pytest.mark.parametrize(
    "scope",
    ['action == Action::"run_task"', 'action in [Action::"run_task", Action::"act_on_document"]', "action"],
)
def test_an_approval_policy_on_run_task_is_always_evaluated(policy_copy: Path, scope: str) -> None:
    assert evaluate(RUN, policy_dir=policy_copy, settings=get_settings()).effect == "allow"
    (policy_copy / "zz_run_task.cedar").write_text(
        '@id("run-task-signoff")\n@effect("require_approval")\n@gate("run-signoff")\n@risk("low")\n'
        f"permit (principal, {scope}, resource);\n"
    )
    from flytekitplugins.aios_policy.cedar_load import clear_cache

    clear_cache()
    d = evaluate(RUN, policy_dir=policy_copy, settings=get_settings())
    assert d.effect == "require_approval" and d.approval is not None and d.approval.gate == "run-signoff"
