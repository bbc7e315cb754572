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
import contextlib
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from flytekitplugins.aios_core.settings import get_settings

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _setup(state: Path) -> None:
    os.environ.update(
        AIOS_STATE_DIR=str(state),
        AIOS_AUDIT_STORE=f"sqlite:///{state}/audit.db",
        AIOS_CONFIG_DIR=str(REPO / "config"),
    )


def _trail(state: Path, records: int) -> tuple[object, list[dict[str, object]], float]:
    """The synthetic trail in ``state`` (reused when a cached one is complete: ``docs.json`` is written last)."""
    import json

    from flytekitplugins.aios_audit.stores import open_store
    from tests.lineage.synthetic import write_trail

    done = state / "docs.json"
    if done.is_file():
        return open_store(f"sqlite:///{state}/audit.db"), json.loads(done.read_text()), float("nan")
    for stale in state.glob("*"):
        if stale.is_file():
            stale.unlink()
    store = open_store(f"sqlite:///{state}/audit.db")
    t0 = time.perf_counter()
    docs = write_trail(store, max(1, records // 5), chunk=4000)
    wrote = time.perf_counter() - t0
    done.write_text(json.dumps(docs, default=str))
    return store, docs, wrote


@contextlib.contextmanager
def _state_dir(cache: Path | None, records: int) -> Iterator[Path]:
    """A temporary state dir, or ``cache/trail-<records>`` kept between runs (build once, time many times)."""
    if cache is None:
        with tempfile.TemporaryDirectory() as tmp:
            yield Path(tmp)
        return
    state = cache / f"trail-{records}"
    state.mkdir(parents=True, exist_ok=True)
    yield state


def bench_report(records: int, cache: Path | None = None) -> None:
    """Time and size of ``aios lineage report`` (verification included) at ``records`` records."""
    from flytekitplugins.aios_audit.edges import EdgeIndex
    from flytekitplugins.aios_audit.lineage import Tracer
    from flytekitplugins.aios_audit.report import build_report
    from flytekitplugins.aios_audit.verify import verify_store

    with _state_dir(cache, records) as state:
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
        page, shown = build_report(tracer, result, get_settings())
        t_build = time.perf_counter() - t0
        (state / "report.html").write_text(page, encoding="utf-8")
        size = (state / "report.html").stat().st_size
        print(f"report @ {n:,} records (trail written in {wrote:.1f} s, edge index built in {t_index:.1f} s)")
        print(
            f"  verify {t_verify:.2f} s + build {t_build:.2f} s = {t_verify + t_build:.2f} s; file {size / 1e6:.1f} MB"
        )
        print(f"  {shown:,} records in the page; verification {'OK' if result.ok else 'FAILED'}")


def bench_trace(records: int, runs: int = 20, cache: Path | None = None) -> None:
    """Latency of ``aios lineage trace <action>`` (the full JSON answer) at ``records`` records."""
    from flytekitplugins.aios_audit.edges import EdgeIndex
    from flytekitplugins.aios_audit.lineage import Tracer
    from flytekitplugins.aios_audit.lineage_cli import trace_doc

    with _state_dir(cache, records) as state:
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
            doc = trace_doc(tracer, ref, get_settings())
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
    ap.add_argument("--cache", type=Path, default=None, help="keep the trails here and reuse them (outside the repo)")
    ap.add_argument("--only", choices=("report", "trace", "both"), default="both")
    a = ap.parse_args()
    if a.smoke:
        a.report_records, a.trace_records = 5_000, 20_000
    if a.only in ("report", "both"):
        bench_report(a.report_records, a.cache)
    if a.only in ("trace", "both"):
        bench_trace(a.trace_records, cache=a.cache)


if __name__ == "__main__":
    main()
