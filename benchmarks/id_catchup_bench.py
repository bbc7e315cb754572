"""The first look-up by record id on a SQLite trail whose id table is empty (a log written by appends alone).

For each mode given, in a fresh process: drop ``audit_ids`` (derived data: opening the store makes it again, empty,
and the look-up fills it), optionally drop the OS page cache (root only), then time the first ``store.get`` of a
record in the middle of the log, which indexes every record first, and the look-ups after it:

- ``rebuild``: the pack's code (a backlog larger than the indexed part is indexed by one rebuild: drop the index,
  add the rows in log order, build the index by one sort);
- ``chunks``: the same code with the rebuild switched off (``IDS_BULK_MIN`` out of reach), i.e. what every version
  before it did: transactions of ``IDS_CHUNK`` records inserted into the index in key order.

It writes to the trail (its ``audit_ids`` table only). Build a trail with ``projections_bench.py --build``::

    python benchmarks/id_catchup_bench.py --trail DIR/trail-2000000.db --modes chunks,rebuild,rebuild,chunks
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def child(trail: Path, mode: str, drop_caches: bool) -> None:
    db = sqlite3.connect(trail, isolation_level=None)
    db.executescript("DROP TABLE IF EXISTS audit_ids; PRAGMA wal_checkpoint(TRUNCATE);")  # the store makes it again
    n = db.execute("SELECT COALESCE(MAX(seq), 0) FROM audit_log").fetchone()[0]
    rid = db.execute("SELECT leaf_hash FROM audit_log WHERE seq = ?", (max(1, n // 2),)).fetchone()[0]
    db.close()
    if drop_caches:
        os.sync()
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    from flytekitplugins.aios_audit.stores import open_store
    from flytekitplugins.aios_audit.stores import sqlite as sq

    if mode == "chunks":
        sq.IDS_BULK_MIN = 1 << 62
    store = open_store(f"sqlite:///{trail}")
    t = time.perf_counter()
    rec = store.get(rid)
    first = time.perf_counter() - t
    t = time.perf_counter()
    for _ in range(200):
        store.get(rid)
    after = (time.perf_counter() - t) / 200
    wal = trail.with_name(trail.name + "-wal")
    print(
        json.dumps(
            {
                "mode": mode,
                "records": n,
                "first_get_s": round(first, 2),
                "next_get_ms": round(after * 1e3, 3),
                "found": rec is not None and rec.record_id == rid,
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
                "wal_mb": round(wal.stat().st_size / 1e6) if wal.exists() else 0,
            }
        ),
        flush=True,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trail", type=Path, required=True, help="a SQLite trail (projections_bench.py --build)")
    ap.add_argument("--modes", default="chunks,rebuild,rebuild,chunks", help="comma-separated: chunks, rebuild")
    ap.add_argument("--no-drop-caches", action="store_true", help="keep the page cache (needed when not root)")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    drop = not args.no_drop_caches
    if args.child:
        child(args.trail, args.child, drop)
        return
    for mode in args.modes.split(","):
        if mode not in {"chunks", "rebuild"}:
            sys.exit(f"unknown mode {mode!r}: use chunks or rebuild")
        cmd = [sys.executable, __file__, "--trail", str(args.trail), "--child", mode]
        subprocess.run(cmd + (["--no-drop-caches"] if not drop else []), check=True, cwd=REPO)


if __name__ == "__main__":
    main()
