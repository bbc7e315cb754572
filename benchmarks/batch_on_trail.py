"""The governed document batch on an empty audit trail and on a large one: does the batch slow down as the log grows?

    .venv/bin/python benchmarks/batch_on_trail.py --trail /tmp/aios-trails/trail-10000000.db [--n 48] [--repeat 1]
    .venv/bin/python benchmarks/batch_on_trail.py --trail-store "$AIOS_AUDIT_STORE" --trail-state "$AIOS_STATE_DIR" \
        [--n 48] [--repeat 1]     # a PostgreSQL trail, in the environment it was built with

The same deterministic corpus (``tasks.documents.corpus``, ``--n`` documents: PDF, DOCX, e-mail, HTML, scans, bad
files) goes through ``pyflyte run workflows/document_processing.py process_documents`` (a separate process, local
Flyte execution, launched as ``service:document-pipeline``) twice, one after the other, per repeat:

* **empty**: a fresh state folder and an empty store of the trail's kind (the baseline): a SQLite file, or for a
  PostgreSQL trail a new schema on the same server (created for the run, dropped after);
* **trail**: the store ``--trail`` (a SQLite file) or ``--trail-store`` (a PostgreSQL URL naming the trail's schema)
  names, with its own state folder (``<trail>.state``, or ``--trail-state``: the ``AIOS_STATE_DIR`` that
  ``projections_bench.py --build`` ran with), so every governance call of the batch (catalog look-ups, policy
  decisions, approval requests, decisions, consumption, the acting point's re-verification) reads and writes a log of
  that size.

An untimed warm-up batch on an empty store comes first: it trains the document models once (into a folder both
runs share, ``AIOS_DOCUMENT_MODELS_DIR``) and warms the OS caches. Each run posts to a system of record of its own.
While the workflow runs, this process decides its approval requests exactly as ``aios demo`` does (through
``aios approvals list`` / ``approve`` / ``reject`` in separate processes: the first payment sign-off approved, the
others rejected, document reviews approved), so both runs do the same work; the batch summaries (documents,
quarantined, routed to review, acted) must be equal or the run fails. The figure is the workflow process's wall
time, launch to exit, and its ratio trail / empty.

The trail grows by the batch's records on every run (a few hundred). Requests already pending when the batch starts
(the trail's own) are left as they are. Each pair runs its own corpus (seed ``--seed`` plus the pair's index): the
acting point posts a document once ever, so a corpus the trail has already seen posted would be refused there.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _env(state: Path, store: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIOS_", "OPENLINEAGE", "OTEL_"))}
    env.update(
        AIOS_STATE_DIR=str(state),
        AIOS_AUDIT_STORE=store,
        AIOS_CONFIG_DIR=str(REPO / "config"),
        AIOS_LINEAGE_URL="none",
        FLYTE_SDK_LOGGING_LEVEL="40",
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        PYTHONPATH=f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
    )
    return env


def _pending(env: dict[str, str]) -> list[dict[str, Any]]:
    from flytekitplugins.aios_core.demo import _bin, _run

    rows: list[dict[str, Any]] = json.loads(
        _run([_bin("aios"), "approvals", "list", "--json"], env, REPO).stdout or "[]"
    )
    return rows


def _drive(proc: subprocess.Popen[str], env: dict[str, str], before: set[str], timeout: float) -> int:
    """Decide the batch's pending requests as ``aios demo`` does; those pending before it started are left alone."""
    from flytekitplugins.aios_core.demo import _decide

    decided: set[str] = set()
    payment_done = False
    deadline = time.monotonic() + timeout
    while proc.poll() is None:
        if time.monotonic() > deadline:
            proc.kill()
            raise SystemExit(f"the workflow did not finish within {timeout:.0f} s")
        for row in sorted(_pending(env), key=lambda r: (r["gate"], r["request_id"])):
            rid = row["request_id"]
            if rid in before or rid in decided or row["status"] != "pending":
                continue
            first_payment = row["gate"] == "payment-signoff" and not payment_done
            _decide(row, first_payment, env, REPO)
            payment_done = payment_done or first_payment
            decided.add(rid)
        time.sleep(1.0)
    return len(decided)


def run_batch(corpus: Path, state: Path, store: str, out: Path, models: Path) -> dict[str, Any]:
    """One batch: the workflow process and, beside it, the approvers; its wall time and summary."""
    from flytekitplugins.aios_core.demo import LAUNCHER, _summary_from

    out.mkdir(parents=True, exist_ok=True)
    env = _env(state, store)
    env["AIOS_DOCUMENT_MODELS_DIR"] = str(models)  # trained once by the warm-up run, then shared
    env["AIOS_SYSTEM_OF_RECORD_URL"] = f"sqlite:///{out}/system_of_record.db"  # each run posts afresh
    wf_env = {**env, "AIOS_PRINCIPAL": LAUNCHER, "AIOS_RESULTS_DIR": str(out / "results")}
    options = json.dumps({"approval_timeout_s": 600})
    cmd = [str(BIN / "pyflyte"), "run", "workflows/document_processing.py", "process_documents"]
    cmd += ["--source", str(corpus), "--options", options]
    log_path = out / "workflow.log"
    before = {r["request_id"] for r in _pending(env)}  # the trail's own open requests are not the batch's
    with log_path.open("w") as log_file:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, env=wf_env, cwd=REPO, stdout=log_file, stderr=subprocess.STDOUT, text=True)
        decided = _drive(proc, env, before, 1800.0)
        proc.wait()
        wall = time.perf_counter() - t0
    text = log_path.read_text()
    if proc.returncode != 0:
        raise SystemExit(f"the workflow failed ({proc.returncode}); its log is {log_path}:\n{text[-2000:]}")
    summary = _summary_from(text)
    if not summary:
        raise SystemExit(f"no batch summary in {log_path}")
    return {"wall_s": wall, "summary": summary, "decided": decided}


