"""Latency from an approval decision to the local workflow resuming, plus the cost of the approval operations.

Run: ``.venv/bin/python benchmarks/approvals_bench.py [--runs 20]`` (about a minute). The workflow runs in this
process (``tests/approvals/approval_wf.py``, launched by user:bob) and waits at its ``payment-signoff`` gate; a
second process, ``aios approvals approve <id> --as user:carol``, decides. Latency is measured on the audit
trail's own timestamps: from the commit of the ``approval_decision`` record to the commit of the
``approval_verified`` record written by the step after the gate (so it covers the gate noticing the decision,
the node finishing, and the verification task running), not the CLI's start-up.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from flytekitplugins.aios_approvals.evaluate import Env
from flytekitplugins.aios_core.settings import get_settings

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _setup(state: Path) -> None:
    os.environ.update(
        AIOS_STATE_DIR=str(state),
        AIOS_AUDIT_STORE=f"sqlite:///{state}/audit.db",
        AIOS_CONFIG_DIR=str(REPO / "config"),
        AIOS_PRINCIPAL="user:bob",
        FLYTE_SDK_LOGGING_LEVEL="40",
    )


def _approve_from_second_process(stop: threading.Event) -> None:
    from flytekitplugins.aios_approvals.state import projection
    from flytekitplugins.aios_audit import audit_log

    seen: set[str] = set()
    while not stop.is_set():
        for rid, st in list(projection(audit_log(get_settings())).requests.items()):
            if rid not in seen and not st.decisions:
                seen.add(rid)
                env = dict(os.environ, AIOS_PRINCIPAL="")
                subprocess.run(
                    [str(Path(sys.executable).parent / "aios"), "approvals", "approve", rid, "--as", "user:carol"],
                    env=env,
                    check=True,
                    capture_output=True,
                )
        time.sleep(0.05)


def _latencies() -> list[float]:
    from flytekitplugins.aios_audit import audit_log

    decided: dict[str, float] = {}
    out: list[float] = []
    for rec in audit_log(get_settings()).scan():
        if rec.event.kind == "approval_decision":
            decided[rec.event.subject] = rec.recorded_at.timestamp()
        elif rec.event.kind == "approval_verified" and rec.event.subject in decided and rec.event.status == "approved":
            out.append(rec.recorded_at.timestamp() - decided.pop(rec.event.subject))
    return out


def _ops(n: int) -> dict[str, float]:
    from flytekitplugins.aios_approvals import decide, open_request, outcome

    t = time.perf_counter()
    ids = [
        open_request(
            "payment-signoff",
            "medium",
            f"sha256:op{i}",
            {"amount": i},
            requester="service:b",
            env=Env.load(get_settings()),
        )
        for i in range(n)
    ]
    t_open = (time.perf_counter() - t) / n
    t = time.perf_counter()
    for rid in ids:
        decide(rid, "user:carol", "approve", env=Env.load(get_settings()))
    t_decide = (time.perf_counter() - t) / n
    t = time.perf_counter()
    for rid in ids:
        outcome(rid, env=Env.load(get_settings()))
    t_outcome = (time.perf_counter() - t) / n
    return {"open_request": t_open, "decide": t_decide, "outcome": t_outcome}


def _percentile(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--ops", type=int, default=200)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="aios-approvals-bench-"))
    try:
        _run(folder, args.runs, args.ops)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _run(folder: Path, runs: int, ops: int) -> None:
    _setup(folder)
    from tests.approvals import approval_wf

    stop = threading.Event()
    decider = threading.Thread(target=_approve_from_second_process, args=(stop,), daemon=True)
    decider.start()
    wall = time.perf_counter()
    from flytekitplugins.aios_core.context import local_run

    try:
        for i in range(runs):
            with local_run(f"bench-{i}"):
                assert approval_wf.payment_wf(amounts=[20_000 + i]) == (0, 1)
    finally:
        stop.set()
    wall = time.perf_counter() - wall
    lat = _latencies()
    assert len(lat) == runs, lat
    ms = [x * 1000 for x in lat]
    print(f"decision -> workflow resumed and verified, {len(ms)} runs (poll interval 100 ms):")
    print(
        f"  p50 {statistics.median(ms):.0f} ms  p95 {_percentile(ms, 0.95):.0f} ms  max {max(ms):.0f} ms"
        f"  mean {statistics.mean(ms):.0f} ms"
    )
    print(f"  wall for {runs} gated runs incl. CLI start-up: {wall:.1f} s")
    for name, secs in _ops(ops).items():
        print(f"  {name}: {secs * 1000:.2f} ms/op ({ops} ops, durable SQLite)")


if __name__ == "__main__":
    main()
