"""Audit trail benchmarks, each side by side with its baseline in the same run.

    .venv/bin/python benchmarks/audit_bench.py [--quick] [--write benchmarks/results/audit.md]

1. durable appends/s, one per transaction and 100 per transaction, vs a plain SQLite insert with the same
   durability (WAL, synchronous=FULL, BEGIN IMMEDIATE) of the same events, and vs a constant blob (the raw
   insert floor), rounds interleaved, median reported;
2. the same on PostgreSQL vs a plain insert (if the server answers);
3. full verification rows/s (leaf + chain + Merkle root) over 100k records vs a bare hashlib loop;
4. RFC 9162 inclusion proof size, generation and verification time at 100k leaves;
5. per-task overhead of ``@audited`` on a trivial flytekit task vs the same task without it (p50/p99): store
   only, + OpenLineage file, + OpenLineage HTTP and OTLP traces/metrics to a receiver in another process.
   Lineage events and OTLP spans are built and sent by the pack's emitter process (``emit_process.py``), as in
   production; its CPU time is reported beside the figures (it needs a second core to stay off the task's).
"""

from __future__ import annotations

import argparse
import atexit
import hashlib
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
STATE = Path(tempfile.mkdtemp(prefix="aios-bench-", dir=str(REPO / ".aios") if (REPO / ".aios").is_dir() else None))
atexit.register(shutil.rmtree, STATE, True)
os.environ.update({"AIOS_STATE_DIR": str(STATE), "AIOS_AUDIT_STORE": f"sqlite:///{STATE}/audit.db"})
os.environ.setdefault("FLYTE_LOCAL_CACHE_ENABLED", "false")

from flytekitplugins.aios_audit import AuditEvent  # noqa: E402
from flytekitplugins.aios_audit.merkle import MerkleTree, verify_inclusion  # noqa: E402
from flytekitplugins.aios_audit.stores import open_store  # noqa: E402
from flytekitplugins.aios_audit.verify import verify_store  # noqa: E402
from flytekitplugins.aios_core.context import ExecutionRef  # noqa: E402

EX = ExecutionRef(project="bench", domain="development", name="exec-1", task_name="bench.task", node_id="n0")


def _event(i: int) -> AuditEvent:
    return AuditEvent(
        kind="task", actor="service:bench", status="succeeded", execution=EX, inputs={"x": f"sha256:{i:064x}"}
    )


def _plain_sqlite(path: Path) -> sqlite3.Connection:
    c = sqlite3.connect(path, isolation_level=None)
    c.execute("PRAGMA journal_mode=WAL")
    c.execute("PRAGMA synchronous=FULL")
    c.execute("CREATE TABLE IF NOT EXISTS t (seq INTEGER PRIMARY KEY, entry BLOB, h TEXT)")
    return c


