"""The drift decision rule (significant AND material) on the cases it is specified by.

A clear categorical shift is flagged, random halves of one month of real flights stay quiet, a clear location
shift is flagged and a 0.1 standard-deviation one mostly is not. Error rates over many more repetitions:
benchmarks/drift_error_rates.py (figures in docs/drift.md).
"""

from __future__ import annotations

import inspect

import numpy as np
import pandas as pd
import pytest

from tasks.drift.effect_size import Thresholds, effect_sizes, profile_reference
from tasks.drift.report import FeatureDrift, feature_drifts

CATS = np.array(["a", "b", "c"], dtype=object)


def check(ref: pd.DataFrame, cur: pd.DataFrame) -> dict[str, FeatureDrift]:
    return {f.name: f for f in feature_drifts(effect_sizes(profile_reference(ref), cur), Thresholds())}


@pytest.mark.parametrize("seed", range(5))
def test_ten_point_shift_of_a_category_share_is_flagged(seed: int) -> None:
    rng = np.random.default_rng(seed)
    ref = pd.DataFrame({"c": rng.choice(CATS, 5000, p=[0.5, 0.3, 0.2]), "z": rng.normal(size=5000)})
    cur = pd.DataFrame({"c": rng.choice(CATS, 5000, p=[0.4, 0.4, 0.2]), "z": rng.normal(size=5000)})
    feats = check(ref, cur)
    assert feats["c"].drifted and feats["c"].significant and feats["c"].material, feats["c"]
    assert any(r.startswith("psi") for r in feats["c"].reasons)
    assert not feats["z"].drifted


def test_random_halves_of_one_month_of_flights_stay_quiet() -> None:
    from tasks.drift.data import load_flights

    month = load_flights((1,))
    rng = np.random.default_rng(0)
    flagged, tested = [], 0
    for _ in range(12):
        order = rng.permutation(len(month))
        half = len(order) // 2
        feats = check(month.iloc[order[:half]], month.iloc[order[half:]])
        tested += len(feats)
        flagged += [name for name, f in feats.items() if f.drifted]
    assert tested == 12 * 19
    assert len(flagged) / tested <= 0.01, flagged  # >= 99% of features quiet


def test_small_random_halves_of_flights_stay_quiet_on_high_cardinality_columns() -> None:
    """2,000 rows per half: tailnum and time_hour have thousands of values, most seen once or twice."""
    from tasks.drift.data import load_flights

    month = load_flights((1,))
    rng = np.random.default_rng(1)
    flagged = []
    for _ in range(8):
        order = rng.permutation(len(month))
        feats = check(month.iloc[order[:2000]], month.iloc[order[-2000:]])
        flagged += [name for name, f in feats.items() if f.drifted]
    assert flagged == []


def _location_flags(shift: float, n: int, reps: int, seed: int = 0) -> float:
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(reps):
        ref, cur = pd.DataFrame({"x": rng.normal(size=n)}), pd.DataFrame({"x": rng.normal(shift, 1, n)})
        hits += check(ref, cur)["x"].drifted
    return hits / reps


def test_half_sd_location_shift_is_flagged_and_a_tenth_mostly_not() -> None:
    assert _location_flags(0.5, 2000, 10) == 1.0
    assert _location_flags(0.1, 2000, 40) < 0.5  # significant often, material rarely (measured 7%)


def test_missing_rate_jump_is_flagged() -> None:
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=2000), rng.normal(size=2000)
    b[rng.random(2000) < 0.1] = np.nan
    feats = check(pd.DataFrame({"x": a}), pd.DataFrame({"x": b}))
    assert feats["x"].drifted and feats["x"].missing_cur == pytest.approx(0.1, abs=0.02)


def test_bonferroni_cut_is_alpha_over_the_features() -> None:
    rng = np.random.default_rng(2)
    ref = pd.DataFrame({f"z{i}": rng.normal(size=300) for i in range(20)})
    cur = pd.DataFrame({f"z{i}": rng.normal(size=300) for i in range(20)})
    feats = check(ref, cur)
    assert all(f.p_threshold == pytest.approx(0.01 / 20) for f in feats.values())
    assert not any(f.drifted for f in feats.values())


def test_workflow_defaults_are_the_rule_defaults() -> None:
    """check_drift and monitor_flights pass thresholds explicitly: their defaults must be the rule's."""
    from workflows.drift import check_drift
    from workflows.monitoring import monitor_flights

    th = Thresholds()
    for wf in (check_drift, monitor_flights):
        defaults = inspect.signature(wf._workflow_function).parameters
        got = {k: defaults[f"{k}_threshold"].default for k in ("psi", "js", "wasserstein")}
        assert got == {"psi": th.psi, "js": th.js, "wasserstein": th.wasserstein}, wf.name
