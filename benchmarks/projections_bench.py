"""Governance reads on large audit trails: indexed projections against the old full-scan folds.

Builds SQLite trails of 1k, 100k and 1M records through the pack's own append API (batched ``append_many``), with
the mix of the issue: 70% policy decisions, 15% task records, 7% approval requests, 7% signed approval decisions,
1% catalog records (registrations over 200 model names, after the seed of config/models.yaml), about 1.5 KB per
record. Requests are spread over 30 days with the default one-hour timeout, so a few dozen are still open; all but
the newest 40 are approved by a signed decision. Trails are cached under ``--cache`` (default /tmp/aios-trails,
outside the repository; 1M records take about 1.6 GB) and reused. A trail built before 2026-12-07 holds requests
whose ids are not those ``open_request`` gives their content, which the approvals fold now counts for nothing (a
store writer's planted requests, ``ApprovalRequest.integrity_problem``): build it again.

Each operation runs in a fresh process and reports its wall time and peak RSS:

* ``catalog``       first catalog look-up: ``catalog(settings).champion(name)``;
* ``open_request``  first ``open_request`` (new content: it appends one request record to the trail);
* ``approvals list``  the ``aios approvals list`` command;
* ``audit show``    the ``aios audit show --limit 50`` command;

and beside each, the old path in a fresh process (the baseline): the whole-log folds the pack used before
(``state.folded``, ``CatalogState`` over ``scan_kinds``, and ``show`` filtering a full ``scan`` in Python).

Quiet-run command (whole machine to itself, about 20 minutes the first time for the 1M build, then minutes)::

    .venv/bin/python benchmarks/projections_bench.py --sizes 1000,100000,1000000 --out benchmarks/results/projections.md

10M records (about 15 GB, an hour or more to build on 2 cores) is supported (``--sizes 10000000``) but was not run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
GATE, REQUESTER, APPROVERS = "payment-signoff", "service:document-pipeline", ("user:bob", "user:carol")
MODELS = 200
PENDING = 40
BATCH = 2000


def _env(trail: Path) -> dict[str, str]:
    state = trail.with_suffix(".state")
    return dict(
        os.environ,
        AIOS_STATE_DIR=str(state),
        AIOS_AUDIT_STORE=f"sqlite:///{trail}",
        AIOS_CONFIG_DIR=str(REPO / "config"),
        AIOS_PRINCIPAL="user:bob",
        AIOS_ACTOR="service:document-pipeline",
        FLYTE_SDK_LOGGING_LEVEL="40",
    )


def compile_pack(root: Path) -> None:
    """Byte-compile the pack in checkout ``root`` before timing its commands, as ``scripts/setup.sh`` does: a module
    edited since (or a baseline's worktree, which setup never compiled) would otherwise be compiled from source in
    each timed process where Python writes no bytecode itself (PYTHONDONTWRITEBYTECODE, as this machine's shell sets
    it): about 60 ms on each command of one arm of a comparison, measured."""
    sources = [str(root / "plugins"), str(root / "connectors")]
    subprocess.run([sys.executable, "-m", "compileall", "-q", *sources], check=True, stdout=subprocess.DEVNULL)


# ---- building a trail ---------------------------------------------------------------------------------------------


def _padding(i: int) -> dict[str, Any]:
    """Realistic policy context: about 1.2 KB of non-secret facts, keys sorted at every level (canonical)."""
    checks = {f"check_{k}": {"passed": (i + k) % 5 != 0, "score": ((i * 7 + k) % 100) / 100} for k in range(12)}
    return {
        "checks": {k: checks[k] for k in sorted(checks)},
        "classification": ["public", "internal", "confidential"][i % 3],
        "document": f"sha256:{i:064x}",
        "policy_version": "sha256:" + "ab" * 32,
        "reasons": [f"rule-{k}: condition {k} holds for this document" for k in range(6)],
    }


def _fast_event(**fields: Any) -> Any:
    """An AuditEvent without re-validating (the bulk kinds only): every dict given is already key-sorted."""
    from flytekitplugins.aios_audit import AuditEvent

    return AuditEvent.model_construct(**fields)


def build(trail: Path, size: int) -> None:
    """Append ``size`` records (roughly) in batches; called in its own process with ``_env(trail)``."""
    from flytekitplugins.aios_approvals.evaluate import Env, new_decision
    from flytekitplugins.aios_approvals.models import ApprovalRequest
    from flytekitplugins.aios_audit import AuditEvent, audit_log
    from flytekitplugins.aios_catalog.catalog import catalog
    from flytekitplugins.aios_core.context import ExecutionRef
    from flytekitplugins.aios_core.settings import get_settings

    settings = get_settings()
    env = Env.load(settings)
    store = audit_log(settings, emit=False)
    next(catalog(settings).names(), None)  # the seed of config/models.yaml, as the first catalog read writes it
    # (a look-up, not a listing: listing every version of a grown trail's catalog took a minute at 10M)
    now = dt.datetime.now(dt.UTC)
    n_requests = max(PENDING + 1, size * 7 // 100)
    t0, done, req_i = time.perf_counter(), store.size(), 0
    runs: dict[int, Any] = {}
    while done < size:
        events: list[Any] = []
        for i in range(done, min(size, done + BATCH)):
            slot = i % 100
            ex = runs.get(i // 500) or runs.setdefault(
                i // 500, ExecutionRef(project="aios", domain="production", name=f"run-{i // 500}", task_name="extract")
            )
            if slot < 70:
                events.append(
                    AuditEvent(
                        kind="policy_decision",
                        actor="service:document-pipeline",
                        status="allow",
                        subject=f"sha256:{i:064x}",
                        execution=ex,
                        attributes=_padding(i),
                    )
                )
            elif slot < 85:
                events.append(
                    AuditEvent(
                        kind="task",
                        actor="service:document-pipeline",
                        status="succeeded",
                        subject=f"task-{i}",
                        execution=ex,
                        inputs={"document": f"sha256:{i:064x}"},
                        outputs={"fields": f"sha256:{i + 1:064x}"},
                        attributes=_padding(i),
                    )
                )
            elif slot < 92:
                created = now - dt.timedelta(days=30) * (1 - req_i / n_requests)
                req = ApprovalRequest.opened(  # the content key and id open_request gives (the fold counts no other)
                    gate=GATE,
                    risk="low",
                    subject=f"sha256:{i:064x}",
                    summary={"amount": 10000 + i % 90000, "vendor": f"vendor-{i % 300}"},
                    evidence={"document": f"sha256:{i:064x}"},
                    requester=REQUESTER,
                    launcher="service:launcher",
                    reason="payment-over-10k",
                    roles=["finance-approver"],
                    quorum=1,
                    created_at=created,
                    expires_at=created + dt.timedelta(seconds=settings.approval_timeout_s),
                    execution=ex.execution_key,
                    signal_id=GATE,
                )
                req_i += 1
                events.append(
                    AuditEvent(
                        kind="approval_request",
                        actor="service:launcher",
                        status="pending",
                        subject=req.request_id,
                        execution=ex,
                        inputs=dict(req.evidence),
                        attributes={"request": req.model_dump(mode="json"), "request_digest": req.digest()},
                    )
                )
                if req_i <= n_requests - PENDING:  # its signed decision, 7% of the records
                    dec = new_decision(env, req, APPROVERS[i % 2], "approve", "checked")
                    events.append(
                        AuditEvent(
                            kind="approval_decision",
                            actor=dec.approver,
                            status="approve",
                            subject=req.request_id,
                            execution=ex,
                            approvals=[dec.model_dump(mode="json")],
                            attributes={"decision": dec.model_dump(mode="json"), "source": "cli", "execution": ""},
                        )
                    )
            elif slot == 99:
                # spread over the MODELS names (i % MODELS, as until 2026-12-01, gave only two: i ends in 99 here)
                name = f"model-{(i // 100) % MODELS}"
                entry = {
                    "name": name,
                    "version": f"v{i}",
                    "digest": f"sha256:{i:064x}",
                    "owner": "team:ml-platform",
                    "metrics": {"accuracy": 0.9},
                    "stage": "candidate",
                }
                events.append(
                    AuditEvent(
                        kind="catalog",
                        actor="service:retraining",
                        status="register",
                        subject=f"{name}@v{i}",
                        execution=ex,
                        attributes={"op": "register", "entry": entry},
                    )
                )
        if done < BATCH:  # the unvalidated events serialize exactly as validated ones would (canonical bytes)
            to_json = AuditEvent.__pydantic_serializer__.to_json
            assert all(to_json(AuditEvent.model_validate_json(to_json(e))) == to_json(e) for e in events)
        store.append_many(events)
        done = store.size()
        if done // 50_000 != (done - len(events)) // 50_000:
            rate = done / (time.perf_counter() - t0)
            print(f"  built {done}/{size} records ({rate:,.0f}/s)", file=sys.stderr, flush=True)
    _show_behind(store)


def _show_behind(store: Any) -> None:
    """Print how far SQLite's ``audit_show`` is behind the log after a build, and stop the benchmark when writers left
    a batch or more behind: the next appends would catch it up (slowing the first governance runs) and ``audit
    show`` would read the rest without an index, so no figure measured on the trail would be the steady state's."""
    from flytekitplugins.aios_audit.stores import sqlite_show

    indexed = getattr(store, "show_indexed", None)
    if indexed is None:  # PostgreSQL: no audit_show
        return
    behind = store.size() - indexed()
    print(f"  audit_show: {behind} records behind the log", file=sys.stderr, flush=True)
    if behind >= sqlite_show.BATCH:
        raise SystemExit(f"the build left audit_show {behind} records behind (writers leave fewer than a batch)")


# ---- one operation in this (fresh) process ------------------------------------------------------------------------


def op(name: str) -> None:
    """Run one operation; print its own time as JSON (after imports: the wall time includes them)."""
    from flytekitplugins.aios_approvals import state as st
    from flytekitplugins.aios_approvals.evaluate import Env, evaluate
    from flytekitplugins.aios_approvals.service import open_request
    from flytekitplugins.aios_audit import audit_log
    from flytekitplugins.aios_catalog.catalog import catalog
    from flytekitplugins.aios_catalog.fold import CatalogState
    from flytekitplugins.aios_core.context import current_execution
    from flytekitplugins.aios_core.settings import get_settings

    if name.startswith("open_request"):
        current_execution()  # imports flytekit (seconds, whatever the trail's size)
    t0 = time.perf_counter()
    settings = get_settings()
    result: Any = None
    if name == "catalog":
        champ = catalog(settings).champion("all-MiniLM-L6-v2")
        result = champ.model_id if champ else None
    elif name == "catalog-baseline":
        state = CatalogState()
        for r in audit_log(settings, emit=False).scan_kinds(("catalog",)):
            state.apply(r)
        champ = state.champion("all-MiniLM-L6-v2")
        result = champ.model_id if champ else None
    elif name in ("open_request", "open_request-baseline"):
        if name.endswith("baseline"):  # the old path: every read folds the whole log
            import flytekitplugins.aios_approvals.service as service

            service.projection = st.folded  # type: ignore[attr-defined]
        subject = f"sha256:bench-{time.time_ns()}"
        result = open_request(GATE, "low", subject, {"amount": 12345}, requester=REQUESTER, env=Env.load(settings))
    elif name == "approvals-list-baseline":
        env = Env.load(settings)
        result = sum(evaluate(s, env).status == "pending" for s in st.folded(env.store).requests.values())
    elif name == "audit-show-baseline":
        result = len([r for r in audit_log(settings, emit=False).scan()][-50:])
    else:
        raise SystemExit(f"unknown operation {name!r}")
    print(json.dumps({"op": name, "seconds": time.perf_counter() - t0, "result": str(result)}))


def governance(n: int) -> None:
    """Every governance call of the document pipeline's path, ``n`` times each in this fresh process; print JSON.

    Per document, in the pipeline's order: the catalog look-up of the classifier's champion, the policy decision
    with its approval request (``decide_many`` of one invoice over the sign-off threshold: a Cedar evaluation, its
    durable record and ``open_request``), the approvers' ``decide`` (as many as the quorum needs), and the
    consumption (``authorize``: the acting point re-reads the decision and the approval and claims them). Each
    call is timed alone, the first one of the process included (its connection, caches and key loading).
    """
    import pandas as pd

    sys.path.insert(0, str(REPO))  # the Flyte project's tasks/ (the pipeline's governance code)
    from flytekitplugins.aios_approvals.acting import ActionClaim, authorize
    from flytekitplugins.aios_approvals.evaluate import Env
    from flytekitplugins.aios_approvals.service import decide
    from flytekitplugins.aios_catalog.catalog import catalog
    from flytekitplugins.aios_core.settings import get_settings
    from tasks.documents import report, seals
    from tasks.documents.governance import decide_many

    settings = get_settings(overrides={"principal": REQUESTER})  # the pipeline launched it, the approvers decide
    env = Env.load(settings)
    times: dict[str, list[float]] = {"catalog look-up": [], "policy decision + open_request": []}
    times.update({"decide": [], "consumption (authorize)": []})
    tag = f"{time.time_ns():x}"[-10:]
    authorized = 0
    for i in range(n):
        t = time.perf_counter()
        champ = catalog(settings).champion("all-MiniLM-L6-v2")
        times["catalog look-up"].append(time.perf_counter() - t)
        assert champ is not None, "the catalog has no champion for the classifier"
        doc = {"digest": f"sha256:{tag}{i:054d}", "label": "invoice", "amount": 25_000.0 + i, "currency": "EUR"}
        doc.update(confidence=0.99, personal=False, route="cheap", injection=False, status="ok")
        doc.update(name=f"g{i}.txt", doc_id=f"g{i}", text_digest=f"sha256:{i:064d}")
        # the classification seal the acting point checks the decision against (``classify`` writes one a chunk;
        # not timed: it is the pipeline's record, not a governance call)
        doc["sealed_by"] = seals.seal([doc], seals.CLASSIFIED, REQUESTER, settings)
        t = time.perf_counter()
        d = decide_many([doc], REQUESTER, 3600.0, settings)[0]
        times["policy decision + open_request"].append(time.perf_counter() - t)
        assert d.request_id, f"the invoice needed no approval ({d.effect}, {d.reason}): the benchmark needs one"
        doc.update(action=d.action, effect=d.effect, gate=d.gate, request_id=d.request_id)
        doc.update(policy_record=d.policy_record, reason=d.reason)
        doc["decision_digest"] = d.digest(doc["digest"], {k: doc[k] for k in ("label", "amount", "currency")})
        status = "pending"
        for who in APPROVERS:
            t = time.perf_counter()
            res = decide(d.request_id, who, "approve", "benchmark sign-off", env=env)
            times["decide"].append(time.perf_counter() - t)
            assert res.accepted, res.message
            status = res.outcome.status
            if status == "approved":
                break
        assert status == "approved", status
        rows = report.action_rows(pd.DataFrame([doc]), REQUESTER, {d.request_id}).to_dict(orient="records")
        t = time.perf_counter()
        claims = [ActionClaim.from_row(r) for r in rows]
        verdicts = authorize(claims, actor=REQUESTER, env=env, destination="document_actions@benchmark")
        times["consumption (authorize)"].append(time.perf_counter() - t)
        authorized += sum(v.allowed for v in verdicts)
    assert authorized == n, f"{authorized} of {n} actions authorized"
    out: dict[str, Any] = {}
    for label, v in times.items():
        s = sorted(v[1:])  # the process's first call (connection, policy set, keys) is reported on its own
        out[label] = {
            "n": len(v),
            "first_ms": v[0] * 1e3,
            "p50_ms": s[len(s) // 2] * 1e3,
            "p99_ms": s[min(len(s) - 1, int(len(s) * 0.99))] * 1e3,
            "max_ms": s[-1] * 1e3,
        }
    print(json.dumps({"op": "governance", "calls": out}))


def measure(cmd: list[str], env: dict[str, str], timeout: float) -> dict[str, Any]:
    """One fresh process: wall time, peak RSS, and the operation's own time when it prints it."""
    wrapper = (
        "import json,resource,subprocess,sys,time;t=time.perf_counter();"
        "p=subprocess.run(sys.argv[1:],stdout=subprocess.PIPE,stderr=subprocess.PIPE,text=True);"
        "w=time.perf_counter()-t;r=resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss;"
        "print(json.dumps({'wall_s':w,'rss_mb':r/1024,'rc':p.returncode,'out':p.stdout[-3000:],'err':p.stderr[-800:]}))"
    )
    try:
        res = subprocess.run(
            [sys.executable, "-c", wrapper, *cmd], env=env, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    doc = json.loads(res.stdout.strip().splitlines()[-1])
    if doc["rc"] != 0:
        return {"error": (doc["err"] or doc["out"])[-400:]}
    for line in doc["out"].splitlines():
        if line.startswith('{"op"'):
            doc["op_s"] = json.loads(line)["seconds"]
    return {k: doc[k] for k in ("wall_s", "rss_mb", "op_s") if k in doc}


def _governance_calls(trail: Path, n: int) -> dict[str, Any]:
    """Run :func:`governance` in a fresh process on ``trail``; its per-call figures."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--governance", str(n)]
    res = subprocess.run(cmd, env=_env(trail), capture_output=True, text=True, timeout=1800)
    if res.returncode != 0:
        raise SystemExit(f"governance calls failed on {trail}: {(res.stderr or res.stdout)[-800:]}")
    calls: dict[str, Any] = json.loads(res.stdout.strip().splitlines()[-1])["calls"]
    return calls


OPS: list[tuple[str, list[str], list[str] | None]] = [
    ("first catalog look-up", ["op", "catalog"], ["op", "catalog-baseline"]),
    ("first `open_request`", ["op", "open_request"], ["op", "open_request-baseline"]),
    ("`aios approvals list`", ["aios", "approvals", "list"], ["op", "approvals-list-baseline"]),
    ("`aios audit show --limit 50`", ["aios", "audit", "show", "--limit", "50"], ["op", "audit-show-baseline"]),
]


def _cmd(spec: list[str]) -> list[str]:
    if spec[0] == "aios":
        return [str(BIN / "aios"), *spec[1:]]
    return [sys.executable, str(Path(__file__).resolve()), "--op", spec[1]]


def _cell(m: dict[str, Any] | None) -> str:
    if m is None:
        return "-"
    if "error" in m:
        return "error: " + str(m["error"]).strip().splitlines()[-1][:60]
    own = f" (op {m['op_s']:.3f} s)" if "op_s" in m else ""
    return f"{m['wall_s']:.2f} s{own}, {m['rss_mb']:.0f} MB"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="1000,100000,1000000")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/aios-trails"))
    ap.add_argument("--no-baseline", action="store_true", help="Skip the old full-scan paths.")
    ap.add_argument("--baseline-timeout", type=float, default=600.0)
    ap.add_argument("--repeat", type=int, default=5, help="fresh processes per operation; the median is reported")
    ap.add_argument("--out", type=Path, default=None, help="Also write the markdown table here.")
    ap.add_argument("--op", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--build", default=None, help=argparse.SUPPRESS)
    ap.add_argument(
        "--governance-calls",
        type=int,
        default=100,
        metavar="N",
        help="per size, each governance call of the pipeline's path N times in one fresh process (0: skip)",
    )
    ap.add_argument(
        "--governance",
        type=int,
        default=0,
        metavar="N",
        help="time every governance call of the pipeline's path N times in this process (run with the trail's env)",
    )
    args = ap.parse_args()
    if args.op:
        op(args.op)
        return
    if args.governance:
        governance(args.governance)
        return
    if args.build:
        if not os.environ.get("AIOS_AUDIT_STORE") or not os.environ.get("AIOS_STATE_DIR"):
            # run by hand without the trail's environment, the records would go to the default store of this folder
            raise SystemExit("--build appends to the store AIOS_AUDIT_STORE names: set it and AIOS_STATE_DIR first")
        trail, size = args.build.rsplit(":", 1)
        build(Path(trail), int(size))
        return
    args.cache.mkdir(parents=True, exist_ok=True)
    compile_pack(REPO)
    sizes = [int(s) for s in args.sizes.split(",")]
    results: dict[int, dict[str, tuple[dict[str, Any], dict[str, Any] | None]]] = {}
    gov: dict[int, dict[str, Any]] = {}
    for size in sizes:
        trail = args.cache / f"trail-{size}.db"
        done = trail.with_suffix(".built")
        if not done.exists():
            print(f"building {trail} ({size} records)", file=sys.stderr, flush=True)
            t = time.perf_counter()
            subprocess.run([sys.executable, __file__, "--build", f"{trail}:{size}"], env=_env(trail), check=True)
            done.write_text(f"{size} records built in {time.perf_counter() - t:.0f} s\n")
        print(f"trail {trail}: {done.read_text().strip()}", file=sys.stderr, flush=True)
        env = _env(trail)
        results[size] = {}
        for label, new, old in OPS:
            runs = [measure(_cmd(new), env, 600) for _ in range(args.repeat)]
            m_new = sorted(runs, key=lambda m: m.get("wall_s", float("inf")))[len(runs) // 2]  # the median run
            m_old = None if args.no_baseline or old is None else measure(_cmd(old), env, args.baseline_timeout)
            results[size][label] = (m_new, m_old)
            print(f"  {size:>9} {label}: {_cell(m_new)} (old path: {_cell(m_old)})", file=sys.stderr, flush=True)
        if args.governance_calls:
            gov[size] = _governance_calls(trail, args.governance_calls)
            print(f"  {size:>9} governance calls: {json.dumps(gov[size])}", file=sys.stderr, flush=True)
    load = os.getloadavg()
    lines = [
        f"Host: {platform.node()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at the end of the run.",
        "",
        "| operation, fresh process | "
        + " | ".join(f"{s:,} records (projections / old full scan)" for s in sizes)
        + " |",
        "|---|" + "---|" * len(sizes),
    ]
    for label, _new, _old in OPS:
        cells = [f"{_cell(results[s][label][0])} / {_cell(results[s][label][1])}" for s in sizes]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    for label in gov.get(sizes[0], {}):
        cells = []
        for s in sizes:
            c = gov[s].get(label, {})
            cells.append(f"p50 {c['p50_ms']:.1f} ms, p99 {c['p99_ms']:.1f} ms, first {c['first_ms']:.0f} ms")
        head = f"| governance call: {label} ({args.governance_calls} in one fresh process) | "
        lines.append(head + " | ".join(cells) + " |")
    table = "\n".join(lines)
    print(table)
    print(json.dumps({str(s): r for s, r in results.items()}, default=str), file=sys.stderr)
    if args.out:
        args.out.write_text(table + "\n")


if __name__ == "__main__":
    main()
