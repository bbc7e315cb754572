"""Where a PostgreSQL staged append's cost goes: machine CPU per append of 16 writer processes, by variant.

    .venv/bin/python benchmarks/pg_cost_split.py [--writers 16] [--seconds 5] [--rounds 2]

Every variant runs between two plain rounds; its ratio is to their mean (this VM's speed drifts within seconds).

For each variant, N writer PROCESSES run for ``--seconds``, released together; reported: appends/s, the writers'
own CPU per append (``time.process_time``) and the rest of the machine's CPU per append (``/proc/stat``: the server
backends, the WAL writer and anything else), beside the plain insert of the same round. On a machine where the
writers and the server share the cores, appends/s follow the total CPU per append.

* ``plain``: the plain insert ``pg_sequencing_bench.py`` compares with (the event's JSON bytes, one column, a binary
  parameter);
* ``stage``: ``store.stage_many([event])``, the durable acknowledgement (the event's bytes staged, and every 0.2 s
  per writer an attempt to integrate everything staged), as ``pg_sequencing_bench.py`` measures it;
* ``stage, no integration``: the same staged inserts with no writer integrating (the rows are integrated after the
  round, outside the clock, before the next round starts): the writers' share alone;
* ``staged row as one text``: what an ``append`` stages (event bytes, the four columns, the lineage rows, derived
  by the writer) inserted as one text column into a scratch table;
* ``event bytes only``: only the event's canonical bytes, a binary parameter, into a scratch table: the staged
  insert without the store's call and the array format.
* ``stage, bare SQL``: what ``stage`` does (the store's own staged insert, the same statement, then every 0.2 s
  per writer :func:`pg_integrate.integrate_rows`, in a transaction) called directly on a connection, without the
  store's ``stage_many`` around it: the store's Python call apart, the floor of the staged design's writer side.

The last two write a scratch table nothing reads: they are measurements of a format, not a store. Needs the server
at AIOS_TEST_PG_URL; everything runs in a schema of its own, dropped afterwards.

With ``--bare-log`` every variant runs on a log stripped to its primary keys: ``audit_log`` without its secondary
indexes (kind, execution, recorded_at, actor), its leaf-hash uniqueness and its chain trigger, the lineage projection
without its two indexes. That is no store (nothing checks the chain, readers would scan): it measures what the log's
own indexes and trigger cost the staged path, in a run to compare with one without the flag.

With ``--perf`` (Linux ``perf`` installed, allowed to sample the whole machine) each round is also sampled with ``perf
record -a`` from half a second after the release to a second before its end, and its CPU per append is split by
process and binary: the writers' Python interpreter (``libpython``), the rest of the writers' user space (pydantic,
psycopg, libpq, libc, ...), the writers' kernel time, the server's user space, the server's kernel time, and the
rest (idle excluded). A share of the samples of all CPUs is a share of ``CPUs x window`` seconds, so a category's
microseconds an append is ``share x CPUs / appends per second``.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "plugins" / "flyte-aios-core"), str(REPO), str(REPO / "benchmarks")]

import psycopg  # noqa: E402
from pg_sequencing_bench import _event, bench_schema, run_writers  # noqa: E402

from flytekitplugins.aios_audit.records import _to_json  # noqa: E402
from flytekitplugins.aios_audit.stores import open_store  # noqa: E402
from flytekitplugins.aios_audit.stores import pg_integrate as pgi  # noqa: E402

VARIANTS = ("plain", "stage", "stage, no integration", "staged row as one text", "event bytes only", "stage, bare SQL")


def _busy_ticks() -> int:
    """Non-idle CPU ticks of the whole machine (user, nice, system, irq, softirq, steal)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return sum(v[:3]) + sum(v[5:8])


