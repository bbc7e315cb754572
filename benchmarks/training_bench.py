"""Training and inference throughput of the MiniLM classifier: eager fp32 baseline vs optimized, same run.

One command (detects the device; GPU sizes by default there, small CPU sizes otherwise)::

    .venv/bin/python benchmarks/training_bench.py            # prints a table, writes --json if given
    .venv/bin/python benchmarks/training_bench.py --json benchmarks/results/training_cpu.json

Measured per configuration: training samples/s and tokens/s (full fine-tuning step: forward, backward,
AdamW), achieved TFLOP/s as ``6 * params * tokens / s`` and its share of the device's dense bf16 peak
(model FLOPs utilization, MFU), and inference sequences/s at 128 tokens. Baseline = eager fp32 at the
small batch; optimized = bf16 autocast (on a GPU, or a CPU where bf16 is faster than fp32: see
``tasks.ml.minilm.cpu_bf16_fast``; fp32 otherwise) + ``torch.compile`` (where it compiles) + a larger batch.
Inputs are real VADER snippets padded/truncated to exactly ``--seq`` tokens so every step does the same work.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# dense bf16 tensor-core peak, TFLOP/s (vendor datasheets, SXM parts, no sparsity)
PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L4": 121.0, "A10G": 70.0}


def device_info() -> tuple[torch.device, str, float | None]:
    """The device, its name, and its bf16 peak in TFLOP/s when known."""
    if torch.cuda.is_available():
        name = torch.cuda.get_device_name(0)
        peak = next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)
        return torch.device("cuda"), name, peak
    return torch.device("cpu"), f"{platform.processor() or 'cpu'} ({torch.get_num_threads()} threads)", None


def _texts(n: int) -> list[str]:
    from tasks.evaluation.data import load_vader

    return load_vader("movieReviewSnippets")["text"].astype(str).head(n).tolist()


def _batch(tok: Any, texts: list[str], seq: int, device: torch.device) -> dict[str, torch.Tensor]:
    enc = tok(texts, padding="max_length", truncation=True, max_length=seq, return_tensors="pt")
    return {k: v.to(device) for k, v in enc.items()}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _model(device: torch.device, compile_: bool) -> tuple[Any, Any, Any, int]:
    from tasks.ml.finetune import build_classifier, freeze_lower_layers

    module, tok = build_classifier(None, None, 2)
    params = freeze_lower_layers(module, -1)
    module.to(device)
    run = module
    if compile_:
        try:
            run = torch.compile(module)
        except Exception as e:
            print(f"torch.compile unavailable: {e}", file=sys.stderr)
    return module, run, tok, params


def bench_train(device: torch.device, batch: int, seq: int, steps: int, bf16: bool, compile_: bool) -> dict[str, Any]:
    """Full fine-tuning steps; returns samples/s, tokens/s and TFLOP/s (6 * params * tokens)."""
    module, run, tok, params = _model(device, compile_)
    opt = torch.optim.AdamW([p for p in module.parameters() if p.requires_grad], lr=1e-5)
    data = _batch(tok, _texts(batch), seq, device)
    y = torch.zeros(batch, dtype=torch.long, device=device)
    module.train()

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            logits = run(**data)
        torch.nn.functional.cross_entropy(logits.float(), y).backward()
        opt.step()

    for _ in range(2):  # warm-up (and compilation)
        step()
    _sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    secs = time.perf_counter() - start
    tokens = batch * seq * steps
    return {"samples_s": batch * steps / secs, "tokens_s": tokens / secs, "tflops": 6 * params * tokens / secs / 1e12,
            "params": params}  # fmt: skip


def bench_infer(device: torch.device, batch: int, seq: int, iters: int, bf16: bool, compile_: bool) -> float:
    """Inference sequences/s at ``seq`` tokens."""
    module, run, tok, _ = _model(device, compile_)
    module.eval()
    data = _batch(tok, _texts(batch), seq, device)
    with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
        for _ in range(2):
            run(**data)
        _sync(device)
        start = time.perf_counter()
        for _ in range(iters):
            run(**data)
        _sync(device)
    return batch * iters / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--steps", type=int, default=0, help="timed training steps (default: 50 GPU, 4 CPU)")
    ap.add_argument("--batch", type=int, default=0, help="baseline batch (default: 32 GPU, 8 CPU)")
    ap.add_argument("--opt-batch", type=int, default=0, help="optimized batch (default: 256 GPU, 32 CPU)")
    ap.add_argument("--no-compile", action="store_true", help="skip torch.compile in the optimized run")
    ap.add_argument("--json", type=Path, help="write the figures here")
    a = ap.parse_args()
    device, name, peak = device_info()
    gpu = device.type == "cuda"
    steps = a.steps or (50 if gpu else 4)
    small, large = a.batch or (32 if gpu else 8), a.opt_batch or (256 if gpu else 32)
    from tasks.ml.minilm import cpu_bf16_supported, cuda_bf16_supported

    # bf16 where it is faster than fp32: a GPU with native bf16, or a CPU per tasks.ml.minilm.cpu_bf16_fast (an
    # Intel CPU without AMX runs bf16 slower than fp32: its optimized run stays fp32, compile and the batch only)
    fast_bf16 = cuda_bf16_supported() if gpu else cpu_bf16_supported()
    configs = {
        "baseline (eager fp32)": (small, False, False),
        f"optimized ({'bf16' if fast_bf16 else 'fp32'} + compile)": (large, fast_bf16, not a.no_compile),
    }
    rows: dict[str, Any] = {"device": name, "seq": a.seq, "steps": steps, "peak_bf16_tflops": peak, "runs": {}}
    for label, (batch, bf16, comp) in configs.items():
        tr = bench_train(device, batch, a.seq, steps, bf16, comp)
        inf = bench_infer(device, batch, a.seq, max(steps, 4), bf16, comp)
        tr["mfu"] = tr["tflops"] / peak if peak else None
        rows["runs"][label] = {"batch": batch, "bf16": bf16, "compile": comp, **tr, "infer_seq_s": inf}
        mfu = f"{tr['mfu']:.1%}" if peak else "n/a (peak unknown)"
        print(f"{label:28s} batch {batch:4d}  train {tr['samples_s']:8.1f} samples/s {tr['tokens_s']:10.0f} tok/s "
              f"{tr['tflops']:7.3f} TFLOP/s MFU {mfu}  infer {inf:8.1f} seq/s", flush=True)  # fmt: skip
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(rows, indent=2))
    print(f"device: {name}")


if __name__ == "__main__":
    main()
