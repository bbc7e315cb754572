"""Durable single appends and batches of 100 into a large trail, in a fresh process of a given checkout.

    .venv/bin/python benchmarks/trail_append.py [--code DIR] [--n 1000] [--batches 20]

Appends to the store the environment names (``AIOS_AUDIT_STORE``: a trail ``projections_bench.py --build`` built,
in its environment), so the pages an append changes are those of a large log's indexes, not of a fresh store's
(``sqlite_append_ab.py``). ``--code DIR`` runs the appends from another checkout of the pack (a ``git worktree`` of
the baseline) with this interpreter. The records are ``audit_bench``'s (a task record of one execution with one
input digest), appended one per transaction (``--n``) and then in ``--batches`` batches of 100; prints appends/s of
each and the write-ahead-log pages of a single append (frames per commit, automatic checkpoints off while counting).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from trail_commands import code_env  # noqa: E402

_CHILD = r"""
import json, os, struct, sys, time
url = os.environ["AIOS_AUDIT_STORE"]  # before audit_bench, which points it at its own scratch store
sys.path.insert(0, {bench!r})
import audit_bench
from flytekitplugins.aios_audit.stores import open_store
n, batches = {n}, {batches}
store = open_store(url)
base = store.size() * 7 + 11  # input digests no earlier run used
for i in range(20):  # warm the connection and the indexes' upper pages
    store.append(audit_bench._event(base + i))
t = time.perf_counter()
for i in range(n):
    store.append(audit_bench._event(base + 100 + i))
single = n / (time.perf_counter() - t)
t = time.perf_counter()
for b in range(batches):
    store.append_many([audit_bench._event(base + 100 + n + b * 100 + k) for k in range(100)])
batched = batches * 100 / (time.perf_counter() - t)
conn = store._conn()
conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
conn.execute("PRAGMA wal_autocheckpoint=0")
db = url.removeprefix("sqlite:///")
for i in range(100):
    store.append(audit_bench._event(base + 10**6 + i))
with open(db + "-wal", "rb") as f:
    wal = f.read()
size = struct.unpack(">I", wal[8:12])[0]
frames = (len(wal) - 32) // (24 + size) / 100
conn.execute("PRAGMA wal_autocheckpoint=250")
out = {{"single": round(single), "batched": round(batched), "frames_per_append": frames, "size": store.size()}}
print(json.dumps(out))
store.close()
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--code", type=Path, default=REPO, help="checkout whose store code appends (default: this one)")
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--batches", type=int, default=20)
    args = ap.parse_args()
    child = _CHILD.format(bench=str(REPO / "benchmarks"), n=args.n, batches=args.batches)
    out = subprocess.run(
        [sys.executable, "-c", child], env=code_env(args.code.resolve()), check=True, capture_output=True, text=True
    )
    print(json.dumps({"code": str(args.code), **json.loads(out.stdout.strip().splitlines()[-1])}))


if __name__ == "__main__":
    main()
