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


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_chars", -50),  # sliced each document's last 50 characters off, silently
        ("max_chars", 19),  # under the characters a document needs: every document quarantined no_text
        ("max_pages", -1),  # read every page but the last
        ("max_pages", 0),
        ("ocr_pages", -1),
        ("ocr_pages", 51),  # more pages to OCR than are read
        ("batch_size", 0),  # failed the classify task: range() arg 3 must not be zero
        ("batch_size", -1),  # failed it in torch: torch.cat(): expected a non-empty list of Tensors
        ("batch_size", 1025),  # one forward pass of every document of a chunk, padded together
    ],
)
def test_a_count_out_of_its_range_is_refused_by_name(field: str, value: int) -> None:
    with pytest.raises(ValueError, match=rf"ProcessingOptions\.{field}={value} is invalid: use "):
        ProcessingOptions(**{field: value})


def test_the_ends_of_each_count_range_are_accepted() -> None:
    opts = ProcessingOptions(max_chars=20, max_pages=1, ocr_pages=0, batch_size=1)
    assert (opts.max_chars, opts.max_pages, opts.ocr_pages, opts.batch_size) == (20, 1, 0, 1)
    assert ProcessingOptions(max_pages=3, ocr_pages=3, batch_size=1024).batch_size == 1024
