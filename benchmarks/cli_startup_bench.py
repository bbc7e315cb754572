"""Start-up of the ``aios`` commands with and without the pack's bytecode, in fresh processes, arms alternating.

    .venv/bin/python benchmarks/cli_startup_bench.py [--rounds 7] [--trail]

Where Python does not write bytecode (``PYTHONDONTWRITEBYTECODE=1``, as on this project's machines) and nothing
compiled the pack, every ``aios`` command compiles each of the pack's modules it imports, on every start: an
editable install leaves the pack as source (a wheel's installer compiles it; ``scripts/setup.sh`` now does too).
Both arms run with bytecode writing off and read the same compiled standard library and third-party modules (a
cache folder primed by one run of each command, ``PYTHONPYCACHEPREFIX``); they differ only in the pack's own
modules: ``source`` lacks them (compiled at each start: the baseline, a setup before this change), ``bytecode``
has them (``scripts/setup.sh``'s ``compileall``). The floors are ``python -c pass``, ``import pydantic`` and one
pydantic model class built (``pydantic, one model``): every command that reads settings or records pays the last.

The commands run against a small trail this script builds in a temporary folder (1,000 records through the pack's
own append API) or, with ``--trail``, the store the environment names (``AIOS_AUDIT_STORE``, ``AIOS_STATE_DIR``,
``AIOS_CONFIG_DIR``: a trail ``projections_bench.py`` built). Reports each command's median and fastest wall time
per arm, and its peak memory.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
AIOS = Path(sys.executable).with_name("aios")


def _small_trail(state: Path) -> dict[str, str]:
    """The environment of a 1,000-record trail built in ``state`` (an execution's task and policy records)."""
    from flytekitplugins.aios_audit import AuditEvent
    from flytekitplugins.aios_audit.stores import open_store
    from flytekitplugins.aios_core.context import ExecutionRef

    store = open_store(f"sqlite:///{state}/audit.db")
    for b in range(10):
        ex = ExecutionRef(project="aios", domain="production", name=f"run-{b}", task_name="t.classify", node_id="n0")
        store.append_many(
            [
                AuditEvent(
                    kind="policy_decision" if i % 3 else "task",
                    actor="service:document-pipeline",
                    status="allowed" if i % 3 else "succeeded",
                    subject=f"doc-{b}-{i}",
                    execution=ex,
                    inputs={"document": f"sha256:{b * 1000 + i:064x}"},
                )
                for i in range(100)
            ]
        )
    return {
        "AIOS_STATE_DIR": str(state),
        "AIOS_AUDIT_STORE": f"sqlite:///{state}/audit.db",
        "AIOS_CONFIG_DIR": str(REPO / "config"),
        "AIOS_PRINCIPAL": "user:bob",
    }


PYDANTIC_MODEL = "from pydantic import BaseModel\nclass Floor(BaseModel):\n    a: int = 1\n"


def _newest_id(env: dict[str, str]) -> str:
    """The id of the trail's newest record (``aios audit show --json`` prints JSON lines)."""
    cmd = [str(AIOS), "audit", "show", "--limit", "1", "--json"]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    return str(json.loads(out.splitlines()[-1])["leaf_hash"])  # a record's id is its leaf hash


def _run(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of ``cmd`` in a fresh process; a failure stops the benchmark."""
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=tempfile.gettempdir(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    err = proc.stderr.read().decode() if proc.stderr is not None else ""
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {err.strip()[-500:]}")
    return wall, usage.ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=7, help="runs of each command in each arm, alternating")
    ap.add_argument("--trail", action="store_true", help="use the store the environment names, not a small trail")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="aios-startup-"))
    try:
        if args.trail:
            env = dict(os.environ)
        else:
            (work / "state").mkdir(mode=0o700)
            env = {**os.environ, **_small_trail(work / "state")}
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        record = _newest_id(env)
        commands = {
            "python -c pass": [sys.executable, "-c", "pass"],
            # the floor of every command that reads settings or records (both pydantic models): pydantic imported,
            # then its first model class built (which imports the rest of pydantic and scans for its plugins)
            "import pydantic": [sys.executable, "-c", "import pydantic"],
            "pydantic, one model": [sys.executable, "-c", PYDANTIC_MODEL],
            "aios --help": [str(AIOS), "--help"],
            "aios lineage trace": [str(AIOS), "lineage", "trace", record],
            "aios audit show --limit 50": [str(AIOS), "audit", "show", "--limit", "50"],
            "aios approvals list": [str(AIOS), "approvals", "list"],
        }
        full, bare = work / "pyc-full", work / "pyc-no-pack"
        for cmd in commands.values():  # prime: every module each command imports, compiled once
            _run(cmd, {**env, "PYTHONPYCACHEPREFIX": str(full)})
        shutil.copytree(full, bare)
        # the pack's own modules: those compiled from this checkout, but for its virtual environment's (third-party)
        venv = Path(sys.prefix).resolve()
        mirror = bare / REPO.relative_to(REPO.anchor)
        pack = [p for p in mirror.iterdir() if not (venv == REPO / p.name or venv.is_relative_to(REPO / p.name))]
        if not any((p / "flyte-aios-core").is_dir() for p in pack):
            raise SystemExit(f"no compiled pack modules under {mirror}: is the pack installed from {REPO}?")
        for p in pack:
            shutil.rmtree(p)
        arms = {"source": bare, "bytecode": full}
        res: dict[tuple[str, str], list[tuple[float, float]]] = {}
        for _ in range(args.rounds):
            for name, cmd in commands.items():
                for arm, prefix in arms.items():
                    arm_env = {**env, "PYTHONPYCACHEPREFIX": str(prefix), "PYTHONDONTWRITEBYTECODE": "1"}
                    res.setdefault((name, arm), []).append(_run(cmd, arm_env))
        print(f"{'command':30s} {'arm':9s} {'median s':>9s} {'fastest':>8s} {'peak MB':>8s}")
        for (name, arm), runs in res.items():
            walls, peak = [w for w, _ in runs], max(m for _, m in runs)
            print(f"{name:30s} {arm:9s} {statistics.median(walls):9.3f} {min(walls):8.3f} {peak:8.1f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
