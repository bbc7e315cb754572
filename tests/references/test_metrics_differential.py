"""Every metric the pack reports, against scikit-learn, SciPy and statsmodels on random and edge cases.

Evaluation (tasks/evaluation/metrics.py): accuracy, macro-F1 (absent labels), per-class precision, recall
and support, confusion matrix, ECE and its reliability points, exact McNemar. Drift
(tasks/drift/effect_size.py, binned.py, ecdf.py): PSI, JS distance, chi-square p, KS statistic and p, exact
W1 / reference std, missing shares. Edge cases: ties, constant columns, n = 1, empty bins, missing values.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import jensenshannon
from scipy.special import rel_entr
from scipy.stats import chi2_contingency, ks_2samp, wasserstein_distance
from sklearn.calibration import calibration_curve
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support
from statsmodels.stats.contingency_tables import mcnemar

from tasks.drift.effect_size import chi2_pvalue, effect_sizes, js_distance, profile_reference, psi
from tasks.evaluation.metrics import calibration, classification, mcnemar_exact

RNG = np.random.default_rng(20261129)


def _label_cases() -> list[tuple[np.ndarray, np.ndarray, int]]:
    rng = np.random.default_rng(7)
    return [
        (rng.integers(0, 3, 500), rng.integers(0, 3, 500), 3),
        (rng.integers(0, 4, 97), rng.integers(0, 2, 97), 4),  # labels 2, 3 never predicted
        (np.array([0, 0, 1, 1]), np.array([0, 0, 1, 1]), 5),  # labels 2-4 absent from both
        (np.array([2]), np.array([1]), 3),  # n = 1, wrong
        (np.array([1]), np.array([1]), 2),  # n = 1, right
    ]


@pytest.mark.parametrize(("y", "pred", "k"), _label_cases())
def test_classification_matches_sklearn(y: np.ndarray, pred: np.ndarray, k: int) -> None:
    labels = list(range(k))
    acc, f1, cm, per = classification(y, pred, k)
    assert acc == pytest.approx(accuracy_score(y, pred), abs=1e-12)
    assert f1 == pytest.approx(f1_score(y, pred, labels=labels, average="macro", zero_division=0), abs=1e-12)
    assert cm == confusion_matrix(y, pred, labels=labels).tolist()
    p, r, _, s = precision_recall_fscore_support(y, pred, labels=labels, zero_division=0)
    assert np.allclose(per[:, 0], p, atol=1e-12) and np.allclose(per[:, 1], r, atol=1e-12)
    assert per[:, 2].tolist() == s.tolist()


def test_macro_f1_over_the_present_labels_follows_sklearn_labels() -> None:
    y, pred = np.array([0, 0, 1, 1, 1]), np.array([0, 1, 1, 1, 0])
    present = np.unique(np.concatenate([y, pred]))
    _, f1_all, _, _ = classification(y, pred, 4)
    _, f1_present, _, _ = classification(y, pred, 4, labels=present)
    assert f1_present == pytest.approx(f1_score(y, pred, average="macro"))  # sklearn's default: present labels
    assert f1_all == pytest.approx(f1_score(y, pred, labels=[0, 1, 2, 3], average="macro", zero_division=0))
    assert f1_all == pytest.approx(f1_present / 2)  # two absent labels count 0


def _sklearn_ece(y: np.ndarray, proba: np.ndarray, bins: int) -> tuple[float, np.ndarray]:
    conf, correct = proba.max(axis=1), (proba.argmax(axis=1) == y).astype(float)
    prob_true, prob_pred = calibration_curve(correct, conf, n_bins=bins, strategy="uniform")
    ids = np.searchsorted(np.linspace(0.0, 1.0, bins + 1)[1:-1], conf)  # calibration_curve's own binning
    share = np.bincount(ids, minlength=bins)[np.bincount(ids, minlength=bins) > 0] / len(y)
    return float((share * np.abs(prob_true - prob_pred)).sum()), np.stack([prob_pred, prob_true, share], axis=1)


def _calibration_cases() -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(3)
    p = rng.dirichlet([1, 1, 1], 400)
    edge = np.array([[0.6, 0.4], [0.7, 0.3], [0.8, 0.2], [0.9, 0.1], [1.0, 0.0], [0.5, 0.5]])  # on bin edges
    quarter = np.array([[0.3, 0.3, 0.4], [0.25, 0.35, 0.4], [0.2, 0.2, 0.6]])
    return [
        (rng.integers(0, 3, 400), p),
        (np.array([0, 1, 0, 0, 1, 0]), edge),
        (np.array([2, 2, 1]), quarter),
        (np.array([0]), np.array([[0.3, 0.7]])),  # n = 1
    ]


@pytest.mark.parametrize(("y", "proba"), _calibration_cases())
def test_ece_matches_sklearn_calibration_curve_bins(y: np.ndarray, proba: np.ndarray) -> None:
    ece, rel = calibration(y, proba)
    expected, points = _sklearn_ece(y, proba, 10)
    assert ece == pytest.approx(expected, abs=1e-12)
    assert np.allclose(np.array(rel), points, atol=1e-12)


@pytest.mark.parametrize("seed", range(4))
def test_mcnemar_matches_statsmodels_exact(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = [1, 12, 60, 400][seed]
    y = rng.integers(0, 2, n)
    a, b = np.where(rng.random(n) < 0.7, y, 1 - y), np.where(rng.random(n) < 0.75, y, 1 - y)
    n01, n10, p = mcnemar_exact(y, a, b)
    a_ok, b_ok = a == y, b == y
    table = [[int((a_ok & b_ok).sum()), n01], [n10, int((~a_ok & ~b_ok).sum())]]
    assert p == pytest.approx(mcnemar(table, exact=True).pvalue, abs=1e-12)


def _count_cases() -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(11)
    a, b = rng.integers(0, 80, (6, 12)).astype(float), rng.integers(0, 80, (6, 12)).astype(float)
    a[0, 3] = b[0, 3] = 0  # a bin empty on both sides
    a[1, 5] = 0  # empty only in the reference
    b[2, :4] = 0  # empty only in the current
    return [(a, b), (np.array([[5.0, 0, 0]]), np.array([[0.0, 0, 7]])), (np.array([[1.0, 0]]), np.array([[1.0, 0]]))]


@pytest.mark.parametrize(("ref", "cur"), _count_cases())
def test_binned_statistics_match_scipy(ref: np.ndarray, cur: np.ndarray) -> None:
    for i in range(len(ref)):
        p, q = np.maximum(ref[i] / ref[i].sum(), 1e-4), np.maximum(cur[i] / cur[i].sum(), 1e-4)
        assert psi(ref[i : i + 1], cur[i : i + 1])[0] == pytest.approx((rel_entr(q, p) + rel_entr(p, q)).sum())
        assert js_distance(ref[i : i + 1], cur[i : i + 1])[0] == pytest.approx(
            jensenshannon(ref[i], cur[i], base=2), abs=1e-9
        )
        table = np.stack([ref[i], cur[i]])[:, (ref[i] + cur[i]) > 0]
        if table.shape[1] > 1:
            expected = chi2_contingency(table, correction=False).pvalue
            assert chi2_pvalue(ref[i : i + 1], cur[i : i + 1])[0] == pytest.approx(expected, rel=1e-9, abs=1e-300)


def _frames() -> dict[str, tuple[pd.DataFrame, pd.DataFrame]]:
    rng = np.random.default_rng(5)
    lognormal = pd.DataFrame({"x": rng.lognormal(0, 1, 3000)}), pd.DataFrame({"x": rng.lognormal(0.05, 1.1, 2000)})
    normal = pd.DataFrame({"x": rng.normal(size=1000)}), pd.DataFrame({"x": rng.normal(0.1, 1, 1500)})
    ties = pd.DataFrame({"x": rng.integers(0, 5, 700)}), pd.DataFrame({"x": rng.integers(1, 7, 300)})
    gaps = pd.DataFrame({"x": rng.normal(size=200)}), pd.DataFrame({"x": rng.normal(size=200)})
    gaps[0].loc[::7, "x"], gaps[1].loc[::3, "x"] = np.nan, np.nan
    return {
        "normal": normal,
        "lognormal": lognormal,
        "ties": ties,
        "missing": gaps,
        "constant same": (pd.DataFrame({"x": [3.0] * 50}), pd.DataFrame({"x": [3.0] * 40})),
        "constant moved": (pd.DataFrame({"x": [3.0] * 50}), pd.DataFrame({"x": [4.5] * 40})),
        "n = 1": (pd.DataFrame({"x": [1.0]}), pd.DataFrame({"x": [2.5]})),
        "n = 1 vs many": (pd.DataFrame({"x": [0.0]}), pd.DataFrame({"x": rng.normal(size=30)})),
        "identical": (normal[0], normal[0].copy()),
    }


small_samples = st.lists(st.integers(-5, 5).map(float) | st.floats(-1e3, 1e3), min_size=1, max_size=40)


@settings(max_examples=300, deadline=None)
@given(a=small_samples, b=small_samples)
def test_w1_and_ks_of_any_two_samples_match_scipy(a: list[float], b: list[float]) -> None:
    from tasks.drift.ecdf import w1_ks_sorted

    w1, ks = w1_ks_sorted(np.sort(a), np.sort(b))
    assert w1 == pytest.approx(wasserstein_distance(a, b), rel=1e-9, abs=1e-9)
    with np.errstate(divide="ignore"):
        assert ks == pytest.approx(ks_2samp(a, b, method="asymp").statistic, abs=1e-12)


def _flights_150() -> tuple[pd.DataFrame, pd.DataFrame]:
    from tasks.drift.data import load_flights

    cols = ["dep_delay", "arr_delay", "air_time", "distance", "dep_time", "flight"]
    return load_flights((1,), n=150, seed=1)[cols], load_flights((7,), n=150, seed=2)[cols]


def _check_w1(ref: pd.DataFrame, cur: pd.DataFrame) -> None:
    es = effect_sizes(profile_reference(ref), cur)
    for j, col in enumerate(es.columns):
        r, c = ref[col].dropna().to_numpy(float), cur[col].dropna().to_numpy(float)
        std = r.std() if r.std() > 0 else 1.0
        assert es.wasserstein[j] == pytest.approx(wasserstein_distance(r, c) / std, abs=1e-9), col


@pytest.mark.parametrize("case", list(_frames()))
def test_exact_wasserstein_matches_scipy(case: str) -> None:
    _check_w1(*_frames()[case])


def test_exact_wasserstein_matches_scipy_on_150_real_flights() -> None:
    _check_w1(*_flights_150())


@pytest.mark.parametrize("case", list(_frames()))
def test_ks_and_missing_shares_match_scipy(case: str) -> None:
    ref, cur = _frames()[case]
    es = effect_sizes(profile_reference(ref), cur)
    r, c = ref["x"].dropna().to_numpy(float), cur["x"].dropna().to_numpy(float)
    with np.errstate(divide="ignore"):  # scipy's own asymptotic p at n = m = 1 divides by round(0.5) = 0
        expected = ks_2samp(r, c, method="asymp")
    assert es.ks[0] == pytest.approx(expected.statistic, abs=1e-12)
    if round(len(r) * len(c) / (len(r) + len(c))) >= 1:  # else scipy has no asymptotic p; the pack reports 1
        assert es.p_ks[0] == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-300)
    assert es.missing_ref[0] == pytest.approx(ref["x"].isna().mean())
    assert es.missing_cur[0] == pytest.approx(cur["x"].isna().mean())
    assert es.p_value[0] == pytest.approx(min(1.0, 2 * min(es.p_chi2[0], es.p_ks[0])))


def test_categorical_bins_match_scipy_on_the_compared_table() -> None:
    rng = np.random.default_rng(9)
    cats = np.array(list("abcdef"), dtype=object)
    ref = pd.DataFrame({"c": rng.choice(cats, 3000, p=[0.3, 0.25, 0.2, 0.15, 0.1, 0.0])})
    cur = pd.DataFrame({"c": rng.choice(cats, 2000, p=[0.2, 0.25, 0.2, 0.15, 0.1, 0.1])})
    cur.loc[:99, "c"] = None
    es = effect_sizes(profile_reference(ref), cur)
    a, b = ref["c"].value_counts(), cur["c"].value_counts()
    keys = a.add(b, fill_value=0).index
    p, q = a.reindex(keys, fill_value=0).to_numpy(float), b.reindex(keys, fill_value=0).to_numpy(float)
    p, q = np.append(p, 0.0), np.append(q, 100.0)  # the missing bin
    assert es.js[0] == pytest.approx(jensenshannon(p, q, base=2), abs=1e-9)
    pf, qf = np.maximum(p / p.sum(), 1e-4), np.maximum(q / q.sum(), 1e-4)
    assert es.psi[0] == pytest.approx((rel_entr(qf, pf) + rel_entr(pf, qf)).sum(), rel=1e-9)
    table = np.stack([p, q])[:, (p + q) > 0]
    assert es.p_chi2[0] == pytest.approx(chi2_contingency(table, correction=False).pvalue, rel=1e-9, abs=1e-300)
    assert es.missing_cur[0] == pytest.approx(0.05)
