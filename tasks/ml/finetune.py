"""Fine-tunable MiniLM classifier and the ``minilm-finetuned`` artifact it saves.

The module computes exactly what :class:`tasks.ml.classifier.TextClassifier` computes at inference:
mean-pooled, L2-normalized MiniLM embeddings followed by a linear softmax head. A fine-tuned artifact is
therefore an ordinary artifact folder that ``TextClassifier.load`` reads with no special case:

* ``config.json`` + ``model.safetensors``: the fine-tuned encoder (``save_pretrained``, fp32);
* ``tokenizer.json``, ``tokenizer_config.json``, ...: the tokenizer it was trained with;
* ``head.safetensors``: ``weight`` (n_labels x 384) and ``bias``, float32;
* ``aios_model.json``: the :class:`~tasks.ml.classifier.ModelCard` with ``kind = "minilm-finetuned"``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from tasks.ml.classifier import HEAD, MANIFEST, ModelCard, artifact_digest
from tasks.ml.minilm import base_model_dir

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

FINETUNED_KIND = "minilm-finetuned"


class PooledClassifier(torch.nn.Module):
    """MiniLM encoder -> masked mean pooling -> L2 normalization -> linear head (logits).

    Args:
        encoder: a Hugging Face ``AutoModel`` (BERT-style, returns ``last_hidden_state``).
        n_labels: number of classes.
    """

    def __init__(self, encoder: Any, n_labels: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = torch.nn.Linear(int(encoder.config.hidden_size), n_labels)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **extra: torch.Tensor) -> torch.Tensor:
        """Class logits of a tokenized batch (extra tokenizer outputs such as token_type_ids pass through)."""
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask, **extra).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
        emb = torch.nn.functional.normalize(pooled.float(), dim=-1)
        return self.head(emb)


def build_classifier(
    head_weight: np.ndarray | None, head_bias: np.ndarray | None, n_labels: int, encoder_dir: Path | None = None
) -> tuple[PooledClassifier, PreTrainedTokenizerBase]:
    """Load the encoder (default: the base MiniLM) and a head, optionally initialized from a trained head.

    Args:
        head_weight: initial head weight (n_labels x hidden), e.g. from a ``minilm-head`` artifact; None = random.
        head_bias: initial head bias (n_labels).
        n_labels: number of classes.
        encoder_dir: folder with ``config.json`` + ``model.safetensors`` + tokenizer (default: base MiniLM).

    Returns:
        The module (fp32, train mode) and its tokenizer.
    """
    from transformers import AutoModel, AutoTokenizer

    folder = Path(encoder_dir or base_model_dir())
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    encoder = AutoModel.from_pretrained(folder, local_files_only=True)
    module = PooledClassifier(encoder, n_labels)
    if head_weight is not None and head_bias is not None:
        if head_weight.shape != tuple(module.head.weight.shape):
            msg = f"head weight has shape {head_weight.shape}, the module needs {tuple(module.head.weight.shape)}"
            raise ValueError(msg)
        with torch.no_grad():
            module.head.weight.copy_(torch.from_numpy(np.ascontiguousarray(head_weight, dtype=np.float32)))
            module.head.bias.copy_(torch.from_numpy(np.ascontiguousarray(head_bias, dtype=np.float32)))
    return module, tokenizer


def freeze_lower_layers(module: PooledClassifier, trainable_layers: int) -> int:
    """Freeze the embeddings and all but the top ``trainable_layers`` transformer layers (-1: all of them).

    BERT's pooler is always frozen: mean pooling does not use it.

    Args:
        module: the classifier.
        trainable_layers: how many top encoder layers stay trainable; -1 trains everything.

    Returns:
        The number of trainable parameters.
    """
    layers = module.encoder.encoder.layer
    if trainable_layers > len(layers):
        msg = f"trainable_layers={trainable_layers} but the encoder has {len(layers)} layers (use -1 for all)"
        raise ValueError(msg)
    module.encoder.requires_grad_(trainable_layers < 0)
    for layer in layers[len(layers) - max(trainable_layers, 0) :] if trainable_layers > 0 else []:
        layer.requires_grad_(True)
    pooler = getattr(module.encoder, "pooler", None)
    if pooler is not None:  # mean pooling never uses BERT's pooler; DDP rejects parameters without gradients
        pooler.requires_grad_(False)
    module.head.requires_grad_(True)
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def save_finetuned(module: PooledClassifier, tokenizer: PreTrainedTokenizerBase, card: ModelCard, folder: Path) -> str:
    """Write a ``minilm-finetuned`` artifact (encoder + tokenizer + head + manifest); returns its digest.

    Args:
        module: the trained classifier (unwrapped from DDP).
        tokenizer: its tokenizer.
        card: manifest; its ``kind`` is set to ``minilm-finetuned``.
        folder: destination (created; must not already hold an artifact).
    """
    from safetensors.numpy import save_file

    folder = Path(folder)
    if (folder / MANIFEST).exists():
        msg = f"{folder} already holds an artifact; write each model version to a new folder"
        raise FileExistsError(msg)
    folder.mkdir(parents=True, exist_ok=True)
    module.encoder.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    head = {
        "weight": module.head.weight.detach().float().cpu().numpy(),
        "bias": module.head.bias.detach().float().cpu().numpy(),
    }
    save_file(head, str(folder / HEAD))
    card = card.model_copy(update={"kind": FINETUNED_KIND})
    (folder / MANIFEST).write_text(card.model_dump_json(indent=2), encoding="utf-8")
    return artifact_digest(folder)
