"""The batch's limits and price are finite numbers: an infinite max_file_mb, max_expanded_mb or
max_compression_ratio switched off the limit that stops an oversized file or a zip bomb, and a NaN or infinite price
made every cost in the summary NaN or infinite; each is refused naming the field."""

from __future__ import annotations

import math

import pytest

from tasks.documents.schemas import ProcessingOptions


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_file_mb", math.inf),
        ("max_file_mb", math.nan),
        ("max_expanded_mb", math.inf),
        ("max_compression_ratio", math.inf),
        ("max_compression_ratio", math.nan),
        ("cost_per_cpu_hour", math.nan),
        ("cost_per_cpu_hour", math.inf),
        ("cost_per_cpu_hour", -0.01),
        ("fast_threshold", math.nan),
        ("approval_timeout_s", math.nan),
    ],
)
def test_a_limit_or_price_that_is_no_finite_number_is_refused_by_name(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=rf"ProcessingOptions\.{field}=.* is invalid: use "):
        ProcessingOptions(**{field: value})


def test_the_defaults_and_a_free_run_are_accepted() -> None:
    assert ProcessingOptions().max_compression_ratio == 100.0
    assert ProcessingOptions(cost_per_cpu_hour=0.0).cost_per_cpu_hour == 0.0