def _worker(variant: str, url: str, w: int, seconds: float, barrier: Any, out: Any) -> None:
    store = open_store(url) if variant in ("stage", "stage, no integration") else None
    if variant == "stage, no integration" and store is not None:
        store._local.integrated_at = float("inf")  # this writer never integrates
    conn = psycopg.connect(url, autocommit=True)
    n, tried = 0, -1e9
    barrier.wait()
    end, cpu0 = time.perf_counter() + seconds, time.process_time()
    while time.perf_counter() < end:
        ev = _event(w, n)
        if variant == "plain":
            conn.execute("INSERT INTO plain (entry) VALUES (%b)", (ev.model_dump_json().encode(),))
        elif store is not None:
            store.stage_many([ev])
        elif variant == "stage, bare SQL":
            conn.execute(pgi._raw_sql(1), (_to_json(ev),)).fetchone()
            if (now := time.monotonic()) - tried >= pgi.STAGE_INTEGRATE_EVERY_S:
                tried = now
                with conn.transaction():
                    pgi.integrate_rows(conn, gap=pgi.STAGE_INTEGRATE_EVERY_S)
        elif variant == "staged row as one text":
            blobs, cols, lin = pgi._staged_row([ev])  # the staged row's exact content
            text = blobs[0].decode() + "\x1e" + "\x1f".join(cols) + "\x1e" + str(lin)
            conn.execute("INSERT INTO scratch (payload) VALUES (%s) RETURNING id", (text,)).fetchone()
        else:
            conn.execute("INSERT INTO scratch_bytes (payload) VALUES (%b) RETURNING id", (_to_json(ev),)).fetchone()
        n += 1
    out.put((n, time.process_time() - cpu0))
    conn.close()
    if store is not None:
        store.close()


PERF_SPLIT = (
    "writers: Python interpreter",
    "writers: other user space",
    "writers: kernel",
    "server: user space",
    "server: kernel",
    "rest",
)


def _perf_split(data: str) -> dict[str, float]:
    """Shares (0-1) of a ``perf record -a`` file's samples by :data:`PERF_SPLIT` category, idle (``swapper``) left out
    of every category."""
    out = dict.fromkeys(PERF_SPLIT, 0.0)
    report = subprocess.run(
        ["perf", "report", "-i", data, "--stdio", "--sort", "comm,dso"], capture_output=True, text=True, check=True
    ).stdout
    for m in re.finditer(r"^\s+([0-9.]+)%\s+(\S+)\s+(\S+)", report, re.M):
        share, comm, dso = float(m.group(1)) / 100, m.group(2), m.group(3)
        kernel = dso.startswith("[kernel")
        if comm == "swapper":
            continue
        if comm == "python":
            key = "writers: kernel" if kernel else "writers: other user space"
            key = "writers: Python interpreter" if dso.startswith("libpython") else key
        elif comm == "postgres":
            key = "server: kernel" if kernel else "server: user space"
        else:
            key = "rest"
        out[key] += share
    return out


