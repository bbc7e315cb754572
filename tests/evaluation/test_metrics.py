"""Evaluation figures against reference implementations (scikit-learn, scipy, closed forms)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_score, recall_score

from tasks.evaluation.metrics import calibration, classification, latency, mcnemar_exact, paired_bootstrap


def test_classification_matches_sklearn() -> None:
    rng = np.random.default_rng(0)
    y, pred = rng.integers(0, 3, 500), rng.integers(0, 3, 500)
    acc, f1, cm, per = classification(y, pred, 3)
    assert acc == pytest.approx(accuracy_score(y, pred))
    assert f1 == pytest.approx(f1_score(y, pred, average="macro"))
    assert cm == confusion_matrix(y, pred).tolist()
    assert np.allclose(per[:, 0], precision_score(y, pred, average=None))
    assert np.allclose(per[:, 1], recall_score(y, pred, average=None))


def test_calibration_error() -> None:
    # every prediction 0.8 confident and right 80% of the time: perfectly calibrated
    y = np.array([0] * 8 + [1] * 2)
    proba = np.tile([0.8, 0.2], (10, 1))
    ece, rel = calibration(y, proba)
    assert ece == pytest.approx(0.0) and rel == [[pytest.approx(0.8), pytest.approx(0.8), 1.0]]
    ece, _ = calibration(np.ones(10, dtype=int), proba)  # always wrong at 0.8 confidence
    assert ece == pytest.approx(0.8)


def test_mcnemar_exact_closed_form() -> None:
    y = np.zeros(30, dtype=int)
    a = np.zeros(30, dtype=int)
    b = a.copy()
    b[:10] = 1  # b wrong on 10 rows where a is right
    n01, n10, p = mcnemar_exact(y, a, b)
    assert (n01, n10) == (10, 0) and p == pytest.approx(2 * 0.5**10)
    assert mcnemar_exact(y, a, a)[2] == 1.0


def test_paired_bootstrap_covers_the_observed_delta() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 400)
    a = np.where(rng.random(400) < 0.7, y, 1 - y)
    b = np.where(rng.random(400) < 0.85, y, 1 - y)
    lo, hi = paired_bootstrap(y, a, b)
    delta = (b == y).mean() - (a == y).mean()
    assert lo < delta < hi and lo > 0


def test_latency_and_cost_model() -> None:
    calls: list[int] = []
    per_doc, cpu, cost = latency(lambda xs: calls.append(len(xs)), ["x"] * 10, 4, cpu_price_per_hour=3600.0)
    assert calls == [4, 4, 4, 2] and len(per_doc) == 10  # warm-up batch, then 10 documents timed
    assert cost == pytest.approx(cpu * 1000)  # 3600 USD/h = 1 USD per CPU-second


def test_calibration_bins_are_left_open_like_sklearn() -> None:
    # 0.7 falls in (0.6, 0.7], 0.75 in (0.7, 0.8]: two bins, not one [0.7, 0.8)
    y = np.array([0, 1])
    ece, rel = calibration(y, np.array([[0.7, 0.3], [0.75, 0.25]]))
    assert ece == pytest.approx(0.5 * 0.3 + 0.5 * 0.75)
    assert [r[0] for r in rel] == [pytest.approx(0.7), pytest.approx(0.75)]


def test_macro_f1_counts_labels_absent_from_both_sides_as_zero() -> None:
    y, pred = np.array([0, 1, 1]), np.array([0, 1, 1])
    assert classification(y, pred, 2)[1] == pytest.approx(1.0)
    assert classification(y, pred, 4)[1] == pytest.approx(0.5)  # labels 2, 3: never true, never predicted
    assert classification(y, pred, 4, labels=np.array([0, 1]))[1] == pytest.approx(1.0)
