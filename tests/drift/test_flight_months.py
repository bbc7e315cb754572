"""The flights drift check's own inputs: months outside 1-12 and negative sample sizes are refused by name."""

from __future__ import annotations

import pytest

from tasks.drift.data import load_flights


@pytest.mark.parametrize(
    ("months", "n", "want"),
    [((13,), 0, "no month 13 in a year"), ((0, 4), 0, "no month 0"), ((1,), -5, "n=-5: give the rows to sample as 0")],
)
def test_a_month_outside_the_year_or_a_negative_sample_is_named(months: tuple[int, ...], n: int, want: str) -> None:
    """Month 13 used to load no row and fail the data-quality suite ('observed 0'); n=-5 reached pandas' sampler."""
    with pytest.raises(ValueError, match=want):
        load_flights(months, n)


def test_the_months_asked_for_are_the_months_loaded() -> None:
    df = load_flights((2, 11), n=500, seed=3)
    assert len(df) == 500 and set(df["month"]) == {2, 11}
