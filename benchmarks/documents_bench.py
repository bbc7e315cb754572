"""Document pipeline benchmark, side by side in one run.

1. Throughput: documents/s of the whole ``process_documents`` workflow (local Flyte execution: parse,
   redact, route through both models, extract, policy, audit, system of record) vs the raw MiniLM
   forward passes the router needs on the same texts (fast head on all, strong head on the unsure), at the
   precision the workflow itself uses: bf16 where it is faster than fp32 (AMX, or AVX512-BF16 on AMD: see
   ``tasks.ml.minilm.cpu_bf16_fast``), else fp32.
   Each run's non-model seconds (its wall time minus its own forward passes) too: the pipeline's overhead,
   which the model's run-to-run noise does not move.
2. Precision: bf16 autocast vs fp32 on the same held-out texts (throughput and routed accuracy), both timed
   where the CPU has bf16 instructions (AVX512-BF16 or AMX) whichever the workflow uses. On a CPU without them
   one emulated bf16 pass is kept for its accuracy only (its speed means nothing).
3. Memory: peak RSS (ru_maxrss) of a fresh process running the workflow on 1k and on 10k documents.

Human wait is not pipeline work: approval requests expire after 0.01 s here, so the gates cost at most one
0.1 s poll (the requests end as ``approval_timed_out``, no action, as they would without a decision).

    .venv/bin/python benchmarks/documents_bench.py --n 400 --sizes 1000,10000
    .venv/bin/python benchmarks/documents_bench.py --n 400 --sizes "" --precision fp32   # the fp32 host's case
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the Flyte project's tasks/ and workflows/, from any working directory

from flytekitplugins.aios_core.settings import get_settings  # noqa: E402
from tasks.documents.models import models_dir  # noqa: E402

# Models are trained once (same folder as the tests) and shared by every run: training is not benchmarked.
os.environ.setdefault("AIOS_DOCUMENT_MODELS_DIR", str(REPO / ".aios" / "cache" / "document-models"))
os.environ.setdefault("FLYTE_LOCAL_CACHE_ENABLED", "false")


def write_corpus(out: Path, n: int, seed: int, hard_share: float = 0.25) -> list[str]:
    """``n`` documents (text, PDF, HTML; no OCR, no approvals) and their texts."""
    from tasks.documents import corpus_files as w
    from tasks.documents.corpus_text import generate

    out.mkdir(parents=True, exist_ok=True)
    docs = generate(n, seed, hard_share=hard_share, big_share=0.0, vague_share=0.0)
    for i, d in enumerate(docs):
        kind = i % 3
        if kind == 0:
            (out / f"{d.doc_id}.txt").write_text(d.text, encoding="utf-8")
        elif kind == 1:
            (out / f"{d.doc_id}.pdf").write_bytes(w.pdf_bytes(d.text))
        else:
            w.write_html(out / f"{d.doc_id}.html", d.text)
    return [d.text for d in docs]


MODEL_SECONDS = [0.0]
"""Seconds the workflow spent in the router's forward passes (``Router.route``), summed while it runs."""


def _time_the_router() -> None:
    """Count the seconds of every ``Router.route`` call (the model's forward passes) in :data:`MODEL_SECONDS`, so a
    run's non-model time is its wall time minus them: a figure the model's own run-to-run noise does not move."""
    from tasks.documents.router import Router

    if getattr(Router.route, "__timed__", False):
        return
    forward = Router.route

    def route(self: Router, texts: list[str], batch_size: int = 32) -> list[object]:
        t0 = time.perf_counter()
        try:
            return forward(self, texts, batch_size)  # type: ignore[return-value]
        finally:
            MODEL_SECONDS[0] += time.perf_counter() - t0

    route.__timed__ = True  # type: ignore[attr-defined]
    Router.route = route  # type: ignore[method-assign,assignment]


STAGE_SECONDS: dict[str, float] = {}
"""With ``--stages``: wall seconds of each task node of the workflow (flytekit's ``local_execute``: the inputs'
conversion, the body, the outputs' conversion), summed over a run; a map task's entry covers all its chunks."""


def _time_the_stages() -> None:
    """Sum each task node's wall time into :data:`STAGE_SECONDS` (by the task's short name, a map task's by its
    mapped function's): where a run's non-model time goes, without a profiler's own cost."""
    from flytekit.core.base_task import Task

    if getattr(Task.local_execute, "__timed__", False):
        return
    run = Task.local_execute

    def local_execute(self: Task, ctx: object, **kwargs: object) -> object:
        t0 = time.perf_counter()
        try:
            return run(self, ctx, **kwargs)  # type: ignore[arg-type]
        finally:
            name = self.name.rsplit(".", 1)[-1]
            mapped = re.fullmatch(r"map_(.+)_[0-9a-f]{32}-arraynode", name)  # flytekit's name of a map task's node
            name = f"{mapped.group(1)} (map)" if mapped else name
            STAGE_SECONDS[name] = STAGE_SECONDS.get(name, 0.0) + time.perf_counter() - t0

    local_execute.__timed__ = True  # type: ignore[attr-defined]
    Task.local_execute = local_execute  # type: ignore[method-assign]


