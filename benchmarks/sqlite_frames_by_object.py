"""Where a durable SQLite append's write-ahead-log pages go, by b-tree, and what the lineage parent index costs.

    .venv/bin/python benchmarks/sqlite_frames_by_object.py [--appends 200] [--rounds 4] [--n 500]

1. Frames by object: a store of 600 records (``audit_bench._event``, the records ``audit_bench.bench_sqlite`` and
   ``sqlite_append_ab.py`` append), the log checkpointed and automatic checkpoints off, then ``--appends`` single
   appends; every frame of the write-ahead log is mapped to the table or index whose page it holds (SQLite's
   ``dbstat``). A commit writes every page it changed, so the frames per append are the pages one append changes.
2. The lineage parent index: single appends (one per transaction) and batches of 100, on a store as the pack makes
   it (the index written in arrears, ``stores/sqlite_parents.py``) beside the same store given the lineage table's
   own ``(parent, seq)`` index as the pack kept it before (every append's transaction writing it), rounds
   alternating, medians: what writing that index in arrears saves.
"""

from __future__ import annotations

import argparse
import collections
import sqlite3
import statistics
import struct
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "plugins" / "flyte-aios-core"), str(REPO), str(REPO / "benchmarks")]

import audit_bench  # noqa: E402

from flytekitplugins.aios_audit.stores import open_store  # noqa: E402

PARENT_INDEX = "audit_proj_lineage_parent_seq"
OLD_INDEX_SQL = f"CREATE INDEX {PARENT_INDEX} ON audit_proj_lineage(parent, seq) WHERE parent <> ''"
"""The lineage table's own parent index, as ``projections.schema`` made it on SQLite before the table in arrears."""


def frames_by_object(appends: int) -> tuple[float, dict[str, float]]:
    """Frames per single append, in all and by b-tree (``dbstat`` names; a page the file grew by has no name yet)."""
    with tempfile.TemporaryDirectory(prefix="aios-frames-") as tmp:
        db = Path(tmp) / "frames.db"
        store = open_store(f"sqlite:///{db}")
        for i in range(600):
            store.append(audit_bench._event(i))
        conn = store._conn()
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("PRAGMA wal_autocheckpoint=0")
        for i in range(appends):
            store.append(audit_bench._event(1000 + i))
        wal = (db.parent / (db.name + "-wal")).read_bytes()
        size = struct.unpack(">I", wal[8:12])[0]  # the WAL header's page size; each frame: 24-byte header + page
        pages = [struct.unpack(">I", wal[o : o + 4])[0] for o in range(32, len(wal) - 23, 24 + size)]
        ro = sqlite3.connect(db)
        names = {int(p): str(n) for n, p in ro.execute("SELECT name, pageno FROM dbstat")}
        ro.close()
        store.close()
    by = collections.Counter(names.get(p, "(a new page)") for p in pages)
    return len(pages) / appends, {k: v / appends for k, v in by.most_common()}


def index_cost(rounds: int, n: int) -> dict[str, float]:
    """Medians of single and batched appends/s with the parent index in arrears (as the pack makes a store) and with
    the lineage table's own parent index besides (as before), rounds alternating."""
    res: dict[str, list[float]] = collections.defaultdict(list)
    with tempfile.TemporaryDirectory(prefix="aios-frames-") as tmp:
        stores = {}
        for arm in ("in arrears", "with the old index too"):
            store = open_store(f"sqlite:///{tmp}/{arm.replace(' ', '-')}.db")
            for i in range(300):
                store.append(audit_bench._event(i))
            if arm == "with the old index too":
                store._conn().execute(OLD_INDEX_SQL)
            stores[arm] = store
        for r in range(rounds):
            for arm in stores if r % 2 == 0 else list(stores)[::-1]:
                store = stores[arm]
                t = time.perf_counter()
                for i in range(n):
                    store.append(audit_bench._event(i))
                res[f"single, {arm}"].append(n / (time.perf_counter() - t))
                t = time.perf_counter()
                for b in range(n // 10):
                    store.append_many([audit_bench._event(b * 100 + k) for k in range(100)])
                res[f"batches of 100, {arm}"].append(n * 10 / (time.perf_counter() - t))
        for store in stores.values():
            store.close()
    return {k: statistics.median(v) for k, v in res.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--appends", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--n", type=int, default=500)
    args = ap.parse_args()
    total, by = frames_by_object(args.appends)
    print(f"WAL frames per single append: {total:.2f}")
    for name, per in by.items():
        print(f"  {per:5.2f}  {name}")
    print(f"\nappends/s, medians of {args.rounds} alternating rounds of {args.n}:")
    for k, v in index_cost(args.rounds, args.n).items():
        print(f"  {v:>9,.0f}  {k}")


if __name__ == "__main__":
    main()
