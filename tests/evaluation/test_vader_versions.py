"""The VADER candidates' versions name the rows they were trained on; sizes that make no split are refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from flytekitplugins.aios_catalog import catalog
from flytekitplugins.aios_core.settings import get_settings
from tasks.ml.classifier import TextClassifier


def _version(d: object) -> str:
    return TextClassifier.load(Path(d.download())).card.version  # type: ignore[attr-defined]


def test_another_held_out_size_trains_and_registers_another_version(monkeypatch: pytest.MonkeyPatch) -> None:
    """The training rows are drawn after the held-out ones, so n_test changes them. The version left n_test out: a
    second run with another n_test trained other bytes under the same version, and registering them failed."""
    from workflows.evaluation import vader_models

    monkeypatch.setenv("AIOS_PRINCIPAL", "service:retraining")
    a = vader_models(n_weak=5, n_strong=20, n_test=10)
    b = vader_models(n_weak=5, n_strong=20, n_test=11)  # failed: "...strong-n20-s0 is registered with digest ..."
    assert [_version(d) for d in (a.weak, a.strong, a.baseline)] == [
        "tweets-weak-n5-t10-s0",
        "tweets-strong-n20-t10-s0",
        "tweets-baseline-n20-t10-s0",
    ]
    assert _version(b.strong) == "tweets-strong-n20-t11-s0"
    versions = {e.version for e in catalog(get_settings()).entries("vader-sentiment")}
    assert {"tweets-strong-n20-t10-s0", "tweets-strong-n20-t11-s0"} <= versions
    again = vader_models(n_weak=5, n_strong=20, n_test=10)  # the same inputs: the same bytes, registered once
    assert _version(again.strong) == "tweets-strong-n20-t10-s0"


@pytest.mark.parametrize(
    ("n_weak", "n_strong", "n_test"), [(-1, 20, 10), (0, 20, 10), (5, 20, 0), (30, 20, 10), (5, -20, 10)]
)
def test_sizes_that_make_no_split_are_refused_by_name(n_weak: int, n_strong: int, n_test: int) -> None:
    """n_weak=-1 used to train the weak model on all but the last strong example (``head(-1)``)."""
    from tasks.evaluation.train import train_vader_models

    with pytest.raises(ValueError, match=f"n_test={n_test}, n_weak={n_weak}, n_strong={n_strong}: give at least"):
        train_vader_models.task_function("tweets", "vader-sentiment", n_weak, n_strong, n_test, 0)