def bench_sqlite(rounds: int, n: int) -> dict[str, float]:
    """Audit store vs plain inserts with the same durability, rounds interleaved, medians.

    Two plain baselines: ``plain_*`` inserts the same events, built and serialized the usual pydantic way
    (``model_dump_json``), one row each (what an un-chained audit table does); ``blob_*`` inserts one constant
    pre-built blob, the raw-insert floor that does no per-record work at all. ``audit_batch_prebuilt`` is the
    store's own work: ``append_many`` of events the caller built before the clock started.
    """
    store = open_store(f"sqlite:///{STATE}/append.db")
    plain = _plain_sqlite(STATE / "plain.db")
    blob = _event(0).model_dump_json().encode()
    sql = "INSERT INTO t (entry, h) VALUES (?, ?)"
    kinds = ("audit_single", "plain_single", "blob_single", "audit_batch", "plain_batch", "blob_batch")
    kinds += ("audit_batch_prebuilt",)
    res: dict[str, list[float]] = {k: [] for k in kinds}
    for _ in range(rounds):
        t = time.perf_counter()
        for i in range(n):
            store.append(_event(i))
        res["audit_single"].append(n / (time.perf_counter() - t))
        t = time.perf_counter()
        for i in range(n):
            plain.execute("BEGIN IMMEDIATE")
            plain.execute(sql, (_event(i).model_dump_json().encode(), "h"))
            plain.execute("COMMIT")
        res["plain_single"].append(n / (time.perf_counter() - t))
        t = time.perf_counter()
        for _i in range(n):
            plain.execute("BEGIN IMMEDIATE")
            plain.execute(sql, (blob, "h"))
            plain.execute("COMMIT")
        res["blob_single"].append(n / (time.perf_counter() - t))
        t = time.perf_counter()
        for b in range(n // 10):
            store.append_many([_event(b * 100 + k) for k in range(100)])
        res["audit_batch"].append(n * 10 / (time.perf_counter() - t))
        t = time.perf_counter()
        for b in range(n // 10):
            plain.execute("BEGIN IMMEDIATE")
            plain.executemany(sql, [(_event(b * 100 + k).model_dump_json().encode(), "h") for k in range(100)])
            plain.execute("COMMIT")
        res["plain_batch"].append(n * 10 / (time.perf_counter() - t))
        t = time.perf_counter()
        for _b in range(n // 10):
            plain.execute("BEGIN IMMEDIATE")
            plain.executemany(sql, [(blob, "h")] * 100)
            plain.execute("COMMIT")
        res["blob_batch"].append(n * 10 / (time.perf_counter() - t))
        batches = [[_event(b * 100 + k) for k in range(100)] for b in range(n // 10)]  # the caller's events, ready
        t = time.perf_counter()
        for batch in batches:
            store.append_many(batch)
        res["audit_batch_prebuilt"].append(n * 10 / (time.perf_counter() - t))
    return {k: statistics.median(v) for k, v in res.items()}


def bench_postgres(n: int) -> dict[str, float] | None:
    url = os.environ.get("AIOS_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
    try:
        import psycopg

        admin = psycopg.connect(url, autocommit=True, connect_timeout=3)
    except Exception:
        return None
    schema = f"aios_bench_{os.getpid()}"
    admin.execute(f'CREATE SCHEMA "{schema}"')
    try:
        scoped = f"{url}?options=-csearch_path%3D{schema}"
        store = open_store(scoped)
        plain = psycopg.connect(scoped, autocommit=True)
        plain.execute("CREATE TABLE t (seq BIGSERIAL PRIMARY KEY, entry BYTEA)")
        row = _event(0).model_dump_json().encode()
        t = time.perf_counter()
        for i in range(n):
            store.append(_event(i))
        audit = n / (time.perf_counter() - t)
        t = time.perf_counter()
        for _i in range(n):
            plain.execute("INSERT INTO t (entry) VALUES (%s)", (row,))
        base = n / (time.perf_counter() - t)
        store.close()
        plain.close()
        return {"audit_single": audit, "plain_single": base}
    finally:
        admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
        admin.close()


def bench_verify(size: int) -> dict[str, float]:
    store = open_store(f"sqlite:///{STATE}/verify.db")
    for b in range(size // 1000):
        store.append_many([_event(b * 1000 + k) for k in range(1000)])
    rows = list(store.scan_raw())
    t = time.perf_counter()
    result = verify_store(store, workers=1)
    serial = size / (time.perf_counter() - t)
    assert result.ok and result.workers == 1
    t = time.perf_counter()
    result = verify_store(store, workers=2)
    full = size / (time.perf_counter() - t)
    assert result.ok and result.workers == 2
    sha = hashlib.sha256
    t = time.perf_counter()
    for _seq, entry, _leaf, prev, _chain in rows:  # baseline: just the two hashes per row, no checks, no I/O
        sha(bytes.fromhex(prev) + sha(b"\x00" + entry).digest()).digest()
    bare = size / (time.perf_counter() - t)
    leaves = [sha(b"\x00" + r[1]).digest() for r in rows]
    t = time.perf_counter()
    tree = MerkleTree(leaves)
    build = time.perf_counter() - t
    idx = size // 3
    proof = tree.inclusion_proof(idx)
    root = tree.root()
    t = time.perf_counter()
    for _ in range(1000):
        assert verify_inclusion(leaves[idx], idx, size, proof, root)
    verify_us = (time.perf_counter() - t) / 1000 * 1e6
    return {
        "verify_rows_s": full,
        "verify_serial_rows_s": serial,
        "bare_hash_rows_s": bare,
        "tree_build_s": build,
        "proof_hashes": len(proof),
        "proof_bytes": 32 * len(proof),
        "proof_verify_us": verify_us,
    }


_RECEIVER = """
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(200); self.send_header("Content-Length", "2"); self.end_headers(); self.wfile.write(b"{}")
    def log_message(self, *a): pass
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
"""


def _receiver() -> tuple[subprocess.Popen[str], str]:
    """An OpenLineage / OTLP-HTTP receiver in a process of its own (it must not compete for this GIL)."""
    proc = subprocess.Popen([sys.executable, "-c", _RECEIVER], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    return proc, f"http://127.0.0.1:{proc.stdout.readline().strip()}"


def bench_overhead(n: int, lineage: str, env: dict[str, str] | None = None) -> dict[str, float]:
    """Per-task time of a trivial task with and without ``@audited``; ``env`` adds standard OPENLINEAGE/OTEL vars."""
    os.environ["AIOS_LINEAGE_URL"] = lineage
    for key in [k for k in os.environ if k.startswith(("OPENLINEAGE", "OTEL_"))]:
        del os.environ[key]
    os.environ.update(env or {})
    from flytekitplugins.aios_core.settings import reset_settings

    reset_settings()
    from benchmarks import audit_tasks as tasks
    from flytekitplugins.aios_audit.emit import flush

    for _ in range(20):  # warm up both (imports, first-call costs)
        tasks.plain(x=1)
        tasks.governed(x=1)
    flush()  # the emitter process of lineage and spans has started (once per process) and is idle
    a: list[float] = []
    b: list[float] = []
    emitter_cpu = _emitter_cpu_s()
    for i in range(n):
        t = time.perf_counter()
        tasks.plain(x=i)
        a.append(time.perf_counter() - t)
        t = time.perf_counter()
        tasks.governed(x=i)
        b.append(time.perf_counter() - t)
    flush()  # outside the timings: what one configuration queued is not sent during the next
    emitter_cpu = _emitter_cpu_s() - emitter_cpu
    q = statistics.quantiles
    pa, pb = q(a, n=100), q(b, n=100)
    return {
        "plain_p50_ms": pa[49] * 1e3,
        "plain_p99_ms": pa[98] * 1e3,
        "audited_p50_ms": pb[49] * 1e3,
        "audited_p99_ms": pb[98] * 1e3,
        "emitter_cpu_ms": emitter_cpu / n * 1e3,
    }


def _emitter_cpu_s() -> float:
    """CPU seconds the emitter process (lineage events, OTLP spans) has used so far (Linux /proc; else 0)."""
    from flytekitplugins.aios_audit import emit

    proc = emit._process._proc
    try:
        fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split() if proc else []
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK") if fields else 0.0


def _row(label: str, audit: float, plain: float) -> str:
    return f"| {label} | {audit:,.0f}/s | {plain:,.0f}/s | {plain / audit:.2f}x |"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smaller sizes (smoke run)")
    ap.add_argument("--write", default=None, help="write a markdown report here")
    ap.add_argument("--overhead-only", action="store_true", help="only section 5 (per-task overhead of @audited)")
    args = ap.parse_args()
    size = 20_000 if args.quick else 100_000
    lines = [f"machine: {platform.platform()}, {os.cpu_count()} CPUs, python {platform.python_version()}", ""]
    if not args.overhead_only:  # sections 1-4 (storage, verification, proofs)
        s = bench_sqlite(rounds=3 if args.quick else 5, n=200 if args.quick else 500)
        lines += [
            "| SQLite durable appends (median of interleaved rounds) | audit store | plain insert, same events | ratio "
            "| plain insert, constant blob | ratio |",
            "|---|---|---|---|---|---|",
            _row("one per transaction", s["audit_single"], s["plain_single"])
            + f" {s['blob_single']:,.0f}/s | {s['blob_single'] / s['audit_single']:.2f}x |",
            _row("100 per transaction", s["audit_batch"], s["plain_batch"])
            + f" {s['blob_batch']:,.0f}/s | {s['blob_batch'] / s['audit_batch']:.2f}x |",
            _row("100 per transaction, events built beforehand", s["audit_batch_prebuilt"], s["plain_batch"])
            + f" {s['blob_batch']:,.0f}/s | {s['blob_batch'] / s['audit_batch_prebuilt']:.2f}x |",
            "",
        ]
        pg = bench_postgres(200 if args.quick else 500)
        if pg:
            lines += [
                "| PostgreSQL durable appends, one client | audit store (advisory lock + chain) | plain insert "
                "| ratio |",
                "|---|---|---|---|",
                _row("one per transaction", pg["audit_single"], pg["plain_single"]),
                "",
            ]
        v = bench_verify(size)
        lines += [
            f"| verification over {size:,} records | rows/s |",
            "|---|---|",
            f"| `verify_store`, two processes (default on 2+ CPUs; leaf + chain + seq + Merkle root, from SQLite) "
            f"| {v['verify_rows_s']:,.0f} |",
            f"| `verify_store`, one process (`AIOS_VERIFY_WORKERS=1`) | {v['verify_serial_rows_s']:,.0f} |",
            f"| baseline: two bare SHA-256 per row, rows already in memory | {v['bare_hash_rows_s']:,.0f} |",
            "",
            f"RFC 9162 inclusion proof at {size:,} leaves: {v['proof_hashes']} hashes ({v['proof_bytes']} bytes), "
            f"verify {v['proof_verify_us']:.1f} us; building all tree levels {v['tree_build_s'] * 1e3:.0f} ms.",
            "",
        ]
    n = 300 if args.quick else 1000
    lines += [
        "| per-task overhead, trivial task, in-process | p50 | p99 | added p50 | added p99 |",
        "|---|---|---|---|---|",
    ]
    receiver, url = _receiver()
    standard = {"OPENLINEAGE_URL": url, "OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_ENDPOINT": url}
    for label, lineage, env in (
        ("store only (lineage none)", "none", {}),
        ("store + OpenLineage file (START + COMPLETE)", f"file:{STATE}/ol.jsonl", {}),
        ("store + OpenLineage HTTP + OTLP traces and metrics", "none", standard),
    ):
        o = bench_overhead(n, lineage, env)
        lines.append(f"| plain @task ({label} run) | {o['plain_p50_ms']:.2f} ms | {o['plain_p99_ms']:.2f} ms | | |")
        emitter = f" (emitter process: {o['emitter_cpu_ms']:.2f} ms CPU/task)" if o["emitter_cpu_ms"] else ""
        lines.append(
            f"| @task @audited, {label}{emitter} | {o['audited_p50_ms']:.2f} ms | {o['audited_p99_ms']:.2f} ms | "
            f"{o['audited_p50_ms'] - o['plain_p50_ms']:.2f} ms | {o['audited_p99_ms'] - o['plain_p99_ms']:.2f} ms |"
        )
    from flytekitplugins.aios_audit.emit import shutdown

    shutdown()  # the last spans and metrics, while the receiver still listens
    receiver.kill()
    text = "\n".join(lines)
    print(text)
    if args.write:
        Path(args.write).write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
