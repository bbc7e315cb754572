"""Text classifiers on MiniLM, and the on-disk artifact format every model of the pack uses.

An artifact is a folder holding ``aios_model.json`` (name, version, kind, labels, base model digest,
training data digests, metrics) and its weights as safetensors:

* ``kind = "minilm-head"``: frozen MiniLM embeddings + a softmax (logistic regression) head,
  ``head.safetensors`` with ``weight`` (n_labels x 384) and ``bias``. Cheap to train (seconds).
* ``kind = "minilm-finetuned"`` (written by the retraining workflow): a fine-tuned encoder folder
  (``model.safetensors`` + tokenizer) plus the same head file.

The artifact digest is the digest of the canonical manifest of every file's digest, so a model's
catalog entry pins exactly the bytes that were evaluated.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from flytekitplugins.aios_audit.records import ModelRef
from flytekitplugins.aios_core.digest import digest_file, digest_value
from tasks.ml import rows_digest
from tasks.ml.minilm import Encoder, base_model_dir, model_digest, shared_encoder

MANIFEST = "aios_model.json"
HEAD = "head.safetensors"


class ModelCard(BaseModel):
    """The ``aios_model.json`` manifest of an artifact."""

    name: str
    version: str
    kind: str = "minilm-head"
    labels: list[str]
    base_model_digest: str = ""
    training_data_digests: list[str] = Field(default_factory=list)
    metrics: dict[str, float] = Field(default_factory=dict)
    params: dict[str, Any] = Field(default_factory=dict)


def artifact_digest(folder: Path) -> str:
    """Digest of an artifact folder: canonical map of relative path -> file digest."""
    files = {str(p.relative_to(folder)): digest_file(p) for p in sorted(folder.rglob("*")) if p.is_file()}
    return digest_value(files)


def check_unchanged(folder: Path, digest: str) -> None:
    """Refuse an artifact folder whose bytes are no longer those digested (``digest``) before it was loaded: the
    digest then names bytes other than those loaded (a start model swapped while it loaded or trained once had the
    training seal name an honest start for weights read from another folder; review of 2026-12-06).

    Raises:
        GovernanceDenied: ``model_changed``, naming the folder.
    """
    from flytekitplugins.aios_core.errors import GovernanceDenied

    if artifact_digest(folder) != digest:
        msg = f"model artifact {folder} changed while it was loaded (it was {digest}); nothing loaded from it is used"
        raise GovernanceDenied(msg, reason_code="model_changed")


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class TextClassifier:
    """Embeddings from a MiniLM encoder followed by a linear softmax head."""

    def __init__(self, card: ModelCard, weight: np.ndarray, bias: np.ndarray, encoder: Encoder, digest: str = ""):
        self.card = card
        self.weight = weight.astype(np.float32)
        self.bias = bias.astype(np.float32)
        self.encoder = encoder
        self.digest = digest

    @property
    def labels(self) -> list[str]:
        return list(self.card.labels)

    @property
    def ref(self) -> ModelRef:
        return ModelRef(name=self.card.name, version=self.card.version, digest=self.digest)

    def predict_proba_embeddings(self, emb: np.ndarray) -> np.ndarray:
        """Class probabilities for precomputed embeddings."""
        return _softmax(emb @ self.weight.T + self.bias)

    def predict_proba(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        """Class probabilities (n_texts x n_labels)."""
        return self.predict_proba_embeddings(self.encoder.embed(texts, batch_size=batch_size))

    def predict(self, texts: list[str]) -> list[tuple[str, float]]:
        """(label, confidence) per text."""
        p = self.predict_proba(texts)
        return [(self.card.labels[i], float(p[k, i])) for k, i in enumerate(p.argmax(axis=1))]

    def save(self, folder: Path) -> str:
        """Write the artifact; returns its digest."""
        from safetensors.numpy import save_file

        folder.mkdir(parents=True, exist_ok=True)
        save_file({"weight": self.weight, "bias": self.bias}, str(folder / HEAD))
        (folder / MANIFEST).write_text(self.card.model_dump_json(indent=2), encoding="utf-8")
        self.digest = artifact_digest(folder)
        return self.digest

    @classmethod
    def load(cls, folder: Path, *, bf16: bool | None = None) -> TextClassifier:
        """Load an artifact folder (head-only artifacts use the shared base encoder)."""
        folder = Path(folder)
        digest = artifact_digest(folder)  # before a byte is loaded, and the same after (check_unchanged)
        card, weight, bias = _read_head(folder)
        enc_dir = str(folder) if (folder / "model.safetensors").is_file() else ""
        encoder = shared_encoder(enc_dir, bf16, digest if enc_dir else "")  # an encoder of exactly these bytes
        check_unchanged(folder, digest)
        return cls(card, weight, bias, encoder, digest=digest)


def _read_head(folder: Path) -> tuple[ModelCard, np.ndarray, np.ndarray]:
    from safetensors.numpy import load_file

    if not (folder / MANIFEST).is_file():
        msg = f"{folder} is not a model artifact: {MANIFEST} is missing"
        raise FileNotFoundError(msg)
    card = ModelCard.model_validate_json((folder / MANIFEST).read_text(encoding="utf-8"))
    tensors = load_file(str(folder / HEAD))
    return card, tensors["weight"], tensors["bias"]


def load_head(folder: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Head weight, bias and labels of any artifact (``minilm-head`` or ``minilm-finetuned``)."""
    card, weight, bias = _read_head(Path(folder))
    return weight, bias, list(card.labels)


def train_head(
    texts: list[str],
    labels: list[str],
    *,
    name: str,
    version: str,
    encoder: Encoder | None = None,
    c: float = 4.0,
    seed: int = 0,
    embeddings: np.ndarray | None = None,
) -> TextClassifier:
    """Fit a logistic-regression head on frozen MiniLM embeddings (deterministic for a seed)."""
    from sklearn.linear_model import LogisticRegression

    if len(texts) != len(labels) or not texts:
        msg = f"train_head needs as many labels as texts and at least one of each (got {len(texts)} / {len(labels)})"
        raise ValueError(msg)
    encoder = encoder or shared_encoder()
    emb = embeddings if embeddings is not None else encoder.embed(texts)
    classes = sorted(set(labels))
    clf = LogisticRegression(C=c, max_iter=2000, random_state=seed)
    clf.fit(emb, labels)
    order = [list(clf.classes_).index(k) for k in classes]
    weight = clf.coef_[order] if len(classes) > 2 else np.vstack([-clf.coef_[0] / 2, clf.coef_[0] / 2])
    bias = clf.intercept_[order] if len(classes) > 2 else np.array([-clf.intercept_[0] / 2, clf.intercept_[0] / 2])
    card = ModelCard(
        name=name,
        version=version,
        labels=classes,
        base_model_digest=model_digest(str(base_model_dir())),
        training_data_digests=[rows_digest(texts, labels)],
        params={"C": c, "seed": seed, "n_train": len(texts)},
    )
    return TextClassifier(card, np.asarray(weight), np.asarray(bias), encoder)


def load_label_map(folder: Path) -> list[str]:
    """Labels of an artifact without loading weights."""
    return list(json.loads((folder / MANIFEST).read_text(encoding="utf-8"))["labels"])
