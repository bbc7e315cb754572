"""Operator and auditor commands on a large trail, each in a fresh process: wall seconds and peak memory.

    .venv/bin/python benchmarks/trail_commands.py [--code DIR] [--only NAME,...] [--out FILE] [--pairs N]

Runs against the store the environment names (``AIOS_AUDIT_STORE``, ``AIOS_STATE_DIR``, ...: the same environment
``projections_bench.py --build`` built the trail with, SQLite or PostgreSQL). ``--code DIR`` runs the commands from
another checkout of the pack (a ``git worktree`` of the baseline) with this interpreter, so a change and its
baseline run on the same trail in the same minutes; with ``--pairs N`` each chosen command runs N times from each
checkout, alternating, and the medians are reported. Peak memory is the command's own and its children's (a forked
verification worker), as ``wait4`` reports it.

The commands: ``aios approvals list``; ``aios audit show`` (the last 50, by kind, by execution, by a time window);
``aios lineage trace`` of the newest policy decision; ``aios models list`` (the first page, and every version
streamed with ``--limit 0 --json``); ``aios audit checkpoint`` (continuing from the newest checkpoint
this key signed, where the code does so) and with ``--deep``; ``aios lineage report`` of one execution with a full
walk and from the checkpoint; ``aios audit prove`` twice; ``aios audit verify --checkpoint``; ``aios audit verify``
(everything: walk, claims, projections, ignored approval decisions). The trail's executions are named
``aios/production/run-N`` (``projections_bench.py``'s mix).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RUN = "aios/production/run-100"
sys.path.insert(0, str(REPO / "benchmarks"))

from projections_bench import compile_pack  # noqa: E402


def code_env(code: Path) -> dict[str, str]:
    """This environment with ``PYTHONPATH`` naming the pack's packages in checkout ``code`` (a baseline's worktree)."""
    parts = [code, code / "plugins" / "flyte-aios-core", code / "plugins" / "flytekit-aios"]
    parts.append(code / "connectors" / "flytekit-aios-connectors")
    return dict(os.environ, PYTHONPATH=os.pathsep.join(str(p) for p in parts))


def aios(code: Path, args: list[str]) -> tuple[float, float, int, str]:
    """``aios ARGS`` from ``code`` in a fresh process: (wall s, peak RSS MB, exit code, stdout)."""
    cmd = [sys.executable, "-c", "import sys; from flytekitplugins.aios_core.cli import main; main()", *args]
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, env=code_env(code), cwd=code, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    out = proc.stdout.read().decode() if proc.stdout is not None else ""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return time.perf_counter() - t, usage.ru_maxrss / 1024, proc.returncode, out


def _inside(cp: Path, record: str) -> str:
    """A record the saved checkpoint covers (``#<half its size>``), for ``aios audit prove``: the newest policy decision
    is past it once the trail has been extended (the command then exits 2, rightly); ``record`` without a checkpoint."""
    try:
        from flytekitplugins.aios_audit.checkpoint import Checkpoint

        return f"#{max(1, Checkpoint.load(str(cp)).tree_size // 2)}"
    except Exception:  # no checkpoint yet (the first command makes it), or one this checkout cannot read
        return record


def commands(work: Path, record: str) -> dict[str, list[str]]:
    cp, out = str(work / "checkpoint.txt"), str(work / "out")
    inside = _inside(work / "checkpoint.txt", record)
    return {
        "approvals list": ["approvals", "list"],
        "audit show --limit 50": ["audit", "show", "--limit", "50"],
        "audit show --kind approval_decision": ["audit", "show", "--kind", "approval_decision", "--limit", "50"],
        "audit show --execution": ["audit", "show", "--execution", RUN, "--limit", "50"],
        "audit show --since --until": ["audit", "show", "--since", "2026-11-01", "--until", "2026-11-02"],
        "lineage trace": ["lineage", "trace", record],
        "models list": ["models", "list"],
        "models list --limit 0 --json (every version)": ["models", "list", "--limit", "0", "--json"],
        "audit checkpoint": ["audit", "checkpoint", "--out", cp],
        "audit checkpoint --deep": ["audit", "checkpoint", "--deep", "--out", cp],
        "lineage report --execution (full walk)": ["lineage", "report", "--execution", RUN, "--out", out + ".html"],
        "lineage report --execution --checkpoint": [
            *("lineage", "report", "--execution", RUN, "--checkpoint", cp, "--out", out + ".html")
        ],
        "audit prove (first)": ["audit", "prove", inside, "--checkpoint", cp, "--out", out + ".json"],
        "audit prove (second)": ["audit", "prove", inside, "--checkpoint", cp, "--out", out + ".json"],
        "audit verify --checkpoint": ["audit", "verify", "--checkpoint", cp, "--json"],
        "audit verify (everything)": ["audit", "verify", "--json"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--code", type=Path, default=REPO, help="checkout whose commands run (default: this one)")
    ap.add_argument("--only", default="", help="comma-separated command names (default: all)")
    ap.add_argument("--out", type=Path, default=None, help="also write the markdown table here")
    ap.add_argument(
        "--pairs",
        type=int,
        default=0,
        metavar="N",
        help="with --code: run each chosen command N times from each checkout, alternating, and report the medians",
    )
    args = ap.parse_args()
    for root in dict.fromkeys((REPO, args.code.resolve())):  # both sides of a comparison
        compile_pack(root)
    work = Path(os.environ.get("AIOS_STATE_DIR", "/tmp")) / "trail-commands"
    work.mkdir(parents=True, exist_ok=True)
    _, _, rc, out = aios(args.code, ["audit", "show", "--kind", "policy_decision", "--limit", "1", "--json"])
    if rc != 0 or not out.strip():
        raise SystemExit("no policy decision in this trail: build it with projections_bench.py --build")
    record = json.loads(out.splitlines()[-1])["leaf_hash"]
    wanted = [w for w in args.only.split(",") if w]
    if unknown := [w for w in wanted if w not in commands(work, record)]:
        names = ", ".join(repr(n) for n in commands(work, record))
        raise SystemExit(f"--only names no such command: {', '.join(map(repr, unknown))} (the commands: {names})")
    if args.pairs:
        paired(work, record, wanted, args.code, args.pairs, args.out)
        return
    lines = [f"code: {args.code}", "", "| command | wall s | peak MB | exit |", "|---|---|---|---|"]
    print("\n".join(lines), flush=True)
    for name, argv in commands(work, record).items():
        if wanted and name not in wanted:
            continue
        if "--deep" in argv and args.code != REPO and "--deep" not in aios(args.code, [*argv[:2], "--help"])[3]:
            continue  # a checkout without the option
        wall, rss, rc, _ = aios(args.code, argv)
        lines.append(f"| `{name}` | {wall:.2f} | {rss:,.0f} | {rc} |")
        print(lines[-1], flush=True)
    if args.out is not None:
        args.out.write_text("\n".join(lines) + "\n")


def paired(work: Path, record: str, wanted: list[str], base: Path, n: int, out: Path | None) -> None:
    """Each command ``n`` times from this checkout and from ``base``, alternating (the host's speed drifts within
    minutes: only runs of the same minutes compare); a run that exits non-zero stops the comparison."""
    import statistics

    if base == REPO:
        raise SystemExit("--pairs compares this checkout with another: name it with --code")
    lines = [f"this checkout against {base}, {n} alternating runs each", ""]
    lines += ["| command | this: median (min-max) s | base: median (min-max) s | this, each | base, each | peak MB |"]
    lines += ["|---|---|---|---|---|---|"]
    print("\n".join(lines), flush=True)
    for name, argv in commands(work, record).items():
        if wanted and name not in wanted:
            continue
        walls: dict[Path, list[float]] = {REPO: [], base: []}
        peak = {REPO: 0.0, base: 0.0}
        for _ in range(n):
            for code in (base, REPO):
                wall, rss, rc, _ = aios(code, argv)
                if rc != 0:
                    raise SystemExit(f"`aios {' '.join(argv)}` exited {rc} from {code}")
                walls[code].append(wall)
                peak[code] = max(peak[code], rss)

        def cell(v: list[float]) -> str:
            return f"{statistics.median(v):.2f} ({min(v):.2f}-{max(v):.2f})"

        each = [", ".join(f"{w:.2f}" for w in walls[c]) for c in (REPO, base)]
        mb = f"{peak[REPO]:,.0f} / {peak[base]:,.0f}"
        lines.append(f"| `{name}` | {cell(walls[REPO])} | {cell(walls[base])} | {each[0]} | {each[1]} | {mb} |")
        print(lines[-1], flush=True)
    if out is not None:
        out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
