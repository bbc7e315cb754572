"""Great Expectations suites catch real defects injected into real data, and the check fails loudly."""

from __future__ import annotations

import numpy as np
import pytest

from flytekitplugins.aios_audit import audit_log
from flytekitplugins.aios_core.settings import get_settings
from tasks.drift.data import load_flights
from tasks.drift.quality import validate


@pytest.fixture(scope="module")
def flights():
    return load_flights((1, 2), n=5000, seed=0)


def test_clean_real_data_passes(flights) -> None:
    report = validate(flights, "flights", "reference", get_settings())
    assert report.success and report.evaluated >= 30 and report.failed == []


def test_injected_defects_are_each_named(flights) -> None:
    """Nulls, out-of-range values, a schema change and a jump in missing delays, in one real batch."""
    bad = flights.copy()
    bad.loc[bad.index[:250], "distance"] = np.nan
    bad.loc[bad.index[300:310], "month"] = 13
    bad.loc[bad.sample(frac=0.2, random_state=0).index, "dep_delay"] = np.nan  # far above real cancellations
    bad = bad.rename(columns={"dest": "destination"})
    report = validate(bad, "flights", "current", get_settings())
    assert not report.success
    for expected in (
        "expect_column_values_to_not_be_null(distance): 250 unexpected",
        "expect_column_values_to_be_between(month): 10 unexpected",
        "expect_table_columns_to_match_set",
        "expect_column_values_to_not_be_null(dep_delay)",
        "expect_column_values_to_not_be_null(dest)",
    ):
        assert any(f.startswith(expected) for f in report.failed), (expected, report.failed)
    assert len(report.failed) == 5, report.failed  # and nothing else is blamed


def test_drift_workflow_fails_loudly_and_records_it(flights) -> None:
    from workflows.drift import check_drift

    bad = flights.copy()
    bad.loc[bad.index[:5], "hour"] = 42
    with pytest.raises(Exception, match=r"expect_column_values_to_be_between\(hour\)") as info:
        check_drift(reference=flights, current=bad)
    assert "data quality check failed" in str(info.value)
    recs = [r for r in audit_log(get_settings()).scan() if r.event.kind == "drift"]
    assert [r.event.status for r in recs] == ["quality_failed"]
    assert "current" in recs[0].event.attributes["failed"]


def test_unknown_suite_is_an_error(flights) -> None:
    with pytest.raises(FileNotFoundError, match="known suites"):
        validate(flights, "no-such-suite", "reference", get_settings())