def run_workflow(source: Path, state: Path, precision: str = "auto") -> tuple[float, dict[str, object]]:
    """Wall seconds and summary of one workflow run in this process."""
    import dataclasses

    os.environ["AIOS_STATE_DIR"] = str(state)
    # its own audit store too: one the caller's environment named was shared by every repeat, and from the second on
    # the acting point refused all 400 actions as posted already (the rows still said acted), a path no run takes
    os.environ["AIOS_AUDIT_STORE"] = f"sqlite:///{state}/audit.db"
    from flytekitplugins.aios_core.settings import reset_settings

    reset_settings()
    from tasks.documents.schemas import ProcessingOptions
    from workflows.document_processing import process_documents

    _time_the_router()
    MODEL_SECONDS[0] = 0.0
    STAGE_SECONDS.clear()
    t0 = time.perf_counter()
    summary, _, _ = process_documents(
        source=str(source),
        options=ProcessingOptions(progress="off", chunk_size=256, approval_timeout_s=0.01, precision=precision),
    )
    return time.perf_counter() - t0, dataclasses.asdict(summary)


def _stage_split(wall: float) -> dict[str, float]:
    """The last run's :data:`STAGE_SECONDS`, the classify node's forward passes as their own entry, and the rest of
    the wall time (the workflow's own steps between the nodes, the approval gates) as ``between nodes``."""
    split = dict(STAGE_SECONDS)
    for name in split:
        if name.startswith("classify"):
            split[name] -= MODEL_SECONDS[0]
    split["forward passes (Router.route)"] = MODEL_SECONDS[0]
    split["between nodes"] = wall - sum(split.values())
    return dict(sorted(split.items(), key=lambda kv: -kv[1]))


def raw_router(bf16: bool) -> Any:
    """The workflow's router (both heads, its thresholds) over an encoder of the given precision, outside the
    workflow: the baseline's forward passes (also ``router_device_bench.py``'s)."""
    from tasks.documents.models import DocumentModels, load_or_train
    from tasks.documents.router import Router
    from tasks.ml.classifier import TextClassifier
    from tasks.ml.minilm import Encoder

    base = load_or_train(models_dir(get_settings()))
    enc = Encoder(bf16=bf16)
    models = DocumentModels(
        *(TextClassifier(m.card, m.weight, m.bias, enc, m.digest) for m in (base.fast, base.strong))
    )
    return Router(models, 0.8, 0.7)


def raw_model(texts: list[str], bf16: bool) -> dict[str, float]:
    """The router's forward passes alone, on the redacted texts: docs/s and routed accuracy inputs."""
    from tasks.documents.protect import redact

    red = [redact(t).text for t in texts]
    router = raw_router(bf16)
    router.route(red[:32])  # warm-up
    t0, c0 = time.perf_counter(), time.process_time()
    routed = router.route(red)
    secs, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {
        "docs_per_s": len(red) / secs,
        "seconds": secs,
        "cpu_per_wall": cpu / secs,  # the cores the forward passes keep busy (2.0: both of a 2-core VM)
        "labels": [r.label for r in routed],
        "routes": [r.route for r in routed],
    }  # type: ignore[dict-item]


def _best(rows: dict[str, dict[str, float]], key: str, row: dict[str, float]) -> None:
    if key not in rows or row["docs_per_s"] > rows[key]["docs_per_s"]:
        rows[key] = row


