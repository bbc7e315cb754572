"""One ``append_many`` of n events: its cost per event as n grows (flat means linear), beside a plain insert.

    .venv/bin/python benchmarks/append_size_bench.py [--sizes 250,1000,4000] [--repeat 2] [--stores sqlite,postgresql]

For each store (SQLite in a temporary folder; PostgreSQL in a schema of its own on the server at
AIOS_TEST_PG_URL) and each shape of event, one call appends n events (the acting point appends a chunk's verdicts
this way, the policy stage a chunk's decisions), best of ``--repeat``:

* ``plain``: task records with a 1 KB attribute, no lineage row;
* ``lineage``: actions with a document input, an output and a parent (four lineage rows each);
* ``claims``: acting-point records, each claiming one key (the locked path that checks claims).

Beside them, the baseline: the same events' canonical bytes inserted by one ``executemany`` into a table with a
primary key, in one durable transaction (no chain, no projection): what n rows cost the database at the least.
Until 2026-12-01 the PostgreSQL server-side integrator subscripted its arrays per event, so a call cost O(n^2):
1,000 events with lineage rows took 0.90 s, 4,000 would have taken seconds with the log's lock held.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "plugins" / "flyte-aios-core"), str(REPO), str(REPO / "benchmarks")]

from flytekitplugins.aios_audit import AuditEvent  # noqa: E402
from flytekitplugins.aios_audit.records import _to_json  # noqa: E402
from flytekitplugins.aios_audit.stores import CLAIMS_ATTR, claim, open_store  # noqa: E402
from flytekitplugins.aios_audit.verify import verify_store  # noqa: E402

SHAPES = ("plain", "lineage", "claims")


def _events(shape: str, n: int, tag: str) -> list[AuditEvent]:
    out = []
    for i in range(n):
        digest = f"sha256:{abs(hash(tag)) % 10**8:08d}{i:056x}"
        if shape == "plain":
            ev = AuditEvent(kind="task", actor="service:bench", subject=digest, attributes={"pad": "x" * 1000})
        elif shape == "lineage":
            ev = AuditEvent(
                kind="action",
                actor="service:bench",
                subject=digest,
                inputs={"document": digest},
                outputs={"posted": digest},
                parents=[f"{i:064x}"],
            )
        else:
            attrs = {CLAIMS_ATTR: [claim(f"act:{tag}:{i}", digest)]}
            ev = AuditEvent(kind="action_authorized", actor="service:bench", subject=digest, attributes=attrs)
        out.append(ev)
    return out


@contextlib.contextmanager
def _store_url(kind: str) -> Iterator[tuple[str, object]]:
    """The store's URL and a DB-API connection for the baseline table (same database)."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="aios-appendsize-") as tmp:
            conn = sqlite3.connect(f"{tmp}/plain.db", isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("CREATE TABLE plain (seq INTEGER PRIMARY KEY, entry BLOB NOT NULL)")
            yield f"sqlite:///{tmp}/a.db", conn
            conn.close()
        return
    import psycopg
    from pg_sequencing_bench import bench_schema  # a schema of its own, with the same plain table

    with bench_schema("aios_appendsize") as url, psycopg.connect(url, autocommit=True) as conn:
        yield url, conn


def _plain(kind: str, conn: object, blobs: list[bytes]) -> float:
    t0 = time.perf_counter()
    if kind == "sqlite":
        c = conn  # type: ignore[assignment]
        c.execute("BEGIN IMMEDIATE")  # type: ignore[attr-defined]
        c.executemany("INSERT INTO plain (entry) VALUES (?)", [(b,) for b in blobs])  # type: ignore[attr-defined]
        c.execute("COMMIT")  # type: ignore[attr-defined]
    else:
        with conn.transaction(), conn.cursor() as cur:  # type: ignore[attr-defined]
            cur.executemany("INSERT INTO plain (entry) VALUES (%b)", [(b,) for b in blobs])
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="250,1000,4000")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--stores", default="sqlite,postgresql")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"host: {os.cpu_count()} CPUs; best of {args.repeat}; us per event (flat across n means linear)")
    print("| store | events | " + " | ".join(f"n = {n:,}" for n in sizes) + " |")
    print("|---|---|" + "---|" * len(sizes))
    for kind in args.stores.split(","):
        with _store_url(kind) as (url, conn):
            store = open_store(url)
            base_cells = []
            for n in sizes:
                blobs = [_to_json(e) for e in _events("plain", n, "baseline")]
                base_cells.append(min(_plain(kind, conn, blobs) for _ in range(args.repeat)) / n * 1e6)
            for shape in SHAPES:
                cells = []
                for n in sizes:
                    best = float("inf")
                    for r in range(args.repeat):
                        events = _events(shape, n, f"{shape}-{n}-{r}")
                        t0 = time.perf_counter()
                        store.append_many(events)
                        best = min(best, time.perf_counter() - t0)
                    cells.append(best / n * 1e6)
                print(f"| {kind} | {shape} | " + " | ".join(f"{c:,.1f}" for c in cells) + " |", flush=True)
            print(f"| {kind} | baseline: plain insert | " + " | ".join(f"{c:,.1f}" for c in base_cells) + " |")
            result = verify_store(store)
            assert result.ok, result.summary()
            store.close()
    print("\nevery log verified afterwards")


if __name__ == "__main__":
    main()