def _round(variant: str, url: str, writers: int, seconds: float, perf: bool = False) -> dict[str, float]:
    ticks: list[int] = []  # counted from the release (the writers' connections are made before it)
    tmp = tempfile.mkdtemp(prefix="aios-pgsplit-perf-")
    data, recorder = os.path.join(tmp, "perf.data"), []

    def release() -> None:
        ticks.append(_busy_ticks())
        if perf:  # the samples start once every writer runs and stop before the first ends
            cmd = ["perf", "record", "-a", "-F", "999", "-o", data, "--", "sleep", f"{max(seconds - 1.5, 0.5):g}"]
            recorder.append(
                subprocess.Popen(
                    ["sh", "-c", 'sleep 0.5 && exec "$@"', "perf", *cmd],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )

    got, wall = run_writers(_worker, variant, url, writers, seconds, release)
    busy = (_busy_ticks() - ticks[0]) / os.sysconf("SC_CLK_TCK")
    n, writer_cpu = sum(g[0] for g in got), sum(g[1] for g in got)
    out = {"rate": n / wall, "writer_us": writer_cpu / n * 1e6, "rest_us": (busy - writer_cpu) / n * 1e6}
    if recorder:
        recorder[0].wait(timeout=seconds + 30)
        ncpu = os.cpu_count() or 1
        out |= {k: share * ncpu / out["rate"] * 1e6 for k, share in _perf_split(data).items()}
    shutil.rmtree(tmp, ignore_errors=True)
    return out


def _print(r: int, variant: str, m: dict[str, float], plain_rate: float) -> None:
    split = "".join(f" {m[k]:.0f} |" for k in PERF_SPLIT if k in m)
    print(
        f"| {r} | {variant} | {m['rate']:,.0f} | {m['rate'] / plain_rate:.2f}x | {m['writer_us']:.0f} "
        f"| {m['rest_us']:.0f} |{split}",
        flush=True,
    )


def _strip_log(conn: Any) -> None:
    """Drop every index but the primary keys of ``audit_log`` and ``audit_proj_lineage``, the leaf-hash uniqueness and
    the chain trigger, in this run's schema."""
    indexes = conn.execute(
        "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()"
        " AND tablename IN ('audit_log', 'audit_proj_lineage') AND indexname NOT LIKE '%pkey'"
        " AND indexname <> 'audit_log_leaf_hash_key'"
    ).fetchall()
    for (name,) in indexes:
        conn.execute(f'DROP INDEX "{name}"')
    conn.execute("ALTER TABLE audit_log DROP CONSTRAINT audit_log_leaf_hash_key")
    conn.execute("DROP TRIGGER audit_log_no_fork ON audit_log")
    left = conn.execute(
        "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()"
        " AND tablename IN ('audit_log', 'audit_proj_lineage') ORDER BY 1"
    ).fetchall()
    print(f"indexes left: {', '.join(n for (n,) in left)}; chain trigger dropped")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--writers", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument(
        "--variants",
        default=",".join(str(i) for i in range(len(VARIANTS))),
        help="which variants, in which order, as indexes into VARIANTS (a plain round comes before and after each)",
    )
    ap.add_argument("--bare-log", action="store_true", help="strip the log to its primary keys first (see above)")
    ap.add_argument("--perf", action="store_true", help="split each round's CPU by process and binary (see above)")
    args = ap.parse_args()
    with bench_schema("aios_pgsplit") as url:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE TABLE scratch (id BIGSERIAL PRIMARY KEY, payload TEXT NOT NULL)")
            conn.execute("CREATE TABLE scratch_bytes (id BIGSERIAL PRIMARY KEY, payload BYTEA NOT NULL)")
            if args.bare_log:
                _strip_log(conn)
        bare = ", log stripped to its primary keys (--bare-log)" if args.bare_log else ""
        print(f"{args.writers} writer processes, {args.seconds:g} s a round, {os.cpu_count()} CPUs{bare}")
        head = "| round | variant | appends/s | vs plain | writer CPU us/append | rest of the machine us/append |"
        cols = "".join(f" {k}, us/append (perf) |" for k in PERF_SPLIT) if args.perf else ""
        print(head + cols)
        print("|---" * (6 + (len(PERF_SPLIT) if args.perf else 0)) + "|")
        for r in range(1, args.rounds + 1):
            before = _round("plain", url, args.writers, args.seconds, args.perf)
            _print(r, "plain", before, before["rate"])
            for variant in (VARIANTS[int(i)] for i in args.variants.split(",") if int(i) != 0):
                m = _round(variant, url, args.writers, args.seconds, args.perf)
                if variant == "stage, no integration":  # integrated outside the clock, before the next round
                    store = open_store(url)
                    store.integrate_staged(timeout=600)
                    store.close()
                after = _round("plain", url, args.writers, args.seconds, args.perf)
                _print(r, variant, m, (before["rate"] + after["rate"]) / 2)
                _print(r, "plain", after, after["rate"])
                before = after
        store = open_store(url)
        left = store.integrate_staged()
        store.close()
        print(f"\n{left} staged rows integrated after the rounds")


if __name__ == "__main__":
    main()
