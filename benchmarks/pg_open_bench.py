"""Opening a PostgreSQL audit store while writer processes append to the same log: how long an open takes.

    .venv/bin/python benchmarks/pg_open_bench.py [--writers 0,8] [--opens 30] [--code WORKTREE]

For each writer count, N processes append sealed records (``store.append``) to a fresh schema while this process
opens the store ``--opens`` times (a fresh ``PostgresAuditStore`` each: connect, then whatever the open does), 50 ms
apart; then the writers' own rate over 2 s without opens. ``--code DIR`` runs the same with another checkout of the
pack (a ``git worktree`` of the baseline), so both are measured in the same minutes. Needs the server at
AIOS_TEST_PG_URL.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BASE = os.environ.get("AIOS_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


def _writer(url: str, w: int, stop: object) -> None:
    from flytekitplugins.aios_audit import AuditEvent
    from flytekitplugins.aios_audit.stores import open_store

    store, i = open_store(url), 0
    while not stop.is_set():  # type: ignore[attr-defined]
        store.append(AuditEvent(kind="task", actor=f"service:w{w}", status="succeeded", inputs={"x": f"{i:064x}"}))
        i += 1


def measure(writers: int, opens: int) -> dict[str, float]:
    """Open latencies (ms) with ``writers`` appending, and the writers' rate without opens."""
    import psycopg

    from flytekitplugins.aios_audit.stores import open_store
    from flytekitplugins.aios_audit.stores.postgres import PostgresAuditStore

    schema = f"aios_open_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(BASE, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    url = f"{BASE}{'&' if '?' in BASE else '?'}options=-csearch_path%3D{schema}"
    try:
        open_store(url).close()
        stop = mp.Event()
        procs = [mp.Process(target=_writer, args=(url, w, stop)) for w in range(writers)]
        for p in procs:
            p.start()
        time.sleep(2.0 if writers else 0.0)
        ms = []
        for _ in range(opens):
            t0 = time.perf_counter()
            PostgresAuditStore(url).close()
            ms.append(1e3 * (time.perf_counter() - t0))
            time.sleep(0.05)
        with psycopg.connect(url, autocommit=True) as conn:
            n0 = conn.execute("SELECT count(*) FROM audit_log").fetchone()[0]
            time.sleep(2.0)
            n1 = conn.execute("SELECT count(*) FROM audit_log").fetchone()[0]
        stop.set()
        for p in procs:
            p.join()
    finally:
        with psycopg.connect(BASE, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")
    ms.sort()
    return {
        "writers": writers,
        "open_ms_median": round(statistics.median(ms), 2),
        "open_ms_p90": round(ms[int(0.9 * (len(ms) - 1))], 2),
        "open_ms_max": round(ms[-1], 2),
        "writer_appends_per_s": round((n1 - n0) / 2.0, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--writers", default="0,8")
    ap.add_argument("--opens", type=int, default=30)
    ap.add_argument("--code", type=Path, default=None, help="checkout to measure (default: this one)")
    args = ap.parse_args()
    if args.code is not None:
        from trail_commands import code_env  # this folder's: the same PYTHONPATH for a baseline's worktree

        cmd = [sys.executable, __file__, "--writers", args.writers, "--opens", str(args.opens)]
        subprocess.run(cmd, env=code_env(args.code.resolve()), check=True)
        return
    for n in (int(x) for x in args.writers.split(",")):
        from flytekitplugins.aios_audit.stores import postgres

        print(json.dumps({"code": str(Path(postgres.__file__).parents[5]), **measure(n, args.opens)}), flush=True)


if __name__ == "__main__":
    main()
