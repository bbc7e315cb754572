"""Real candidate classifiers on VADER text for the evaluation: a weak, a strong and a baseline model."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
from flytekit import task
from flytekit.types.directory import FlyteDirectory

from flytekitplugins.aios_core.digest import digest_value
from flytekitplugins.aios_core.errors import AiosError
from flytekitplugins.aios_core.settings import Settings, get_settings
from tasks.evaluation.data import binarize, load_vader, split
from tasks.images import GOVERNED
from tasks.ml import seal_split, seal_trained
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


def _save_trained(clf: TextClassifier, settings: Settings) -> FlyteDirectory:
    """Save a head trained here from scratch and seal that its artifact was trained on its card's rows."""
    saved = _save(clf)  # sets clf.digest, the artifact's
    seal_trained(f"{clf.card.name}@{clf.card.version}", clf.digest, clf.card.training_data_digests[0], "", settings)
    return saved


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

    if n_test < 1 or n_weak < 1 or n_strong < n_weak:
        msg = (
            f"n_test={n_test}, n_weak={n_weak}, n_strong={n_strong}: give at least one held-out row and one weak "
            "training example, and at least as many strong examples as weak ones (the weak model's are the strong "
            "model's first ones)"
        )
        raise ValueError(msg)
    settings = get_settings()  # this task's entry point: resolved once, passed down
    data = binarize(load_vader(source, settings.data_dir))
    test, train = split(data, (n_test, n_strong), seed)
    weak_rows = train.head(n_weak)
    models = []
    # the version names the rows trained on: the training rows are drawn after the held-out ones, so they depend on
    # n_test too (without it, a second run with another n_test trained other bytes under the same version, which the
    # catalog then refused to register)
    split_tag = f"t{n_test}-s{seed}"
    for rows, tag in ((weak_rows, "weak"), (train, "strong")):
        texts, labels = rows["text"].tolist(), rows["label"].tolist()
        version = f"{source}-{tag}-n{len(rows)}-{split_tag}"
        models.append(train_head(texts, labels, name=name, version=version, seed=seed, embeddings=embed_cached(texts)))
    base_version = f"{source}-baseline-n{len(train)}-{split_tag}"
    base = baseline_model(models[1].labels, train["label"].tolist(), name, base_version)
    cols = ["id", "text", "label", "score"]
    held_out = test[cols]
    # the rows drawn apart, sealed: a drift check of the training rows against the held-out ones counts for an
    # evaluation of these heads (the catalog's training digests alone are whoever registered a model's word)
    rows = {"train": models[1].card.training_data_digests[0], "train_head": models[0].card.training_data_digests[0]}
    drawn = {"source": source, "name": name, "n_weak": n_weak, "n_strong": n_strong, "n_test": n_test, "seed": seed}
    seal_split(f"dataset:vader-{source}", {**rows, "test": digest_value(held_out)}, drawn, settings)
    weak, strong = (_save_trained(m, settings) for m in models)
    return VaderSplits(weak, strong, _save(base), held_out, train[cols])


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
            msg = (
                f"{known.model_id} is already registered with other bytes ({known.digest}; these are {clf.digest}): "
                "a version names one artifact for good. Register these under a version of their own"
            )
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