def _counts(summary: dict[str, Any]) -> dict[str, Any]:
    """What the batch did (documents, outcomes, quarantine, routes), without its timings and costs."""
    skip = ("latency", "cpu_seconds", "cost", "source")
    return {k: v for k, v in summary.items() if not k.startswith(skip)}


def _size(store: str) -> int:
    from flytekitplugins.aios_audit.stores import open_store

    s = open_store(store)
    try:
        return s.size()
    finally:
        s.close()


@contextlib.contextmanager
def _empty_store(trail_store: str, folder: Path, tag: str) -> Iterator[str]:
    """An empty store of the trail's kind: a SQLite file under ``folder``, or a new schema on the trail's PostgreSQL
    server (the URL's other options kept), dropped afterwards."""
    if trail_store.startswith("sqlite:///"):
        yield f"sqlite:///{folder}/audit.db"
        return
    import psycopg

    schema = f"aios_bench_empty_{os.getpid()}_{tag}"
    parts = urllib.parse.urlsplit(trail_store)
    query = [(k, v) for k, v in urllib.parse.parse_qsl(parts.query) if k != "options"]
    server = urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))
    store = urllib.parse.urlunsplit(
        parts._replace(query=urllib.parse.urlencode([*query, ("options", f"-csearch_path={schema}")]))
    )
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield store
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    trail = ap.add_mutually_exclusive_group(required=True)
    trail.add_argument("--trail", type=Path, help="SQLite trail file (built by projections_bench.py)")
    trail.add_argument("--trail-store", help="PostgreSQL URL of a trail's schema (built by projections_bench.py)")
    ap.add_argument("--trail-state", type=Path, help="the PostgreSQL trail's AIOS_STATE_DIR (its keys and catalog)")
    ap.add_argument("--n", type=int, default=48, help="documents in the corpus")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--repeat", type=int, default=1, help="pairs of runs (empty, trail)")
    args = ap.parse_args()
    if args.trail is not None and not args.trail.is_file():
        raise SystemExit(f"no trail at {args.trail}: build one with benchmarks/projections_bench.py --cache DIR")
    if args.trail_store is not None and (args.trail_state is None or not args.trail_state.is_dir()):
        raise SystemExit("--trail-store needs --trail-state: the state folder the trail was built with")
    trail_store = args.trail_store or f"sqlite:///{args.trail}"
    trail_state = args.trail_state or (args.trail.with_suffix(".state") if args.trail is not None else Path())
    work = Path(tempfile.mkdtemp(prefix="aios-bench-batch-"))
    # A corpus per pair (seeds --seed, --seed + 1, ...): a document the trail has seen posted is refused at the acting
    # point ever after (its claim is once ever), so a second pair on the same corpus would post nothing on the trail.
    corpora = [work / f"corpus-{i}" for i in range(args.repeat)]
    for i, corpus in enumerate(corpora):
        gen = [sys.executable, "-m", "tasks.documents.corpus", "--out", str(corpus), "--n", str(args.n)]
        subprocess.run([*gen, "--seed", str(args.seed + i)], cwd=REPO, env=_env(work, "sqlite:///unused"), check=True)
    corpus = corpora[0]
    models = work / "models"
    warm = work / "warm-up"  # untimed: trains the document models once and warms the OS caches
    run_batch(corpus, warm, f"sqlite:///{warm}/audit.db", warm / "out", models)
    pairs: list[tuple[dict[str, Any], int, dict[str, Any]]] = []
    try:
        for i, corpus in enumerate(corpora):
            empty_state = work / f"empty-{i}"
            with _empty_store(trail_store, empty_state, str(i)) as empty_store:
                empty = run_batch(corpus, empty_state, empty_store, work / f"out-empty-{i}", models)
            before = _size(trail_store)
            big = run_batch(corpus, trail_state, trail_store, work / f"out-trail-{i}", models)
            pairs.append((empty, before, big))
            if _counts(big["summary"]) != _counts(empty["summary"]):
                raise SystemExit(f"the runs did different work: {empty['summary']} vs {big['summary']}")
            print(
                f"pair {i + 1}: empty {empty['wall_s']:.1f} s, trail of {before:,} records {big['wall_s']:.1f} s "
                f"({big['wall_s'] / empty['wall_s']:.2f}x)",
                file=sys.stderr,
                flush=True,
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    load = os.getloadavg()
    kind = "PostgreSQL" if args.trail_store else "SQLite"
    print(f"Host: {platform.node()}, {os.cpu_count()} CPUs; {kind} stores; load average {load[0]:.2f} at the end.")
    print("")
    print("| batch | audit trail before the run | workflow wall time | ratio to the empty trail | summary |")
    print("|---|---|---|---|---|")
    for empty, before, big in pairs:
        s = big["summary"]
        brief = ", ".join(f"{k} {s[k]}" for k in ("documents_in", "processed", "quarantined", "posted") if k in s)
        print(f"| {args.n} documents | empty | {empty['wall_s']:.1f} s | 1.00x | {brief} |")
        ratio = big["wall_s"] / empty["wall_s"]
        print(f"| {args.n} documents | {before:,} records | {big['wall_s']:.1f} s | {ratio:.2f}x | same |")


if __name__ == "__main__":
    main()
