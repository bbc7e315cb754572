"""Stress: many executions race to use the same approved request; exactly one may win, every time.

Run: ``.venv/bin/python benchmarks/consumption_races.py [--races 1000] [--workers 4] [--backend sqlite|postgres|both]``
(about two minutes for both backends). For each backend it opens and approves ``--races`` payment requests through
the pack's own API, then forks ``--workers`` processes, each its own local execution. For every request all workers
wait on one barrier and call ``verify_requests`` at the same moment. Counted: per request, how many workers got
``approved`` (must be exactly 1), how many lost a claim race inside the store (the losing transaction is rolled
back whole and re-read: see ``aios_approvals.verify``), and at the end the log verifies (hash chain and Merkle
root) and the ``audit_claims`` table equals the claims sealed in the log.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import multiprocessing as mp
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from flytekitplugins.aios_approvals.evaluate import Env
from flytekitplugins.aios_core.settings import get_settings

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
PG_URL = os.environ.get("AIOS_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


def _env(store: str, state: Path) -> None:
    os.environ.update(AIOS_STATE_DIR=str(state), AIOS_AUDIT_STORE=store, AIOS_CONFIG_DIR=str(REPO / "config"))
    os.environ.pop("AIOS_PRINCIPAL", None)


def _approved(n: int) -> list[str]:
    from flytekitplugins.aios_approvals import decide, open_request

    ids = []
    for i in range(n):
        rid = open_request(
            "payment-signoff",
            "medium",
            f"sha256:race-{i}",
            {"amount": 20_000 + i},
            requester="service:bench",
            env=Env.load(get_settings()),
        )
        assert decide(rid, "user:bob", "approve", "benchmark", env=Env.load(get_settings())).accepted
        ids.append(rid)
    return ids


def _worker(i: int, ids: list[str], barrier: Any, out: Any) -> None:
    from flytekitplugins.aios_approvals import verify_requests
    from flytekitplugins.aios_audit import close_all
    from flytekitplugins.aios_core.context import local_run
    from flytekitplugins.aios_core.settings import reset_settings

    close_all()
    reset_settings()
    results = []
    with local_run(f"racer-{i}"):
        for rid in ids:
            barrier.wait(timeout=120)
            results.append(
                verify_requests("payment-signoff", [rid], after_signal=False, env=Env.load(get_settings()))[0].status
            )
    out.put((i, results))


def _run(store: str, races: int, workers: int) -> dict[str, Any]:
    from flytekitplugins.aios_audit import audit_log, close_all
    from flytekitplugins.aios_audit.claims import verify_claims
    from flytekitplugins.aios_audit.verify import verify_store
    from flytekitplugins.aios_core.settings import reset_settings

    reset_settings()
    close_all()
    ids = _approved(races)
    close_all()
    ctx = mp.get_context("fork")
    barrier, out = ctx.Barrier(workers), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(i, ids, barrier, out)) for i in range(workers)]
    t0 = time.perf_counter()
    for p in procs:
        p.start()
    got = dict(out.get(timeout=3600) for _ in procs)
    for p in procs:
        p.join()
    seconds = time.perf_counter() - t0
    winners = collections.Counter(sum(got[w][k] == "approved" for w in got) for k in range(races))
    store_obj = audit_log(get_settings())
    result = verify_store(store_obj)
    claims = verify_claims(store_obj)
    return {
        "races": races,
        "workers": workers,
        "winners_per_race": dict(sorted(winners.items())),
        "exactly_one_winner": winners.get(1, 0),
        "seconds": round(seconds, 1),
        "verify": result.summary(),
        "claims_problems": len(claims),
    }


@contextlib.contextmanager
def _scratch_store(backend: str) -> Iterator[tuple[str, Path]]:
    """``(store URL, state folder)`` of one run, both removed when it ends (failure included): a SQLite file in the
    folder, or a schema of its own in the shared PostgreSQL test database."""
    import psycopg

    state = Path(tempfile.mkdtemp(prefix=f"aios-races-{backend}-"))
    schema = f"aios_bench_{uuid.uuid4().hex[:10]}"
    try:
        if backend == "sqlite":
            yield f"sqlite:///{state}/audit.db", state
            return
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
        try:
            yield f"{PG_URL}{'&' if '?' in PG_URL else '?'}options=-csearch_path%3D{schema}", state
        finally:
            with psycopg.connect(PG_URL, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        shutil.rmtree(state, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--races", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    args = parser.parse_args()
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    failed = False
    for backend in backends:
        with _scratch_store(backend) as (store, state):
            _env(store, state)
            r = _run(store, args.races, args.workers)
        ok = r["exactly_one_winner"] == args.races and r["claims_problems"] == 0 and r["verify"].startswith("OK")
        failed |= not ok
        print(f"{backend}: {r}")
        print(f"{backend}: {'PASS' if ok else 'FAIL'}: exactly one winner in {r['exactly_one_winner']}/{r['races']}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
