"""The document router's forward passes on this machine's device (a CUDA GPU, else the CPU), fp32 beside bf16.

    .venv/bin/python benchmarks/router_device_bench.py [--n 400] [--batches 32,256] [--repeat 3] [--json FILE]

The same work as ``documents_bench.py``'s raw-router baseline (the fast head on every redacted text, the strong head
on the unsure ones, through :class:`tasks.documents.router.Router`), on the same generated corpus, at each batch size
given (32 is what the workflow's classify step uses). For each precision and batch: documents/s (median of the
repeats, after a warm-up), and how many routed labels and routes agree with fp32 at batch 32 (the reference): bf16
must route the same documents the same way, or nearly. On a CPU without native bf16 the bf16 rows are emulated and
their speed means nothing (the table says so). The heads are trained once into ``AIOS_DOCUMENT_MODELS_DIR`` (as the
tests and ``documents_bench.py`` do) when that folder lacks them.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # tasks/ (the Flyte project), from any working directory
sys.path.insert(0, str(REPO / "benchmarks"))

from documents_bench import raw_router  # noqa: E402  (sets AIOS_DOCUMENT_MODELS_DIR's default, as the tests use)


def _device() -> tuple[str, str, bool]:
    """The device the encoder picks, its name, and whether it runs bf16 natively."""
    import torch

    from tasks.ml.minilm import cpu_bf16_supported, cuda_bf16_supported

    if torch.cuda.is_available():
        return "cuda", torch.cuda.get_device_name(0), cuda_bf16_supported()
    model = next((line.split(":", 1)[1].strip() for line in _cpuinfo() if line.startswith("model name")), "")
    return "cpu", f"{model or platform.machine()}, {torch.get_num_threads()} threads", cpu_bf16_supported()


def _cpuinfo() -> list[str]:
    try:
        return Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return []


def _texts(n: int, seed: int) -> list[str]:
    """The redacted texts of ``documents_bench.py``'s corpus (the router sees protected text)."""
    from tasks.documents.corpus_text import generate
    from tasks.documents.protect import redact

    return [redact(d.text).text for d in generate(n, seed, hard_share=0.25, big_share=0.0, vague_share=0.0)]


def _sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def run(texts: list[str], bf16: bool, batch: int, repeat: int) -> tuple[float, list[tuple[str, str]]]:
    """Median documents/s of ``repeat`` passes over ``texts`` and the last pass's (label, route) per document."""
    router = raw_router(bf16)
    router.route(texts[: 2 * batch], batch)  # warm-up: kernels, allocator, tokenizer
    speeds, routed = [], []
    for _ in range(repeat):
        _sync()
        t0 = time.perf_counter()
        routed = router.route(texts, batch)
        _sync()
        speeds.append(len(texts) / (time.perf_counter() - t0))
    return statistics.median(speeds), [(r.label, r.route) for r in routed]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=400, help="documents (documents_bench.py's corpus, seed --seed)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--batches", default="32,256", help="batch sizes, comma-separated (32: the workflow's)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = ap.parse_args()
    if args.n < 1 or args.repeat < 1:
        ap.error("--n and --repeat must be 1 or more")
    batches = [int(b) for b in args.batches.split(",") if b.strip()]
    device, name, native = _device()
    texts = _texts(args.n, args.seed)
    rows: list[dict[str, Any]] = []
    reference: list[tuple[str, str]] = []
    for bf16 in (False, True):
        for batch in batches:
            speed, routed = run(texts, bf16, batch, args.repeat)
            if not reference:
                reference = routed  # fp32 at the first batch size
            rows.append(
                {
                    "precision": "bf16" if bf16 else "fp32",
                    "batch": batch,
                    "docs_per_s": speed,
                    "labels_agree": sum(a[0] == b[0] for a, b in zip(routed, reference, strict=True)),
                    "routes_agree": sum(a[1] == b[1] for a, b in zip(routed, reference, strict=True)),
                    "strong_share": sum(r[1] != "fast" for r in routed) / len(routed),
                }
            )
    print(f"device: {device} ({name}); native bf16: {native}; {len(texts)} documents, {args.repeat} timed passes")
    print("| precision | batch | docs/s | labels as fp32 | routes as fp32 | not fast |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        emulated = " (emulated)" if r["precision"] == "bf16" and not native else ""
        print(
            f"| {r['precision']}{emulated} | {r['batch']} | {r['docs_per_s']:,.1f} | {r['labels_agree']}/{len(texts)} "
            f"| {r['routes_agree']}/{len(texts)} | {r['strong_share']:.0%} |"
        )
    if args.json:
        doc = {"device": device, "name": name, "native_bf16": native, "n": len(texts), "rows": rows}
        args.json.write_text(json.dumps(doc, indent=2) + "\n")


if __name__ == "__main__":
    main()