def memory_child(n: int) -> None:
    """Run in a fresh process: workflow on ``n`` documents; print peak RSS."""
    import resource

    tmp = Path(tempfile.mkdtemp(prefix="aios-docbench-"))
    write_corpus(tmp / "src", n, seed=4242)
    secs, summary = run_workflow(tmp / "src", tmp / "state")
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps({"n": n, "seconds": secs, "peak_rss_mb": rss_mb, "documents_in": summary["documents_in"]}))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=400)
    p.add_argument("--sizes", default="1000,10000")
    p.add_argument("--child", type=int, default=0)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument(
        "--precision",
        choices=("native", "fp32"),
        default="native",
        help="fp32: run the workflow and the baseline in fp32 even on a CPU with native bf16 (the fp32 host's case)",
    )
    p.add_argument(
        "--one-thread",
        action="store_true",
        help="also time the raw router on one thread: what the forward passes would take if the other core ran the "
        "pipeline's non-model work beside them",
    )
    p.add_argument(
        "--stages",
        action="store_true",
        help="also report each task node's seconds a run (median of the repeats), the map tasks' forward passes apart",
    )
    args = p.parse_args()
    if args.child:
        memory_child(args.child)
        return
    import torch

    torch.set_num_threads(max(1, os.cpu_count() or 1))
    from tasks.documents.corpus_text import generate

    tmp = Path(tempfile.mkdtemp(prefix="aios-docbench-"))
    texts = write_corpus(tmp / "src", args.n, seed=99)
    truth = [d.label for d in generate(args.n, 99, hard_share=0.25, big_share=0.0, vague_share=0.0)]
    write_corpus(tmp / "warm", 16, seed=5)
    flow_precision = "fp32" if args.precision == "fp32" else "auto"  # ProcessingOptions.precision of every run
    run_workflow(tmp / "warm", tmp / "warm-state", flow_precision)
    rows: dict[str, dict[str, float]] = {}
    # The workflow's encoder runs bf16 where that is faster than fp32 (tasks.ml.minilm.bf16_supported) and fp32
    # elsewhere; the baseline is the raw router at that same precision. Where the CPU has bf16 instructions both
    # precisions are timed (on an Intel CPU without AMX bf16 is the slower one).
    from tasks.ml.minilm import bf16_supported, cpu_flags, cpuinfo_text

    native = args.precision == "native" and bf16_supported()
    flags = cpu_flags(cpuinfo_text())[1]
    bf16_isa = native or (args.precision == "native" and bool(flags & {"avx512_bf16", "amx_bf16"}))
    precision = "bf16" if native else "fp32"
    pipe_key = f"pipeline (workflow, {precision})"

    def raw_row(bf16: bool) -> dict[str, float]:
        r = raw_model(texts, bf16)
        routes = r.pop("routes")
        acc = sum(a == b for a, b in zip(r.pop("labels"), truth, strict=True)) / len(truth)  # type: ignore[arg-type]
        return {**r, "accuracy": acc, "strong_share": routes.count("strong") / len(routes)}  # type: ignore[union-attr,arg-type,dict-item]

    # Alternate the contenders and keep each one's best of ``--repeat`` (the machine is shared and noisy);
    # every pipeline repeat uses a fresh state dir, so no answer comes from the result cache.
    other: list[float] = []  # each run's non-model seconds (wall minus its forward passes)
    stages: list[dict[str, float]] = []  # with --stages: each run's seconds by task node
    if args.stages:
        _time_the_stages()
    posted: list[list[int]] = []  # each run's [posted, refused at the acting point]: the same work in every run
    for rep in range(args.repeat):
        secs, summary = run_workflow(tmp / "src", tmp / f"state-{rep}", flow_precision)
        posted.append([int(summary["posted"]), int(summary["refused_at_acting_point"])])  # type: ignore[call-overload]
        other.append(secs - MODEL_SECONDS[0])
        if args.stages:
            stages.append(_stage_split(secs))
        _best(rows, pipe_key, {"docs_per_s": args.n / secs, "seconds": secs, "model_seconds": MODEL_SECONDS[0]})
        for bf16 in (True, False) if bf16_isa else (False,):
            _best(rows, f"raw router forward ({'bf16' if bf16 else 'fp32'})", raw_row(bf16))
    if args.one_thread:
        torch.set_num_threads(1)
        rows[f"raw router forward ({precision}, one thread)"] = raw_row(precision == "bf16")
        torch.set_num_threads(max(1, os.cpu_count() or 1))
    # accuracy effect of bf16 only: emulated bf16 is slow and says nothing about speed here
    if not bf16_isa and args.precision == "native":
        rows["raw router forward (bf16, emulated: this CPU has no native bf16)"] = raw_row(True)
    pipe = rows[pipe_key]
    pipe["share_of_raw_same_precision"] = pipe["docs_per_s"] / rows[f"raw router forward ({precision})"]["docs_per_s"]
    pipe["non_model_seconds_median"] = sorted(other)[len(other) // 2]
    pipe["non_model_seconds_each"] = other  # type: ignore[assignment]
    pipe["posted_and_refused_each"] = posted  # type: ignore[assignment]
    if stages:
        pipe["stage_seconds_median"] = {  # type: ignore[assignment]
            k: round(sorted(run.get(k, 0.0) for run in stages)[len(stages) // 2], 4) for k in stages[0]
        }
    out = {
        "n": args.n,
        "threads": torch.get_num_threads(),
        "repeat": args.repeat,
        "precision": args.precision,
        "workflow_precision": precision,
    }
    print(json.dumps({**out, "rows": rows}, indent=2))
    shutil.rmtree(tmp, ignore_errors=True)
    for n in [int(s) for s in args.sizes.split(",") if s]:
        out = subprocess.run([sys.executable, __file__, "--child", str(n)], capture_output=True, text=True, check=True)
        print(out.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
