"""``aios lineage trace`` and the report of one execution on a large realistic trail (projections_bench's).

    .venv/bin/python benchmarks/lineage_trail_bench.py --trail /tmp/aios-trails/trail-10000000.db \\
        --checkpoint CHECKPOINT.json [--runs 20]
    .venv/bin/python benchmarks/lineage_trail_bench.py --env [--checkpoint CHECKPOINT.json] [--runs 20]
        # the store the environment names (a PostgreSQL trail, in the environment projections_bench.py built it in)

Lineage is read from the trail's lineage projection (written with every record); a trail built before it has the
projection filled by ``aios audit rebuild-projections``, or else is read through the older index file, brought up
to date first (built once per trail: its time is reported). Then:

* **trace, in process**: ``trace_doc`` (the whole JSON answer of ``aios lineage trace --json``) of ``--runs``
  policy decisions spread over the trail, one after the other in one process: median, p95, max;
* **trace, fresh process**: ``aios lineage trace REF --json`` as a person runs it (imports included): median wall
  time and peak RSS of 5;
* **report of one execution**: ``aios lineage report --execution KEY --checkpoint CHECKPOINT`` for an execution
  near the end of the trail, in a fresh process: median wall time and peak RSS of 3. The checkpoint is one a full
  verification signed (``aios audit checkpoint``, run once beforehand: the scheduled deep check); the report
  verifies the records after it. Without ``--checkpoint`` (``--env`` only) the report is left out.

The trail's records are the issue's mix (policy decisions, task records, approval requests and decisions, catalog
entries): a policy decision's trace reaches its document and the task records that read it.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from projections_bench import BIN, _env, compile_pack, measure  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    trail = ap.add_mutually_exclusive_group(required=True)
    trail.add_argument("--trail", type=Path, help="a SQLite trail file (projections_bench.py's)")
    trail.add_argument("--env", action="store_true", help="the trail the environment names (AIOS_AUDIT_STORE, ...)")
    ap.add_argument("--checkpoint", type=Path, help="a checkpoint of the trail (aios audit checkpoint)")
    ap.add_argument("--runs", type=int, default=20)
    args = ap.parse_args()
    if args.trail is not None and args.checkpoint is None:
        ap.error("--trail needs --checkpoint")
    env = _env(args.trail) if args.trail is not None else dict(os.environ)
    os.environ.update(env)
    compile_pack(REPO)  # the command's fresh processes read the pack's bytecode, not its source
    from flytekitplugins.aios_audit.api import audit_log
    from flytekitplugins.aios_audit.edges import EdgeIndex
    from flytekitplugins.aios_audit.lineage import Tracer
    from flytekitplugins.aios_audit.lineage_cli import trace_doc
    from flytekitplugins.aios_core.settings import get_settings

    settings = get_settings()
    store = audit_log(settings, emit=False)
    size = store.size()
    t0 = time.perf_counter()
    tracer = Tracer(store, EdgeIndex.for_store(store, settings.state_dir))
    t_index = time.perf_counter() - t0
    from_projection = not isinstance(tracer.index, EdgeIndex)
    refs: list[str] = []
    for i in range(args.runs):
        at = 1 + (size - 1) * i // max(1, args.runs - 1)
        q = "SELECT leaf_hash FROM audit_log WHERE seq >= ? AND kind = 'policy_decision' ORDER BY seq LIMIT 1"
        rows = store.read_sql(q, (min(at, size - 200),))
        if rows:
            refs.append(str(rows[0][0]))
    # one of the trail's runs (500 records), 20,000 records before the build's last (records appended after the build,
    # such as other benchmarks' governance calls, name other executions)
    q = "SELECT seq FROM audit_log WHERE execution LIKE 'aios/production/run-%' ORDER BY seq DESC LIMIT 1"
    built = int(store.read_sql(q, ())[0][0])
    q = "SELECT execution FROM audit_log WHERE seq > ? AND execution LIKE 'aios/production/run-%' ORDER BY seq LIMIT 1"
    execution = str(store.read_sql(q, (built - 20_000,))[0][0])
    times = []
    edges = 0
    for ref in refs:
        t0 = time.perf_counter()
        doc = trace_doc(tracer, ref, settings)
        times.append((time.perf_counter() - t0) * 1e3)
        edges += len(doc["typed_edges"])
        assert doc["start"] and (doc["upstream"] or doc["downstream"] or doc["cases"]), f"empty trace of {ref}"
    p95 = sorted(times)[max(0, int(len(times) * 0.95) - 1)]
    trace_cmd = [str(BIN / "aios"), "lineage", "trace", refs[-1], "--json"]
    fresh = sorted((measure(trace_cmd, env, 600) for _ in range(5)), key=lambda m: m.get("wall_s", 1e9))
    reports: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        rep = [str(BIN / "aios"), "lineage", "report", "--out", f"{tmp}/run.html", "--execution", execution]
        if args.checkpoint is not None:
            reports = sorted(
                (measure([*rep, "--checkpoint", str(args.checkpoint)], env, 900) for _ in range(3)),
                key=lambda m: m.get("wall_s", 1e9),
            )
    load = os.getloadavg()
    kind = store.dialect or "?"
    print(
        f"Host: {platform.node()}, {os.cpu_count()} CPUs; load average {load[0]:.2f} at the end; {kind} trail {size:,}."
    )
    print("")
    print("| measure | figure |")
    print("|---|---|")
    source = (
        "the store's lineage projection (written with each record)" if from_projection else "the lineage index file"
    )
    print(f"| lineage read from | {source}; brought up to date before the runs in {t_index:.1f} s |")
    print(
        f"| trace of one policy decision, in process ({len(times)} spread over the trail) | median "
        f"{statistics.median(times):.1f} ms, p95 {p95:.1f} ms, max {max(times):.1f} ms "
        f"({edges / max(1, len(times)):.1f} typed edges a trace) |"
    )
    m = fresh[len(fresh) // 2]
    print(f"| `aios lineage trace REF --json`, fresh process (median of 5) | {_cell(m)} |")
    if reports:
        m = reports[len(reports) // 2]
        print(f"| `aios lineage report --execution {execution} --checkpoint CP` (median of 3) | {_cell(m)} |")


def _cell(m: dict[str, object]) -> str:
    if "error" in m:
        return f"error: {m['error']}"
    return f"{m['wall_s']:.2f} s, {m['rss_mb']:.0f} MB"


if __name__ == "__main__":
    main()
