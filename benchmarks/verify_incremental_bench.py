"""Incremental verification from a checkpoint and inclusion proofs from stored tree nodes, at log sizes.

    .venv/bin/python benchmarks/verify_incremental_bench.py [--size 100000] [--after 10000] \\
        [--proof-sizes 100000,1000000]

1. a log of ``size`` records (batched appends through the store API, in a temp dir), a signed checkpoint at
   ``size - after``: the full walk of the whole log vs ``verify_from`` the checkpoint (touches ``after``
   records), and again with a checkpoint at ``size - after / 10`` to show the cost follows the records after it;
2. for each proof size: the first inclusion proof (integrating the stored tree levels once), then the median
   of 50 random inclusion proofs from stored nodes, vs one proof by the old full rebuild (``proofs._tree``).
Records are small task events (about 330 bytes), not the 1.5 KB realistic mix of issue 15.

``--trail PATH`` runs both on an existing trail instead (the realistic ones ``projections_bench.py`` builds, e.g.
``/tmp/aios-trails/trail-10000000.db``): a signed checkpoint of the trail as it is (its full verification is the
baseline), ``--after`` task records appended (the trail keeps them: it grows by that much per run), then the
verification from the checkpoint and the inclusion proofs. The old full rebuild is skipped there: it holds every
entry in memory (15 GB at 10M records).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
STATE = Path(tempfile.mkdtemp(prefix="aios-bench-verify-"))
os.environ.update({"AIOS_STATE_DIR": str(STATE), "AIOS_AUDIT_STORE": f"sqlite:///{STATE}/audit.db"})

from flytekitplugins.aios_audit import AuditEvent  # noqa: E402
from flytekitplugins.aios_audit.checkpoint import load_signing_key, public_pem  # noqa: E402
from flytekitplugins.aios_audit.incremental import verify_from  # noqa: E402
from flytekitplugins.aios_audit.proofs import _tree, make_checkpoint, prove_inclusion  # noqa: E402
from flytekitplugins.aios_audit.stores.sqlite import SQLiteAuditStore  # noqa: E402
from flytekitplugins.aios_audit.verify import verify_store  # noqa: E402

KEY = f"file:{STATE}/key.pem"


def _grow(store: SQLiteAuditStore, to: int) -> None:
    """Append task events in batches of 1000 until the log holds ``to`` records."""
    while (n := store.size()) < to:
        k = min(1000, to - n)
        store.append_many([AuditEvent(kind="task", actor="service:bench", subject=f"doc-{n + i}") for i in range(k)])


def _timed(fn: object, *args: object) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn(*args)  # type: ignore[operator]
    return time.perf_counter() - t0, out


def bench_verify(store: SQLiteAuditStore, size: int, after: int) -> None:
    pem = public_pem(load_signing_key(KEY))
    _grow(store, size - after)
    cp_far = make_checkpoint(store, KEY)
    _grow(store, size - after // 10)
    cp_near = make_checkpoint(store, KEY)
    _grow(store, size)
    t_full, full = _timed(verify_store, store)
    print(f"full walk, {size} records: {t_full:.2f} s ({full.summary()[:40]}..., {full.workers} process(es))")
    for cp in (cp_far, cp_near):
        t, res = _timed(verify_from, store, cp, pem)
        assert res.ok and res.root_hash == full.root_hash, res.summary()
        n = size - cp.tree_size
        print(f"incremental from checkpoint of {cp.tree_size}: {n} records walked in {t:.3f} s ({n / t:,.0f}/s)")


def bench_proofs(store: SQLiteAuditStore, size: int) -> None:
    t0 = time.perf_counter()
    _grow(store, size)
    print(f"log of {size}: grown in {time.perf_counter() - t0:.1f} s")
    t_cp, cp = _timed(make_checkpoint, store, KEY)
    t_first, _ = _timed(prove_inclusion, store, "#1", cp)
    rng = random.Random(7)
    times = [_timed(prove_inclusion, store, f"#{rng.randint(1, size)}", cp)[0] for _ in range(50)]
    t_old, _ = _timed(_tree, store, size)
    print(
        f"proofs at {size}: checkpoint (full verify + sign) {t_cp:.2f} s; first proof (integrates tree levels) "
        f"{t_first:.2f} s; then median {statistics.median(times) * 1e3:.2f} ms, max {max(times) * 1e3:.2f} ms; "
        f"old full rebuild (tree only, one proof) {t_old:.2f} s"
    )


def bench_trail(trail: Path, after: int) -> None:
    store = SQLiteAuditStore(f"sqlite:///{trail}")
    pem = public_pem(load_signing_key(KEY))
    t_cp, cp = _timed(make_checkpoint, store, KEY)
    print(f"trail {trail}: {cp.tree_size} records; checkpoint (full verify + sign) {t_cp:.1f} s")
    t0 = time.perf_counter()
    _grow(store, cp.tree_size + after)
    print(f"appended {after} records in {time.perf_counter() - t0:.1f} s")
    t, res = _timed(verify_from, store, cp, pem)
    assert res.ok and res.size == cp.tree_size + after, res.summary()
    print(f"incremental from checkpoint of {cp.tree_size}: {after} records walked in {t:.3f} s ({after / t:,.0f}/s)")
    size = res.size
    t_full, cp2 = _timed(make_checkpoint, store, KEY)  # the full walk again, to the new head
    assert cp2.tree_size == size and cp2.root_hash == res.root_hash, (cp2.tree_size, size)
    print(f"full walk (+ sign), {size} records: {t_full:.1f} s")
    t_first, _ = _timed(prove_inclusion, store, "#1", cp2)
    rng = random.Random(7)
    times = [_timed(prove_inclusion, store, f"#{rng.randint(1, size)}", cp2)[0] for _ in range(50)]
    print(
        f"proofs at {size}: first proof (integrates tree levels) {t_first:.2f} s; then median "
        f"{statistics.median(times) * 1e3:.2f} ms, p95 {statistics.quantiles(times, n=20)[18] * 1e3:.2f} ms, "
        f"max {max(times) * 1e3:.2f} ms"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=100_000)
    ap.add_argument("--after", type=int, default=10_000)
    ap.add_argument("--proof-sizes", default="100000")
    ap.add_argument("--trail", type=Path, default=None, help="an existing trail to measure (grows by --after)")
    args = ap.parse_args()
    try:
        if args.trail is not None:
            bench_trail(args.trail, args.after)
            return
        store = SQLiteAuditStore(f"sqlite:///{STATE}/audit.db")
        bench_verify(store, args.size, args.after)
        for size in sorted(int(s) for s in args.proof_sizes.split(",")):
            bench_proofs(store, size)
    finally:
        shutil.rmtree(STATE, ignore_errors=True)


if __name__ == "__main__":
    main()
