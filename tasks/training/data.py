"""Training data for retraining: real labelled VADER text plus human-review corrections; the start model.

Labels are VADER's binarized sentiment (``positive`` / ``negative``; see ``tasks.evaluation.data``).
Corrections from the document workflow's human reviews (``tasks.ml.feedback``) are added to the training
rows only, so the held-out rows stay comparable between runs; a correction overrides a VADER row with
the same text.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import pandas as pd
from flytekit import task
from flytekit.types.directory import FlyteDirectory

from flytekitplugins.aios_core.digest import digest_value
from flytekitplugins.aios_core.settings import Settings
from tasks.images import GOVERNED

LABELS = ["negative", "positive"]


@dataclass
class DataLineage:
    """Where the training and held-out rows came from (digests, counts) and the version they produce.

    Args:
        source: VADER source.
        version: version of the model this run produces.
        train_digest: digest of the training rows (VADER + corrections).
        test_digest: digest of the held-out rows.
        feedback_digest: digest of the accepted corrections ("" when none).
        n_train: training rows.
        n_test: held-out rows.
        n_feedback: corrections used.
        feedback_rejected: line number -> why a correction line was refused.
        labels: class labels.
    """

    source: str
    version: str
    train_digest: str
    test_digest: str
    feedback_digest: str = ""
    n_train: int = 0
    n_test: int = 0
    n_feedback: int = 0
    feedback_rejected: dict[str, str] = field(default_factory=dict)
    labels: list[str] = field(default_factory=lambda: list(LABELS))


class Prepared(NamedTuple):
    train: pd.DataFrame
    reference: pd.DataFrame
    test: pd.DataFrame
    lineage: DataLineage


def _with_feedback(
    train: pd.DataFrame, use_feedback: bool, settings: Settings
) -> tuple[pd.DataFrame, int, str, dict[str, str]]:
    from tasks.ml.feedback import feedback_path, read_corrections

    if not use_feedback:
        return train, 0, "", {}
    batch = read_corrections(feedback_path(settings), labels=LABELS)
    rejected = {str(k): v for k, v in batch.rejected.items()}
    if not batch.corrections:
        return train, 0, "", rejected
    fb = pd.DataFrame({"text": [c.text for c in batch.corrections], "label": [c.label for c in batch.corrections]})
    fb["source"] = "feedback"
    kept = train[~train["text"].isin(set(fb["text"]))]
    return pd.concat([kept, fb], ignore_index=True), len(fb), batch.digest, rejected


@task(**GOVERNED)
def prepare_data(
    source: str, n_train: int, n_test: int, seed: int, use_feedback: bool, min_abs_score: float
) -> Prepared:
    """Sample disjoint training and held-out rows of real VADER text; add human-review corrections.

    Args:
        source: VADER source (tweets, movieReviewSnippets, nytEditorialSnippets, amazonReviewSnippets).
        n_train: VADER training rows.
        n_test: held-out rows (never mixed with corrections).
        seed: sampling seed.
        use_feedback: read ``{state_dir}/feedback/corrections.jsonl`` when present.
        min_abs_score: drop snippets whose mean human rating is closer to 0 than this (ambiguous sentiment).
    """
    from flytekitplugins.aios_core.settings import get_settings
    from tasks.evaluation.data import binarize, load_vader, split

    if not 0 <= min_abs_score < math.inf:  # NaN kept no row: "asked for 2600 rows but the data has 0"
        raise ValueError(f"min_abs_score={min_abs_score!r}: use a rating distance of 0 or more (0.5 is the default)")
    settings = get_settings()  # this task's entry point: resolved once, passed down
    rows = binarize(load_vader(source, settings.data_dir))
    rows = rows[rows["score"].abs() >= min_abs_score].reset_index(drop=True)
    reference, test = split(rows, (n_train, n_test), seed)
    train, n_fb, fb_digest, rejected = _with_feedback(reference[["text", "label", "source"]], use_feedback, settings)
    train_digest = digest_value({"texts": train["text"].tolist(), "labels": train["label"].tolist()})
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d%H%M%S")
    lineage = DataLineage(
        source=source, version=f"ft-{stamp}-{train_digest[7:13]}", train_digest=train_digest,
        test_digest=digest_value(test), feedback_digest=fb_digest, n_train=len(train), n_test=len(test),
        n_feedback=n_fb, feedback_rejected=rejected,
    )  # fmt: skip
    return Prepared(train, reference, test, lineage)


def _champion_dir(name: str, settings: Settings) -> Path | None:
    """The champion's artifact folder, when it is here; refused when its bytes are not the ones the catalog pins.

    The catalog entry names an artifact by digest: a folder under its ``artifact_uri`` with other bytes (swapped
    after registration, or registered under a digest of other bytes) is not the champion, and retraining from it
    or comparing with it would rest on a model nobody evaluated.

    Raises:
        GovernanceDenied: ``model_digest_mismatch`` naming both digests.
    """
    from flytekitplugins.aios_catalog import catalog
    from flytekitplugins.aios_core.errors import GovernanceDenied
    from tasks.ml.classifier import artifact_digest

    champ = catalog(settings).champion(name)
    if champ is None or not champ.artifact_uri:
        return None
    folder = Path(champ.artifact_uri.removeprefix("file://"))
    if not folder.is_dir():
        return None
    found = artifact_digest(folder)
    if found != champ.digest:
        msg = (
            f"champion {champ.model_id}: the artifact at {folder} has digest {found}, the catalog pins {champ.digest}; "
            "restore the catalogued artifact (or retire the entry) before retraining from it"
        )
        raise GovernanceDenied(msg, reason_code="model_digest_mismatch")
    return folder if (folder / "aios_model.json").is_file() else None


@task(**GOVERNED)
def start_model(train: pd.DataFrame, name: str, seed: int) -> FlyteDirectory:
    """The model retraining starts from and is compared with: the catalog champion, else a frozen baseline.

    The baseline is frozen MiniLM embeddings + a logistic-regression head trained on the same rows
    (kind ``minilm-head``): what the pack gets without fine-tuning.

    Args:
        train: training rows (``text``, ``label``).
        name: catalog name of the model.
        seed: seed of the head's solver.
    """
    import flytekit

    from flytekitplugins.aios_core.settings import get_settings
    from tasks.ml.classifier import train_head

    champion = _champion_dir(name, get_settings())  # this task's settings, passed down
    if champion is not None:
        return FlyteDirectory(str(champion))
    texts, labels = train["text"].astype(str).tolist(), train["label"].tolist()
    digest = digest_value({"texts": texts, "labels": labels})
    head = train_head(texts, labels, name=name, version=f"baseline-{digest[7:13]}", seed=seed)
    folder = Path(flytekit.current_context().working_directory) / "start-model"
    head.save(folder)
    return FlyteDirectory(str(folder))
