"""Governed Flyte 2 tasks used by the adapter's tests (each leaves a marker file when its body runs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import flyte

from flytekitplugins.aios_flyte2 import Governed, governed

env = flyte.TaskEnvironment(name="aios_tests")


def _context(amount: float, currency: str, **_: Any) -> dict[str, Any]:
    return {"amount": amount, "currency": currency, "data_class": "internal", "doc_type": "invoice", "confidence": 0.9}


def _mark(marker: str) -> None:
    Path(marker).write_text("ran", encoding="utf-8")


def _where() -> str:
    """``run name|action name`` of the running task (``-|-`` for a plain call outside a run)."""
    c = flyte.ctx()
    return f"{c.action.run_name}|{c.action.name}" if c else "-|-"


@env.task
@governed(action="act_on_document", resource=("Document", "doc_id"), context=_context, approval_timeout_s=60)
def pay_sync(doc_id: str, amount: float, currency: str, marker: str) -> str:
    """A sync governed task."""
    _mark(marker)
    return _where()


@env.task
@governed(action="act_on_document", resource=("Document", "doc_id"), context=_context, approval_timeout_s="timeout_s")
async def pay_async(doc_id: str, amount: float, currency: str, marker: str, timeout_s: float = 60.0) -> str:
    """An async governed task; approvals wait on the audit trail (local default)."""
    _mark(marker)
    return _where()


@env.task
@governed(
    action="act_on_document",
    resource=("Document", "doc_id"),
    context=_context,
    approval_timeout_s=30,
    waiter="condition",
)
async def pay_on_condition(doc_id: str, amount: float, currency: str, marker: str) -> str:
    """An async governed task whose approval waits for the condition's value (as on a cluster)."""
    _mark(marker)
    return "paid"


@env.task
async def driver(doc_id: str, amount: float, currency: str, marker: str) -> str:
    """A parent task calling the governed one as a sub-action."""
    return await pay_async(doc_id=doc_id, amount=amount, currency=currency, marker=marker)


def run_local(task: Any, **inputs: Any) -> Any:
    """One Flyte 2 local run; its first output."""
    run = flyte.with_runcontext(mode="local").run(task, **inputs)
    return run.outputs()[0]


def _plugin_context(amount: float, currency: str, **_: Any) -> dict[str, Any]:
    return _context(amount=amount, currency=currency)


plugin_env = flyte.TaskEnvironment(
    name="aios_tests_plugin",
    plugin_config=Governed(action="act_on_document", resource=("Document", "doc_id"), context=_plugin_context),
)


@plugin_env.task
async def pay_plugin(doc_id: str, amount: float, currency: str, marker: str) -> str:
    """Governed by the environment's task plugin config, not by a decorator."""
    _mark(marker)
    return _where()


@env.task
def audited_plain(x: int) -> int:
    """A plain task, governed through ``override(plugin_config=Governed())`` (audited, no policy gate)."""
    return x + 1


audited_override = audited_plain.override(plugin_config=Governed())
