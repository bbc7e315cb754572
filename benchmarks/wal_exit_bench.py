"""Read commands after a large write left the SQLite write-ahead log behind, this checkout against a baseline's.

    .venv/bin/python benchmarks/wal_exit_bench.py --code BASELINE_WORKTREE [--mb 150] [--runs 5] [--rounds 2]

Run with the trail's environment (``AIOS_AUDIT_STORE=sqlite:///...``, ``AIOS_STATE_DIR``, ...: a trail that
``projections_bench.py --build`` made). Each round, for each checkout in turn: a process writes ``--mb`` of
write-ahead log in committed transactions (a scratch table, filled and dropped: the audit tables are not touched) and
exits without closing its connection, as a command that catches up the record ids on a large trail did; then
``aios lineage trace`` of the newest record runs ``--runs`` times, one process after the other. The first connection
to a database whose log is still there rebuilds the log's index by reading all of it; a process that closes its
connection at exit, the last one, empties the log, so only the command after the write pays. Reported: each run's
wall seconds, per checkout and round.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from cli_startup_bench import _newest_id  # noqa: E402
from trail_commands import code_env  # noqa: E402

_LEAVE = r"""
import os, sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("PRAGMA journal_mode=WAL")
conn.execute("CREATE TABLE IF NOT EXISTS bench_wal_scratch (b BLOB)")
for _ in range(int(sys.argv[2])):  # one MB a transaction: 250 pages of 4 KiB
    conn.execute("INSERT INTO bench_wal_scratch SELECT randomblob(4000) FROM "
                 "(WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 250) SELECT i FROM n)")
conn.execute("DROP TABLE bench_wal_scratch")
os._exit(0)  # the connection stays open: its log stays behind
"""


def _db() -> Path:
    url = os.environ.get("AIOS_AUDIT_STORE", "")
    if not url.startswith("sqlite:///"):
        raise SystemExit("set AIOS_AUDIT_STORE=sqlite:///PATH (and the rest of the trail's environment) first")
    return Path(url.removeprefix("sqlite:///"))


def _wal_mb(db: Path) -> float:
    wal = db.with_name(db.name + "-wal")
    return wal.stat().st_size / 2**20 if wal.exists() else 0.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--code", type=Path, required=True, help="the baseline's checkout (a git worktree)")
    ap.add_argument("--mb", type=int, default=150, help="megabytes of write-ahead log left behind before each arm")
    ap.add_argument("--runs", type=int, default=5, help="trace commands after each write, one after the other")
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    db = _db()
    arms = {"this": code_env(REPO), "base": code_env(args.code.resolve())}
    record = _newest_id(arms["this"])
    trace = [sys.executable, "-c", "from flytekitplugins.aios_core.cli import main; main()", "lineage", "trace", record]
    got: dict[str, list[list[float]]] = {a: [] for a in arms}
    for r in range(args.rounds):
        for name in list(arms) if r % 2 == 0 else list(arms)[::-1]:
            subprocess.run([sys.executable, "-c", _LEAVE, str(db), str(args.mb)], check=True)
            left = _wal_mb(db)
            walls = []
            for _ in range(args.runs):
                t = time.perf_counter()
                subprocess.run(trace, env=arms[name], stdout=subprocess.DEVNULL, check=True)
                walls.append(time.perf_counter() - t)
            got[name].append(walls)
            after = _wal_mb(db)
            print(
                f"round {r + 1} {name}: log left {left:.0f} MB; trace "
                + ", ".join(f"{w:.3f}" for w in walls)
                + f" s; log after {after:.1f} MB",
                flush=True,
            )
    print("\n| checkout | first trace after the write (median of rounds) | the later ones (median) |\n|---|---|---|")
    for name, rounds in got.items():
        first = statistics.median(w[0] for w in rounds)
        later = statistics.median(x for w in rounds for x in w[1:])
        print(f"| {name} | {first:.3f} s | {later:.3f} s |")


if __name__ == "__main__":
    main()
