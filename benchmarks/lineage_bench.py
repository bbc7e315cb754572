"""Review report generation and ``aios lineage trace`` at scale, on synthetic decision trails.

Run: ``.venv/bin/python benchmarks/lineage_bench.py [--report-records 100000] [--trace-records 1000000]``
(the full sizes take a while, mostly to write the synthetic trail and to build the edge index once);
``--smoke`` runs 5,000 / 20,000. The trails are ``tests/lineage/synthetic.py``: per document a policy decision
sealing its lineage, an approval request, one or two approval decisions, and an authorization plus a posted
action (every third document rejected), about 5 records a document; one model version with its lineage.

Targets (issue 16): report generation at 100,000 records under 10 s with the file under 20 MB; the trace of
one action under 200 ms at 1,000,000 records (the edge index is built once beforehand, as it is caught up on
read in normal use; its one-off build time is reported separately).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _setup(state: Path) -> None:
    os.environ.update(
        AIOS_STATE_DIR=str(state),
        AIOS_AUDIT_STORE=f"sqlite:///{state}/audit.db",
        AIOS_CONFIG_DIR=str(REPO / "config"),
    )


def _trail(state: Path, records: int) -> tuple[object, list[dict[str, object]], float]:
    from flytekitplugins.aios_audit.stores import open_store
    from tests.lineage.synthetic import write_trail

    store = open_store(f"sqlite:///{state}/audit.db")
    t0 = time.perf_counter()
    docs = write_trail(store, max(1, records // 5), chunk=4000)
    return store, docs, time.perf_counter() - t0


def bench_report(records: int) -> None:
    """Time and size of ``aios lineage report`` (verification included) at ``records`` records."""
    from flytekitplugins.aios_audit.edges import EdgeIndex
    from flytekitplugins.aios_audit.lineage import Tracer
    from flytekitplugins.aios_audit.report import build_report
    from flytekitplugins.aios_audit.verify import verify_store

    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp)
        _setup(state)
        store, _docs, wrote = _trail(state, records)
        n = store.size()  # type: ignore[attr-defined]
        t0 = time.perf_counter()
        tracer = Tracer(store, EdgeIndex.for_store(store, state))  # type: ignore[arg-type]
        t_index = time.perf_counter() - t0
        t0 = time.perf_counter()
        result = verify_store(store)  # type: ignore[arg-type]
        t_verify = time.perf_counter() - t0
        t0 = time.perf_counter()
        page, shown = build_report(tracer, result)
        t_build = time.perf_counter() - t0
        (state / "report.html").write_text(page, encoding="utf-8")
        size = (state / "report.html").stat().st_size
        print(f"report @ {n:,} records (trail written in {wrote:.1f} s, edge index built in {t_index:.1f} s)")
        print(
            f"  verify {t_verify:.2f} s + build {t_build:.2f} s = {t_verify + t_build:.2f} s; file {size / 1e6:.1f} MB"
        )
        print(f"  {shown:,} records in the page; verification {'OK' if result.ok else 'FAILED'}")


def bench_trace(records: int, runs: int = 20) -> None:
    """Latency of ``aios lineage trace <action>`` (the full JSON answer) at ``records`` records."""
    from flytekitplugins.aios_audit.edges import EdgeIndex
    from flytekitplugins.aios_audit.lineage import Tracer
    from flytekitplugins.aios_audit.lineage_cli import trace_doc

    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp)
        _setup(state)
        store, docs, wrote = _trail(state, records)
        n = store.size()  # type: ignore[attr-defined]
        t0 = time.perf_counter()
        tracer = Tracer(store, EdgeIndex.for_store(store, state))  # type: ignore[arg-type]
        t_index = time.perf_counter() - t0
        actions = [str(d["action"]) for d in docs if "action" in d]
        picks = [actions[i * (len(actions) - 1) // max(1, runs - 1)] for i in range(runs)]
        times = []
        for ref in picks:
            t0 = time.perf_counter()
            doc = trace_doc(tracer, ref)
            times.append((time.perf_counter() - t0) * 1000)
            assert doc["cases"] and doc["cases"][0]["outcome"] == "posted"
        p95 = sorted(times)[max(0, int(len(times) * 0.95) - 1)]
        print(f"trace of one action @ {n:,} records (trail written in {wrote:.1f} s, index built in {t_index:.1f} s)")
        print(f"  median {statistics.median(times):.1f} ms, p95 {p95:.1f} ms, max {max(times):.1f} ms over {runs}")


def main() -> None:
    """Run the benchmarks."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--report-records", type=int, default=100_000)
    ap.add_argument("--trace-records", type=int, default=1_000_000)
    ap.add_argument("--smoke", action="store_true", help="5,000 and 20,000 records: a check that it runs")
    a = ap.parse_args()
    if a.smoke:
        a.report_records, a.trace_records = 5_000, 20_000
    bench_report(a.report_records)
    bench_trace(a.trace_records)


if __name__ == "__main__":
    main()
