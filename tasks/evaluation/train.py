"""Real candidate classifiers on VADER text for the evaluation: a weak, a strong and a baseline model."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
from flytekit import task
from flytekit.types.directory import FlyteDirectory

from flytekitplugins.aios_core.errors import AiosError
from flytekitplugins.aios_core.settings import get_settings
from tasks.evaluation.data import binarize, load_vader, split
from tasks.images import GOVERNED
from tasks.ml.classifier import ModelCard, TextClassifier, train_head


class VaderSplits(NamedTuple):
    weak: FlyteDirectory
    strong: FlyteDirectory
    baseline: FlyteDirectory
    test: pd.DataFrame
    train: pd.DataFrame


def _save(clf: TextClassifier) -> FlyteDirectory:
    folder = Path(tempfile.mkdtemp(prefix="aios-model-")) / f"{clf.card.name}-{clf.card.version}"
    clf.save(folder)
    return FlyteDirectory(path=str(folder))


def baseline_model(labels: list[str], train_labels: list[str], name: str, version: str) -> TextClassifier:
    """Majority-class model in the pack's artifact format: zero weights, bias = log class priors."""
    from tasks.ml.minilm import shared_encoder

    priors = np.array([max(train_labels.count(k), 1) for k in labels], dtype=np.float64)
    card = ModelCard(name=name, version=version, labels=labels, params={"kind": "majority-class baseline"})
    return TextClassifier(card, np.zeros((len(labels), 384)), np.log(priors / priors.sum()), shared_encoder())


@task(**GOVERNED)
def train_vader_models(source: str, name: str, n_weak: int, n_strong: int, n_test: int, seed: int) -> VaderSplits:
    """Train a weak (few examples) and a strong head on one VADER source, plus a majority baseline.

    Args:
        source: VADER source, e.g. ``tweets``.
        name: catalog name of the models.
        n_weak: training examples of the weak model.
        n_strong: training examples of the strong model (disjoint from the test rows).
        n_test: held-out rows.
        seed: split and training seed.
    """
    from tasks.drift.text import embed_cached

    data = binarize(load_vader(source, get_settings().data_dir))  # this task's settings
    test, train = split(data, (n_test, n_strong), seed)
    weak_rows = train.head(n_weak)
    models = []
    for rows, tag in ((weak_rows, "weak"), (train, "strong")):
        texts, labels = rows["text"].tolist(), rows["label"].tolist()
        version = f"{source}-{tag}-n{len(rows)}-s{seed}"
        models.append(train_head(texts, labels, name=name, version=version, seed=seed, embeddings=embed_cached(texts)))
    base = baseline_model(models[1].labels, train["label"].tolist(), name, f"{source}-baseline-s{seed}")
    cols = ["id", "text", "label", "score"]
    return VaderSplits(_save(models[0]), _save(models[1]), _save(base), test[cols], train[cols])


@task(**GOVERNED)
def register_models(models: list[FlyteDirectory], owner: str) -> list[str]:
    """Register artifacts in the catalog as candidates (idempotent for identical bytes).

    Args:
        models: artifact folders.
        owner: accountable owner recorded in the catalog.
    """
    from flytekitplugins.aios_catalog import ModelEntry, catalog

    settings = get_settings()  # this task's entry point: resolved once, passed down
    cat, out = catalog(settings), []
    for d in models:
        clf = TextClassifier.load(Path(d.download()))
        known = cat.find(clf.card.name, clf.card.version)
        if known is not None and known.digest != clf.digest:
            msg = f"{known.model_id} is registered with digest {known.digest}, these bytes are {clf.digest}"
            raise AiosError(msg)
        if known is None:
            entry = ModelEntry(
                name=clf.card.name,
                version=clf.card.version,
                digest=clf.digest,
                owner=owner,
                training_data_digests=clf.card.training_data_digests,
                allowed_data_classes=["public", "internal"],
                artifact_uri=str(d.path),
                description=f"MiniLM head, {clf.card.params}",
            )
            cat.register(entry, actor=settings.actor)
        out.append(f"{clf.card.name}@{clf.card.version}")
    return out
