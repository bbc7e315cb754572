"""What integrating a staged PostgreSQL append costs the writers' CPU: alone, and among sixteen writers.

    .venv/bin/python benchmarks/pg_integration_cpu.py [--writers 16] [--seconds 3] [--rounds 2] [--n 3000]

1. Alone, one connection, ``--n`` calls each: the client CPU (``time.process_time``) of a plain insert of the event's
   bytes, of ``pg_integrate.stage`` and of ``store.stage_many`` (no integration tries), then of integrating the
   staged rows in one drain (``store.integrate_staged``), per record.
2. Among ``--writers`` writer processes (``pg_sequencing_bench.run_writers``), rounds of plain inserts and of
   ``store.stage_many`` alternating: appends/s, the machine's CPU per append (``/proc/stat``), the writers' own CPU
   per append and, of it, the CPU the writers spent inside ``pg_integrate.integrate_rows`` (their integration tries).

Needs the server at AIOS_TEST_PG_URL; everything runs in a schema of its own, dropped afterwards.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "plugins" / "flyte-aios-core"), str(REPO), str(REPO / "benchmarks")]

import pg_sequencing_bench as seqb  # noqa: E402
import psycopg  # noqa: E402
from pg_cost_split import _busy_ticks  # noqa: E402

from flytekitplugins.aios_audit.records import _to_json  # noqa: E402
from flytekitplugins.aios_audit.stores import open_store  # noqa: E402
from flytekitplugins.aios_audit.stores import pg_integrate as pgi  # noqa: E402

_SPENT = {"cpu": 0.0}
_integrate_rows = pgi.integrate_rows


def _counted(conn: Any, own: int | None = None, gap: float = 0.0) -> str | None:
    c = time.process_time()
    try:
        return _integrate_rows(conn, own, gap)
    finally:
        _SPENT["cpu"] += time.process_time() - c


def _busy_seconds() -> float:
    return _busy_ticks() / os.sysconf("SC_CLK_TCK")


def _worker(kind: str, url: str, w: int, seconds: float, barrier: Any, out: Any) -> None:
    """``pg_sequencing_bench._worker``, its own CPU and its integration CPU written to a file of the round."""
    _SPENT["cpu"] = 0.0
    pgi.integrate_rows = _counted
    c0 = time.process_time()
    seqb._worker(kind, url, w, seconds, barrier, out)
    Path(os.environ["AIOS_BENCH_SPLIT_DIR"], f"{w}").write_text(f"{time.process_time() - c0} {_SPENT['cpu']}")


def alone(url: str, n: int) -> dict[str, float]:
    """Client CPU per call (us) on one connection."""
    store = open_store(url)
    conn = psycopg.connect(url, autocommit=True)
    events = [seqb._event(0, i) for i in range(n)]
    out: dict[str, float] = {}
    c = time.process_time()
    for e in events:
        conn.execute("INSERT INTO plain (entry) VALUES (%b)", (_to_json(e),))
    out["plain insert"] = (time.process_time() - c) / n * 1e6
    c = time.process_time()
    for e in events:
        pgi.stage(store._conn(), [e], integrate=False)
    out["pg_integrate.stage"] = (time.process_time() - c) / n * 1e6
    c = time.process_time()
    store.integrate_staged()
    out["integration of those rows, one drain, per record"] = (time.process_time() - c) / n * 1e6
    conn.close()
    store.close()
    return out


def among(url: str, writers: int, seconds: float, kind: str) -> str:
    with tempfile.TemporaryDirectory(prefix="aios-split-") as tmp:
        os.environ["AIOS_BENCH_SPLIT_DIR"] = tmp
        t0 = _busy_seconds()
        got, wall = seqb.run_writers(_worker, kind, url, writers, seconds)
        machine = _busy_seconds() - t0
        split = [[float(x) for x in p.read_text().split()] for p in Path(tmp).iterdir()]
    n = sum(len(lat) for lat in got)
    own, integ = sum(s[0] for s in split), sum(s[1] for s in split)
    store = open_store(url)
    store.integrate_staged()  # what the round left staged, outside the clock
    store.close()
    return (
        f"{kind:6s} {n / wall:>7,.0f}/s  machine {machine / n * 1e6:4.0f} us an append, writers {own / n * 1e6:4.0f}"
        f" us, of it integrating {integ / n * 1e6:4.1f} us"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--writers", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--n", type=int, default=3000)
    args = ap.parse_args()
    with seqb.bench_schema("aios_intcpu") as url:
        print("alone, client CPU per call:")
        for k, v in alone(url, args.n).items():
            print(f"  {v:6.1f} us  {k}")
        print(f"\n{args.writers} writer processes:")
        for _ in range(args.rounds):
            for kind in ("plain", "staged"):
                print(" ", among(url, args.writers, args.seconds, kind), flush=True)


if __name__ == "__main__":
    main()
