"""A workflow's ``seed`` input is checked by name where it enters: numpy refused a negative seed ("expected
non-negative integer"), pandas and scikit-learn one past 32 bits ("Seed must be between 0 and 2**32 - 1"), each in
its own words deep inside a task, naming no input."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tasks.drift.data import load_flights
from tasks.evaluation.data import split
from tasks.seeds import SEED_MAX, check_seed

BAD = [-1, SEED_MAX + 1, 2**64]


@pytest.mark.parametrize("seed", BAD)
def test_a_seed_outside_what_the_libraries_take_is_refused_by_name(seed: int) -> None:
    with pytest.raises(ValueError, match=rf"^seed={seed}: give a whole number from 0 to {SEED_MAX}$"):
        check_seed(seed)
    with pytest.raises(ValueError, match=rf"seed={seed}: give a whole number"):
        split(pd.DataFrame({"a": range(10)}), (2, 2), seed)
    with pytest.raises(ValueError, match=rf"seed={seed}: give a whole number"):
        load_flights((1,), 10, seed)


@pytest.mark.parametrize("seed", [True, 1.5, "3"])
def test_only_whole_numbers_are_seeds(seed: object) -> None:
    with pytest.raises(ValueError, match="give a whole number"):
        check_seed(seed)  # type: ignore[arg-type]


def test_the_edges_of_the_range_are_seeds_every_library_takes() -> None:
    for seed in (0, SEED_MAX):
        assert check_seed(seed) == seed
        a, b = split(pd.DataFrame({"a": range(10)}), (3, 3), seed)
        assert len(a) == len(b) == 3 and not set(a["a"]) & set(b["a"])
        assert len(load_flights((1,), 10, seed)) == 10  # pandas' sampler takes it


def test_the_text_drift_batches_check_the_seed_they_were_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The seed is checked as given, before anything is loaded; two sources draw the current batch with the next seed,
    which wraps to 0 after the largest (2**32 there would have been refused, a value nobody gave)."""
    from workflows.monitoring import load_text_batches

    monkeypatch.setenv("AIOS_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("AIOS_AUDIT_STORE", f"sqlite:///{tmp_path}/audit.db")
    with pytest.raises(Exception, match=r"seed=-1: give a whole number"):
        load_text_batches(reference_source="tweets", current_source="movieReviewSnippets", n=10, seed=-1)
    ref, cur = load_text_batches(reference_source="tweets", current_source="movieReviewSnippets", n=10, seed=SEED_MAX)
    assert len(ref) == len(cur) == 10
