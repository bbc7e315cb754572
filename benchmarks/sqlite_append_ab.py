"""SQLite durable appends of two checkouts of the pack, alternating, each beside the plain insert of its own run.

    .venv/bin/python benchmarks/sqlite_append_ab.py --code BASE_WORKTREE [--pairs 5] [--rounds 5] [--n 500]

Each run is a fresh process (``PYTHONPATH`` naming the checkout's packages, as ``trail_commands.py --code`` does) on a
fresh store in a temporary folder: :func:`audit_bench.bench_sqlite` (single appends, one per transaction, and
batches of 100, rounds interleaved with a plain insert of the same events at the same durability, medians), then
the pages one single append writes to the write-ahead log (frames per commit, with automatic checkpoints off while
it counts). The arms alternate so that both see the same disk; the table gives each figure's median over the pairs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from trail_commands import code_env  # noqa: E402

_CHILD = r"""
import json, os, sys
sys.path.insert(0, {bench!r})
import audit_bench
from flytekitplugins.aios_audit import AuditEvent
from flytekitplugins.aios_audit.stores import open_store
out = audit_bench.bench_sqlite({rounds}, {n})
store = open_store(f"sqlite:///{{audit_bench.STATE}}/frames.db")
for i in range(600):  # past a batch of arrears, so that the count below includes their share
    store.append(audit_bench._event(i))
conn = store._conn()
conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
conn.execute("PRAGMA wal_autocheckpoint=0")
k = 1000
for i in range(k):
    store.append(audit_bench._event(600 + i))
_busy, frames, _done = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
out["frames_per_append"] = frames / k
print(json.dumps(out))
"""

KEYS = ("audit_single", "plain_single", "audit_batch", "plain_batch", "frames_per_append")


def one(code: Path, rounds: int, n: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="aios-ab-") as tmp:
        env = code_env(code) | {"AIOS_STATE_DIR": tmp, "AIOS_AUDIT_STORE": f"sqlite:///{tmp}/a.db"}
        src = _CHILD.format(bench=str(REPO / "benchmarks"), rounds=rounds, n=n)
        out = subprocess.run([sys.executable, "-c", src], env=env, cwd=tmp, capture_output=True, text=True, check=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--code", type=Path, required=True, help="the baseline's checkout (a git worktree)")
    ap.add_argument("--pairs", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--n", type=int, default=500)
    args = ap.parse_args()
    arms = {"this": REPO, "base": args.code.resolve()}
    got: dict[str, list[dict[str, float]]] = {a: [] for a in arms}
    for i in range(args.pairs):
        for name in list(arms) if i % 2 == 0 else list(arms)[::-1]:
            got[name].append(one(arms[name], args.rounds, args.n))
            print(name, json.dumps({k: round(got[name][-1][k], 2) for k in KEYS}), flush=True)
    print(f"\n| figure (median of {args.pairs}) | this | base |\n|---|---|---|")
    for k in KEYS:
        med = {a: statistics.median(r[k] for r in got[a]) for a in arms}
        fmt = "{:.2f}" if k == "frames_per_append" else "{:,.0f}"
        print(f"| {k} | {fmt.format(med['this'])} | {fmt.format(med['base'])} |")


if __name__ == "__main__":
    main()
