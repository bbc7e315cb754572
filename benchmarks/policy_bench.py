"""Policy gate benchmarks, baselines side by side in the same run.

1. Decision latency: ``evaluate()`` (cached, schema-validated policy set; full path incl. typing and the
   decision object) vs cedarpy called naively (policy text, schema and entities re-parsed per call),
   plus the raw cedarpy floor with pre-parsed handles; ``evaluate()`` is timed on a new document each call (the full
   path) and on one request asked again (the Cedar engine's verdict cache answers it).
2. Per-task overhead: a trivial flytekit task run locally with and without ``@policy_gate`` (decision +
   durable SQLite audit record, synchronous=FULL).

Run from the repo root:  .venv/bin/python benchmarks/policy_bench.py [--n 2000] [--tasks 400]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flytekitplugins.aios_core.settings import get_settings

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

REQ = {
    "principal": "service:document-pipeline",
    "action": "act_on_document",
    "resource": {"type": "Document", "id": "sha256:0f3c9a"},
    "context": {"amount": 12500.0, "currency": "EUR", "data_class": "personal", "doc_type": "invoice"},
}
REQ["context"]["confidence"] = 0.93


CPU: dict[int, list[float]] = {}  # id(wall list) -> thread CPU times, same calls


def _timed(fn: Callable[[], Any], n: int, into: list[float] | None = None) -> list[float]:
    """Wall times (us) of n calls; thread CPU times go to CPU[id(into)] (load-independent view)."""
    out = into if into is not None else []
    cpu = CPU.setdefault(id(out), [])
    for _ in range(n):
        c, t = time.thread_time_ns(), time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1e6)
        cpu.append((time.thread_time_ns() - c) / 1e3)
    return out


def _pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))]


def _row(name: str, xs: list[float]) -> str:
    c = CPU.get(id(xs), [0.0])
    wall = f"{_pct(xs, 50):.0f} | {_pct(xs, 99):.0f} | {statistics.fmean(xs):.0f}"
    return f"| {name} | {len(xs)} | {wall} | {_pct(c, 50):.0f} | {_pct(c, 99):.0f} |"


def _naive_call() -> Callable[[], Any]:
    import cedarpy

    from flytekitplugins.aios_policy.cedar_load import load_policy_set
    from flytekitplugins.aios_policy.decide import policy_source

    src = policy_source(get_settings())
    ps = load_policy_set(src)
    text = "\n".join(f.read_text() for f in sorted(src.policy_dir.glob("*.cedar")) if "require_approval" not in f.name)
    schema = (src.policy_dir / "schema.cedarschema.json").read_text()
    ents = [*json.loads(str(ps.base_entities)), {"uid": REQ["resource"], "attrs": {}, "parents": []}]
    d = lambda s: {"__extn": {"fn": "decimal", "arg": s}}  # noqa: E731
    ctx = {**REQ["context"], "amount": d("12500.0000"), "confidence": d("0.9300")}
    req = {"principal": {"type": "Service", "id": "document-pipeline"}, "resource": REQ["resource"], "context": ctx}
    req["action"] = {"type": "Action", "id": "act_on_document"}
    floor_ents = ps.base_entities.with_added_json_str(json.dumps(ents[-1:]))

    def naive() -> Any:
        return cedarpy.is_authorized(req, text, json.dumps(ents), schema=schema)

    def floor() -> Any:
        return cedarpy.is_authorized(req, ps.access, floor_ents, schema=ps.schema)

    naive.floor = floor  # type: ignore[attr-defined]
    return naive


def bench_decisions(n: int) -> list[str]:
    from flytekitplugins.aios_policy import evaluate

    assert evaluate(REQ, settings=get_settings()).effect == "require_approval"
    naive = _naive_call()
    assert naive().decision.value == "Allow"
    rows = {"evaluate() cached set, 2 passes, full path": [], "cedarpy naive (re-parse per call), 1 pass": [],
            "cedarpy floor (pre-parsed handles), 1 pass": [],
            "evaluate() of a request seen before (the engine's verdict cache)": []}  # type: dict[str, list[float]]  # fmt: skip
    seq = iter(range(10**9))  # a new document each call: the full path, never the verdict cache

    def fresh() -> Any:
        return evaluate(
            {**REQ, "resource": {"type": "Document", "id": f"sha256:{next(seq):x}"}}, settings=get_settings()
        )

    fns = [fresh, naive, naive.floor, lambda: evaluate(REQ, settings=get_settings())]  # type: ignore[attr-defined]
    for _ in range(10):  # interleave rounds so load on the machine hits all of them alike
        for xs, fn in zip(rows.values(), fns, strict=True):
            _timed(fn, n // 10, xs)
    return [_row(k, v) for k, v in rows.items()]


def bench_tasks(n: int) -> list[str]:
    from benchmarks.policy_bench_tasks import gated_add, plain_add

    os.environ["AIOS_PRINCIPAL"] = "service:document-pipeline"
    assert gated_add(x=1) == 2 and plain_add(x=1) == 2
    plain: list[float] = []
    gated: list[float] = []
    shm: list[float] = []
    disk_store = os.environ["AIOS_AUDIT_STORE"]
    shm_dir = tempfile.mkdtemp(prefix="aios-policy-bench-", dir="/dev/shm") if Path("/dev/shm").is_dir() else None
    try:
        for _ in range(10):
            _timed(lambda: plain_add(x=1), n // 10, plain)
            _timed(lambda: gated_add(x=1), n // 10, gated)
            if shm_dir:  # same gate, audit store on tmpfs: what the gate costs without the disk flush
                os.environ["AIOS_AUDIT_STORE"] = f"sqlite:///{shm_dir}/audit.db"
                _timed(lambda: gated_add(x=1), n // 10, shm)
                os.environ["AIOS_AUDIT_STORE"] = disk_store
    finally:
        os.environ["AIOS_AUDIT_STORE"] = disk_store
        if shm_dir:  # a store left in /dev/shm holds memory until the machine restarts
            shutil.rmtree(shm_dir, ignore_errors=True)
    added = [g - p for g, p in zip(sorted(gated), sorted(plain), strict=True)]
    cp, cg = CPU[id(plain)], CPU[id(gated)]
    wall = f"{_pct(added, 50):.0f} | {_pct(gated, 99) - _pct(plain, 99):.0f} | "
    wall += f"{statistics.fmean(gated) - statistics.fmean(plain):.0f}"
    cpu = f"{_pct(cg, 50) - _pct(cp, 50):.0f} | {_pct(cg, 99) - _pct(cp, 99):.0f}"
    return [
        _row("trivial task, no plugin", plain),
        _row("same task + policy_gate + audit record", gated),
        f"| added by the gate (quantile differences) | {n} | {wall} | {cpu} |",
    ] + ([_row("same gated task, audit store on tmpfs (no disk flush)", shm)] if shm else [])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000, help="decisions per variant")
    ap.add_argument("--tasks", type=int, default=400, help="task runs per variant")
    args = ap.parse_args()
    state = Path(tempfile.mkdtemp(prefix="aios-policy-bench-"))
    os.environ.setdefault("AIOS_STATE_DIR", str(state))
    os.environ.setdefault("AIOS_AUDIT_STORE", f"sqlite:///{state}/audit.db")
    os.environ.setdefault("FLYTE_LOCAL_CACHE_ENABLED", "false")
    head = "| variant | n | wall p50 us | wall p99 us | wall mean us | CPU p50 us | CPU p99 us |\n" + "|---" * 7 + "|"
    try:
        print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")
        print("\n## Decision latency\n" + head)
        print("\n".join(bench_decisions(args.n)))
        print("\n## Per-task overhead (local flytekit execution)\n" + head)
        print("\n".join(bench_tasks(args.tasks)))
    finally:
        shutil.rmtree(state, ignore_errors=True)  # this run's own folder (the store may be elsewhere: the env's)


if __name__ == "__main__":
    main()
