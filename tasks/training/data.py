"""Training data for retraining: real labelled VADER text plus human-review corrections; the start model.

Labels are VADER's binarized sentiment (``positive`` / ``negative``; see ``tasks.evaluation.data``).
Corrections from the document workflow's human reviews (``tasks.ml.feedback``) are added to the training
rows only, so the held-out rows stay comparable between runs; a correction overrides a VADER row with
the same text.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import pandas as pd
from flytekit import task
from flytekit.types.directory import FlyteDirectory

from flytekitplugins.aios_core.digest import digest_value
from flytekitplugins.aios_core.settings import Settings
from tasks.images import GOVERNED
from tasks.ml import rows_digest, seal_split

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
        feedback_rejected: line number (or ``held-out <digest>``) -> why a correction was refused.
        labels: class labels.
        reference_rows_digest: digest of the VADER rows the training rows were drawn from, before corrections
            (``tasks.ml.rows_digest``): the reference batch of the candidate's drift check.
        sealed_by: audit record id of the ``kind="dataset"`` record ``prepare_data`` sealed this split in;
            ``register_candidate`` registers only a split sealed there.
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
    reference_rows_digest: str = ""
    sealed_by: str = ""


class Prepared(NamedTuple):
    train: pd.DataFrame
    reference: pd.DataFrame
    test: pd.DataFrame
    lineage: DataLineage


def _same_text(text: str) -> tuple[int, ...]:
    """What the model sees of a text: the base tokenizer's ids (its own normalization: case, accents, zero-width and
    other format characters, white space). A held-out row with a space added, its accents stripped or a zero-width
    space inserted was another text to the held-out filter, and trained on (reviews of 2026-12-06)."""
    return tuple(_tokenizer().encode(text, add_special_tokens=False))


SEEN_TOKENS = 62
"""Token ids a text is trained on at the default ``TrainConfig.max_length`` (64, less two special tokens): a held-out
row with words added past them was another text to the filter and trained on as the held-out row itself. A training
run launched with a shorter ``max_length`` sees fewer, which this filter does not follow."""


def _held_out(ids: tuple[int, ...], held: set[tuple[int, ...]], heads: set[tuple[int, ...]]) -> bool:
    """Whether token ids ``ids`` are a held-out row's, whole or as far as training reads them."""
    return ids in held or (len(ids) >= SEEN_TOKENS and ids[:SEEN_TOKENS] in heads)


@functools.cache
def _tokenizer() -> Any:
    from transformers import AutoTokenizer

    from tasks.ml.minilm import base_model_dir

    return AutoTokenizer.from_pretrained(base_model_dir(), local_files_only=True)


def _with_feedback(
    train: pd.DataFrame, held_out: pd.DataFrame, use_feedback: bool, settings: Settings
) -> tuple[pd.DataFrame, int, str, dict[str, str]]:
    """The training rows with the reviewed corrections (:func:`tasks.ml.feedback.read_corrections`: each standing on
    its review record in the trail) in place of the rows of the same text. A correction of a held-out row is left
    out and counted: with it the held-out rows were trained on (all 60 of them, in the review of 2026-12-06), and
    every figure measured on them afterwards was a figure on training data."""
    from tasks.ml.feedback import feedback_path, read_corrections

    if not use_feedback:
        return train, 0, "", {}
    batch = read_corrections(feedback_path(settings), labels=LABELS, settings=settings)
    rejected = {str(k): v for k, v in batch.rejected.items()}
    held = {_same_text(t) for t in held_out["text"]}
    heads = {ids[:SEEN_TOKENS] for ids in held if len(ids) >= SEEN_TOKENS}
    out = {c.text_digest for c in batch.corrections if _held_out(_same_text(c.text), held, heads)}
    for digest in sorted(out):
        rejected[f"held-out {digest[:19]}"] = "its text is a held-out row: never moved into training"
    batch.corrections = [c for c in batch.corrections if c.text_digest not in out]
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
    train, n_fb, fb_digest, rejected = _with_feedback(
        reference[["text", "label", "source"]], test, use_feedback, settings
    )
    train_digest = rows_digest(train["text"].tolist(), train["label"].tolist())
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d%H%M%S")
    lineage = DataLineage(
        source=source, version=f"ft-{stamp}-{train_digest[7:13]}", train_digest=train_digest,
        test_digest=digest_value(test), feedback_digest=fb_digest, n_train=len(train), n_test=len(test),
        n_feedback=n_fb, feedback_rejected=rejected,
        reference_rows_digest=rows_digest(reference["text"].tolist(), reference["label"].tolist()),
    )  # fmt: skip
    drawn = {"version": lineage.version, "source": source, "n_train": len(train), "n_test": len(test),
             "n_feedback": n_fb, "seed": seed, "min_abs_score": min_abs_score}  # fmt: skip
    lineage.sealed_by = seal_split(f"dataset:vader-{source}", _split_outputs(lineage), drawn, settings)
    return Prepared(train, reference, test, lineage)


def _split_outputs(lineage: DataLineage) -> dict[str, str]:
    """The digests a split's seal holds (its ``outputs``, by role), as ``lineage`` states them (no ``feedback``
    without corrections)."""
    held = {
        "train": lineage.train_digest,
        "reference_rows": lineage.reference_rows_digest,
        "test": lineage.test_digest,
        "feedback": lineage.feedback_digest,
    }
    return {k: v for k, v in held.items() if v}


def sealed_split(lineage: DataLineage, settings: Settings) -> str:
    """The id of the intact seal ``prepare_data`` wrote for exactly ``lineage``'s split (digests and version).

    ``register_candidate`` is a task anyone with launch rights can start with a ``DataLineage`` typed by hand: a
    lineage naming the held-out rows as the reference batch made the catalog pin them as the candidate's training
    data, and a drift check of the held-out rows against themselves then counted as the candidate's.

    Raises:
        GovernanceDenied: ``unsealed_training_data``, naming what differs; nothing is registered.
    """
    from flytekitplugins.aios_audit import audit_log
    from flytekitplugins.aios_audit.records import intact
    from flytekitplugins.aios_catalog.evidence import SPLIT_KIND, SPLIT_STATUS
    from flytekitplugins.aios_core.errors import GovernanceDenied

    rec = audit_log(settings).get(lineage.sealed_by) if lineage.sealed_by else None
    if rec is None or not intact(rec) or rec.event.kind != SPLIT_KIND or rec.event.status != SPLIT_STATUS:
        shown = lineage.sealed_by or "(none given)"
        what = f"{shown} is not an intact split sealed by prepare_data in the audit trail"
    else:
        want = {**_split_outputs(lineage), "version": lineage.version}
        held = {**rec.event.outputs, "version": rec.event.attributes.get("version")}
        differ = sorted(k for k in want.keys() | held.keys() if want.get(k) != held.get(k))
        if not differ:
            return rec.record_id
        what = f"the data lineage handed in differs from split {rec.record_id} in {', '.join(differ)}"
    msg = f"{what}; register a candidate trained on rows prepare_data drew (run the retrain workflow)"
    raise GovernanceDenied(msg, reason_code="unsealed_training_data")


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
    digest = rows_digest(texts, labels)
    head = train_head(texts, labels, name=name, version=f"baseline-{digest[7:13]}", seed=seed)
    folder = Path(flytekit.current_context().working_directory) / "start-model"
    head.save(folder)
    return FlyteDirectory(str(folder))
