"""PostgreSQL batched sequencing: durable appends/s and acknowledgement latency vs a plain insert, same run.

    .venv/bin/python benchmarks/pg_sequencing_bench.py [--seconds 3] [--writers 1,4,16] [--repeat 1] [--write FILE.md]

For each writer count, N writer PROCESSES run for ``--seconds`` each, released together:

* ``plain``: one autocommit ``INSERT`` per append of the same event's JSON bytes into a BIGSERIAL table (durable,
  ``synchronous_commit`` on, no chain), the bytes a binary parameter (``%b``) as the store sends them (until
  2026-11-30 a text one, ``%s``, which psycopg hex-escapes: about a third slower): the floor the audit store is
  measured against;
* ``audit``: ``store.append(event)`` on the audit store (stage, integrate or wait, sealed records returned);
* ``staged``: ``store.stage_many([event])`` (the durable acknowledgement: one staged insert, committed; each
  writer also tries to integrate every staged row at most every 0.2 s; no sequence number returned).

Rounds alternate plain/audit/staged per writer count (with ``--repeat R``: R times plain, audit, staged, plain,
each ratio taken to the mean of the two plain rounds around it, and the medians printed last). Reported:
appends/s over the round, p50/p99 of each call's latency (the acknowledgement), the ratios to plain. Afterwards
the audit log must verify, be gap-free, hold exactly the acknowledged records and leave nothing staged. Needs the
server at AIOS_TEST_PG_URL.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing as mp
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "plugins" / "flyte-aios-core"), str(REPO)]

import psycopg  # noqa: E402

from flytekitplugins.aios_audit import AuditEvent  # noqa: E402
from flytekitplugins.aios_audit.projections import verify_projections  # noqa: E402
from flytekitplugins.aios_audit.stores import open_store  # noqa: E402
from flytekitplugins.aios_audit.verify import verify_store  # noqa: E402
from flytekitplugins.aios_core.context import ExecutionRef  # noqa: E402

URL = os.environ.get("AIOS_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
EX = ExecutionRef(project="bench", domain="development", execution_id="pgseq", task_name="t", node_id="n0")


def _event(w: int, i: int) -> AuditEvent:
    return AuditEvent(
        kind="task", actor=f"service:bench-{w}", status="succeeded", execution=EX, inputs={"x": f"sha256:{i:064x}"}
    )


def _worker(kind: str, url: str, w: int, seconds: float, barrier: Any, out: Any) -> None:
    lat: list[float] = []
    if kind in ("audit", "staged"):
        store = open_store(url)
        barrier.wait()
        end = time.perf_counter() + seconds
        while (t := time.perf_counter()) < end:
            if kind == "audit":
                store.append(_event(w, len(lat)))
            else:
                store.stage_many([_event(w, len(lat))])
            lat.append(time.perf_counter() - t)
        store.close()
    else:
        conn = psycopg.connect(url, autocommit=True)
        barrier.wait()
        end = time.perf_counter() + seconds
        while (t := time.perf_counter()) < end:
            conn.execute("INSERT INTO plain (entry) VALUES (%b)", (_event(w, len(lat)).model_dump_json().encode(),))
            lat.append(time.perf_counter() - t)
        conn.close()
    out.put(lat)


def run_writers(
    worker: Callable[..., None],
    kind: str,
    url: str,
    writers: int,
    seconds: float,
    on_release: Callable[[], object] | None = None,
) -> tuple[list[Any], float]:
    """Fork ``writers`` processes running ``worker(kind, url, w, seconds, barrier, out)``, release them together
    (calling ``on_release()`` then) and return what each put on ``out`` with the wall seconds from the release to
    the last answer."""
    ctx = mp.get_context("fork")
    barrier, out = ctx.Barrier(writers + 1), ctx.Queue()
    procs = [ctx.Process(target=worker, args=(kind, url, w, seconds, barrier, out)) for w in range(writers)]
    for p in procs:
        p.start()
    barrier.wait()
    if on_release is not None:
        on_release()
    t = time.perf_counter()
    got = [out.get(timeout=seconds + 120) for _ in procs]
    wall = time.perf_counter() - t
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0, f"{kind} writer failed"
    return got, wall


def _round(kind: str, url: str, writers: int, seconds: float) -> dict[str, float]:
    got, wall = run_writers(_worker, kind, url, writers, seconds)
    lats = [x for lat in got for x in lat]
    q = statistics.quantiles(lats, n=100)
    return {"n": len(lats), "rate": len(lats) / wall, "p50_ms": q[49] * 1e3, "p99_ms": q[98] * 1e3}


def _check(url: str, acknowledged: int) -> str:
    store = open_store(url)
    t = time.perf_counter()
    leftover = store.integrate_staged()  # what the last writers left staged (`aios audit integrate` does this)
    drained = f"{leftover} staged rows integrated at the end in {time.perf_counter() - t:.3f} s; "
    result = verify_store(store)
    problems, note = verify_projections(store)  # every record's lineage rows written with it, none missing
    with psycopg.connect(url, autocommit=True) as conn:
        staged = conn.execute("SELECT count(*) FROM audit_staged").fetchone()[0]
        batches = conn.execute("SELECT count(DISTINCT recorded_at) FROM audit_log").fetchone()[0]
    store.close()
    assert result.ok, result.summary()
    assert not problems and not note, ([p.line() for p in problems[:5]], note)
    assert result.size == acknowledged and staged == 0, (result.size, acknowledged, staged)
    mean = result.size / max(batches, 1)
    return drained + (
        f"log verified: {result.size} records, seq 1..{result.size} gap-free, every acknowledged record present,"
        f" none left staged, projections (lineage included) re-derived equal; {batches} integrate batches (mean"
        f" {mean:.1f} records)"
    )


@contextlib.contextmanager
def bench_schema(prefix: str) -> Iterator[str]:
    """The URL of a schema of its own on the server at AIOS_TEST_PG_URL, holding the audit store's tables and the
    ``plain`` baseline table (``seq``, ``entry``); dropped afterwards."""
    schema = f"{prefix}_{os.getpid()}"
    admin = psycopg.connect(URL, autocommit=True, connect_timeout=5)
    admin.execute(f'CREATE SCHEMA "{schema}"')
    try:
        url = f"{URL}{'&' if '?' in URL else '?'}options=-csearch_path%3D{schema}"
        open_store(url).close()
        admin.execute(f'CREATE TABLE "{schema}".plain (seq BIGSERIAL PRIMARY KEY, entry BYTEA NOT NULL)')
        yield url
    finally:
        admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
        admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--writers", default="1,4,16")
    parser.add_argument("--write", type=Path)
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="rounds per writer count: each is plain, audit, staged, plain again; ratios are to the mean of the two"
        " plain rounds around them (a host whose speed drifts within seconds moves both), medians printed last",
    )
    args = parser.parse_args()
    with bench_schema("aios_pgseq") as url:
        lines = [
            "| writer processes | plain insert /s (p50 / p99 ms) | audit append, sealed /s (p50 / p99 ms) | ratio "
            "| audit stage, acknowledged /s (p50 / p99 ms) | ratio |"
        ]
        lines.append("|---|---|---|---|---|---|")
        acknowledged = 0
        medians: list[str] = []
        for writers in (int(w) for w in args.writers.split(",")):
            ratios: list[tuple[float, float]] = []
            for _ in range(args.repeat):
                plain = _round("plain", url, writers, args.seconds)
                audit = _round("audit", url, writers, args.seconds)
                staged = _round("staged", url, writers, args.seconds)
                after = _round("plain", url, writers, args.seconds) if args.repeat > 1 else plain
                acknowledged += int(audit["n"]) + int(staged["n"])
                base = (plain["rate"] + after["rate"]) / 2
                ratios.append((audit["rate"] / base, staged["rate"] / base))
                cell = "{rate:,.0f} ({p50_ms:.1f} / {p99_ms:.1f})"
                both = cell.format(**plain) + (f", {cell.format(**after)}" if after is not plain else "")
                lines.append(
                    f"| {writers} | {both} | {cell.format(**audit)} | {ratios[-1][0]:.2f}x "
                    f"| {cell.format(**staged)} | {ratios[-1][1]:.2f}x |"
                )
                print(lines[-1], flush=True)
            if args.repeat > 1:
                med = [statistics.median(r[i] for r in ratios) for i in (0, 1)]
                medians.append(f"{writers} writers: median ratio sealed {med[0]:.2f}x, staged {med[1]:.2f}x")
        lines += ["", *medians] if medians else []
        lines.append("")
        lines.append(_check(url, acknowledged))
    text = "\n".join(lines)
    print(text)
    if args.write:
        args.write.write_text(text + "\n")


if __name__ == "__main__":
    main()
