"""Settings are passed down the call chain: only entry points resolve them (issue 14, item 4).

An entry point is where a command, a Flyte task body, a connector call or a worker process starts: a click
command, a function decorated with ``@task``/``@dynamic``/``@workflow``, a connector's ``do``/``create``/``get``,
or one of the wrappers listed in :data:`ENTRY_POINTS` (each with why it is one). Everything below takes
``settings`` as a parameter. This test reads the source of the pack (AST, not text) and fails on any other
``get_settings()`` call, so a deep read of the process environment cannot come back unnoticed.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# every distribution's sources (plugins/*/flytekitplugins, connectors/*/flytekitplugins) and the Flyte projects
ROOTS = ("plugins", "connectors", "tasks", "workflows", "workflows_flyte2")

CORE, FLYTEKIT, FLYTE2 = "plugins/flyte-aios-core", "plugins/flytekit-aios", "plugins/flyte-aios-flyte2"
ENTRY_POINTS: dict[str, str] = {
    f"{CORE}/flytekitplugins/aios_core/cli.py::settings_from": "every `aios` command: root flags applied once",
    f"{FLYTEKIT}/flytekitplugins/aios/audited.py::run_audited": "the body wrapper of an @audited Flyte task",
    f"{CORE}/flytekitplugins/aios_policy/gate.py::run_gated": "the body wrapper of a @policy_gate Flyte task",
    f"{FLYTE2}/flytekitplugins/aios_flyte2/record.py::attempt": "one governed Flyte 2 task attempt",
    f"{FLYTEKIT}/flytekitplugins/aios/approval_gate.py::ApprovalGate.local_execute": "the local gate node",
    "tasks/training/worker.py::fine_tune_rank": "the body of every torch elastic worker process",
    "tasks/acting.py::act_as": "first task of a launched run: switches this process to the launch plan's principal",
}
CONNECTOR_METHODS = {"do", "create", "get", "delete"}
# registered_task: the flytekit plugin's @task that keeps a registered name (flytekitplugins.aios.naming)
TASK_DECORATORS = {"task", "registered_task", "dynamic", "workflow", "command", "group"}


def _decorator_names(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    names = set()
    for d in fn.decorator_list:
        node = d.func if isinstance(d, ast.Call) else d
        if isinstance(node, ast.Name):
            names.add(node.id)
        elif isinstance(node, ast.Attribute):
            names.add(node.attr)
    return names


def _calls(path: Path) -> list[tuple[str, int, bool]]:
    """(qualified function, line, is entry point) of every get_settings() call in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[tuple[str, int, bool]] = []

    def visit(node: ast.AST, stack: list[ast.AST]) -> None:
        if isinstance(node, ast.Call):
            f = node.func
            name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""
            if name == "get_settings":
                funcs = [s for s in stack if isinstance(s, ast.FunctionDef | ast.AsyncFunctionDef)]
                qual = ".".join(
                    s.name for s in stack if isinstance(s, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
                )
                entry = bool(funcs) and (
                    bool(_decorator_names(funcs[0]) & TASK_DECORATORS)
                    or (funcs[0].name in CONNECTOR_METHODS and any(isinstance(s, ast.ClassDef) for s in stack))
                )
                found.append((qual or "<module>", node.lineno, entry))
        for child in ast.iter_child_nodes(node):
            visit(
                child,
                [*stack, node] if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) else stack,
            )

    visit(tree, [])
    return found


def _library_files() -> list[Path]:
    return sorted(
        p for root in ROOTS for p in (REPO / root).rglob("*.py") if "settings.py" != p.name or "aios_core" not in str(p)
    )


def test_only_entry_points_resolve_settings() -> None:
    offenders = []
    assert len(_library_files()) > 150  # the scan sees every distribution's sources
    for path in _library_files():
        rel = path.relative_to(REPO).as_posix()
        for qual, line, entry in _calls(path):
            if not entry and f"{rel}::{qual}" not in ENTRY_POINTS:
                offenders.append(f"{rel}:{line} in {qual}")
    assert not offenders, "get_settings() below an entry point (take `settings` as a parameter):\n" + "\n".join(
        offenders
    )


def test_the_allowlist_names_real_functions() -> None:
    """A renamed entry point must leave the list, not linger in it as a check that cannot fail."""
    seen = {f"{p.relative_to(REPO).as_posix()}::{q}" for p in _library_files() for q, _l, _e in _calls(p)}
    stale = sorted(set(ENTRY_POINTS) - seen)
    assert not stale, f"entries that no longer call get_settings(): {stale}"


def test_the_scanner_finds_a_deep_call(tmp_path: Path) -> None:
    """The scan itself: a helper that resolves settings is found; a task body and a click command are not."""
    src = tmp_path / "mod.py"
    src.write_text(
        "from flytekit import task\n"
        "import click\n"
        "def helper():\n    return get_settings().actor\n"
        "@task\ndef body():\n    return get_settings()\n"
        "@click.command()\ndef cmd():\n    get_settings()\n"
        "class C:\n    async def do(self):\n        get_settings()\n    def other(self):\n        get_settings()\n"
    )
    got = {(q, e) for q, _l, e in _calls(src)}
    assert got == {("helper", False), ("body", True), ("cmd", True), ("C.do", True), ("C.other", False)}


@pytest.mark.parametrize("name", ["os.environ.get", "os.getenv"])
def test_no_library_module_reads_an_aios_variable_directly(name: str) -> None:
    """``AIOS_*`` settings reach code through Settings; the variables read directly are the documented
    non-settings (build-time, secrets, debug hooks) listed in aios_core/settings.py."""
    from flytekitplugins.aios_core.settings import BUILD_TIME_VARS, DEBUG_VARS, SECRET_VARS

    allowed = {*BUILD_TIME_VARS, *SECRET_VARS, *DEBUG_VARS}
    offenders = []
    for path in _library_files():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and ast.unparse(node.func) == name and node.args:
                arg = node.args[0]
                if isinstance(arg, ast.Constant) and str(arg.value).startswith("AIOS_") and arg.value not in allowed:
                    offenders.append(f"{path.relative_to(REPO)}:{node.lineno} reads {arg.value}")
    assert not offenders, "\n".join(offenders)
