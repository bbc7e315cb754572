"""Run inside a virtual environment holding only flyte-aios-core and flytekitplugins-aios (and what they pull).

``python split_task.py run PRINCIPAL N``: a plain flytekit ``@task`` gated with ``PolicyGate`` runs locally as
PRINCIPAL; prints one JSON line: whether the body ran, the task type flytekit dispatched to, the error if denied.
``python split_task.py core``: imports every module of the governance core and prints which of flytekit, flyte,
torch, transformers and great_expectations that loaded (none is the contract).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def core() -> None:
    import importlib
    import pkgutil

    names = []
    for pkg in ("aios_core", "aios_audit", "aios_policy", "aios_approvals", "aios_catalog"):
        mod = importlib.import_module(f"flytekitplugins.{pkg}")
        names.append(mod.__name__)
        for info in pkgutil.walk_packages(mod.__path__, prefix=f"{mod.__name__}."):
            importlib.import_module(info.name)
            names.append(info.name)
    heavy = ("flytekit", "flyte", "torch", "transformers", "great_expectations", "pandas", "pandera")
    print(json.dumps({"modules": len(names), "loaded": [m for m in heavy if m in sys.modules]}))


def run(principal: str, n: int) -> None:
    from flytekitplugins.aios_core.errors import GovernanceDenied

    out: dict[str, object] = {"task_type": increment.task_type, "plugin_loaded": LOADED_BY_FLYTEKIT}
    try:
        out["result"] = increment(n=n)
    except GovernanceDenied as exc:
        out["denied"] = str(exc)
    out["ran"] = _marker().exists()
    print(json.dumps(out))


def _marker() -> Path:
    return Path(os.environ["AIOS_STATE_DIR"]) / f"acted-{os.environ['AIOS_PRINCIPAL'].replace(':', '-')}"


if __name__ == "__main__" and sys.argv[1] == "run":
    os.environ["AIOS_PRINCIPAL"] = sys.argv[2]
if sys.argv[1:2] == ["run"] or __name__ != "__main__":
    # a plain flytekit task (module level, as flytekit requires); PolicyGate is dispatched to the plugin's task
    # type because `import flytekit` loaded flytekitplugins-aios through its entry point
    from flytekit import task

    # flytekit imported the plugin itself, through the flytekit.plugins entry point (nothing here imported it yet)
    LOADED_BY_FLYTEKIT = "flytekitplugins.aios" in sys.modules
    from flytekitplugins.aios import PolicyGate

    @task(task_config=PolicyGate(action="run_task", resource=lambda **i: {"type": "Task", "id": "split.increment"}))
    def increment(n: int) -> int:
        _marker().write_text(str(n))
        return n + 1


if __name__ == "__main__":
    if sys.argv[1] == "core":
        core()
    else:
        run(sys.argv[2], int(sys.argv[3]))
