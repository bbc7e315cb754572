"""``aios audit checkpoint`` continuing from an older checkpoint of a large trail: the walk of the records after it.

    .venv/bin/python benchmarks/checkpoint_continue_bench.py --first 10000 [--code DIR --pairs N]

Run with the trail's environment (``AIOS_AUDIT_STORE``, ``AIOS_STATE_DIR``: what ``projections_bench.py --build``
built it with, SQLite or PostgreSQL). A checkpoint of the first ``--first`` records is signed with the trail's
checkpoint key (their walk, once, here); then ``aios audit checkpoint --json`` runs in a fresh state folder whose
``checkpoints/`` holds only that one, so each run verifies every record after it and signs the log's head, as the
nightly checkpoint does after a long pause (or the first one after an upgrade). The trail's tree levels are stored
by its earlier checkpoints, so the runs store none. With ``--code DIR`` (a ``git worktree`` of the baseline) the
same command from that checkout alternates with this one; medians, ranges and peak memory (the command's and its
forked child's, as ``wait4`` reports it). Nothing here is written to the trail.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from trail_commands import REPO, aios


def old_checkpoint(first: int, out: Path) -> dict[str, object]:
    """Sign a checkpoint of records ``1..first`` of the trail (walked here) into ``out``; its JSON."""
    from flytekitplugins.aios_audit.checkpoint import load_signing_key, sign_checkpoint
    from flytekitplugins.aios_audit.existing import open_existing
    from flytekitplugins.aios_audit.merkle import RootAccumulator
    from flytekitplugins.aios_audit.proofs import origin_of
    from flytekitplugins.aios_audit.records import GENESIS
    from flytekitplugins.aios_audit.verify import _walk
    from flytekitplugins.aios_core.settings import get_settings

    settings = get_settings()
    store = open_existing(settings, None)
    if store is None or store.size() <= first:
        raise SystemExit(f"the trail must hold more than {first} records: build it with projections_bench.py --build")
    acc = RootAccumulator()
    head = _walk(store, acc, None, 1, first, GENESIS, bytes.fromhex(GENESIS))[0]
    key = load_signing_key(settings.signing_key)
    cp = sign_checkpoint(origin_of(store), first, acc.root(), key, bytes.fromhex(head), acc.frontier())
    cp.save(out)
    return {"tree_size": cp.tree_size, "size": store.size(), "signing_key": settings.signing_key}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--first", type=int, default=10_000, help="records the older checkpoint covers")
    ap.add_argument("--code", type=Path, default=None, help="baseline checkout to alternate with")
    ap.add_argument("--pairs", type=int, default=3)
    args = ap.parse_args()
    if not os.environ.get("AIOS_AUDIT_STORE") or not os.environ.get("AIOS_STATE_DIR"):
        raise SystemExit("run with the trail's environment: AIOS_AUDIT_STORE and AIOS_STATE_DIR")
    work = Path(tempfile.mkdtemp(prefix="aios-cp-continue-"))
    try:
        info = old_checkpoint(args.first, work / "old.json")
        print(f"trail of {info['size']} records; older checkpoint of {info['tree_size']}", flush=True)
        codes = [("this code", REPO)] + ([("baseline", args.code.resolve())] if args.code else [])
        seen: dict[str, list[tuple[float, float]]] = {label: [] for label, _ in codes}
        for i in range(args.pairs):
            for label, code in codes if i % 2 == 0 else codes[::-1]:
                state = work / f"state-{label.replace(' ', '-')}-{i}"
                (state / "checkpoints").mkdir(parents=True)
                shutil.copy(work / "old.json", state / "checkpoints" / f"{args.first:012d}.json")
                os.environ.update({"AIOS_STATE_DIR": str(state), "AIOS_SIGNING_KEY": str(info["signing_key"])})
                wall, rss, rc, out = aios(code, ["audit", "checkpoint", "--out", str(state / "cp.txt"), "--json"])
                doc = json.loads(out.strip().splitlines()[-1]) if rc == 0 else {}
                if rc != 0 or doc.get("verified_after") != args.first:
                    raise SystemExit(f"{label}: exit {rc}, {out.strip()[:300]}")
                seen[label].append((wall, rss))
                print(f"  {label}: {wall:.1f} s, {rss:.0f} MB ({doc['tree_size'] - args.first} records walked)")
        for label, runs in seen.items():
            walls = [w for w, _ in runs]
            print(
                f"{label}: median {statistics.median(walls):.1f} s ({min(walls):.1f}-{max(walls):.1f}), "
                f"peak {max(r for _, r in runs):.0f} MB, {len(runs)} runs"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
