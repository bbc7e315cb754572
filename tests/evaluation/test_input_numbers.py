"""Numbers that decide (drift thresholds, the McNemar test's alpha) and numbers that are reported (the CPU price) or
select data (the retraining rows' rating distance) are refused by name when they are no number that means anything.
Each comparison was written as what fails (`x <= 0`), so NaN passed it: a NaN drift threshold made every comparison
false and no feature ever drifted, whatever the data; a NaN alpha made no difference significant; a NaN
min_abs_score kept no training row ("asked for 2600 rows but the data has 0")."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from tasks.drift.effect_size import Thresholds


@pytest.mark.parametrize(
    ("kwargs", "want"),
    [
        ({"psi": math.nan}, "drift threshold psi=nan: use a finite number above 0"),
        ({"psi": -0.1}, "drift threshold psi=-0.1"),
        ({"wasserstein": math.inf}, "drift threshold wasserstein=inf"),
        ({"js": 1.5}, "drift threshold js=1.5: use a number above 0 and at most 1"),
        ({"alpha": 0.0}, "drift threshold alpha=0.0: use a significance level"),
        ({"alpha": math.nan}, "drift threshold alpha=nan"),
    ],
)
def test_a_drift_threshold_that_means_nothing_is_refused(kwargs: dict[str, float], want: str) -> None:
    with pytest.raises(ValueError, match=want):
        Thresholds(**kwargs)


def test_the_default_and_edge_thresholds_are_accepted() -> None:
    assert Thresholds() == Thresholds(psi=0.03, js=0.1, wasserstein=0.2, alpha=0.01)
    assert Thresholds(js=1.0, alpha=1.0).js == 1.0


@pytest.mark.parametrize(
    ("kwargs", "want"),
    [
        ({"alpha": math.nan}, "alpha=nan: use a significance level above 0 and at most the pack's 0.05"),
        ({"alpha": 1.0}, "alpha=1.0"),
        # a launch input, looser than the pack's level: the trail said `significant` for p = 0.75 at alpha=0.999
        ({"alpha": 0.999}, r"alpha=0.999: .* \(a looser level calls more differences significant"),
        ({"alpha": 0.0500001}, "alpha=0.0500001"),
        ({"cpu_price_per_hour": math.nan}, "cpu_price_per_hour=nan: use a price of 0 or more"),
        ({"cpu_price_per_hour": -1.0}, "cpu_price_per_hour=-1.0"),
        ({"latency_sample": 0}, "latency_sample=0: time at least 1 document"),
    ],
)
def test_the_evaluation_refuses_an_alpha_price_or_sample_that_means_nothing(kwargs: dict[str, Any], want: str) -> None:
    from tasks.evaluation.tasks import evaluate_pair

    args: dict[str, Any] = {"alpha": 0.05, "latency_sample": 64, "cpu_price_per_hour": 0.048, **kwargs}
    with pytest.raises(ValueError, match=want):  # checked before anything is loaded
        evaluate_pair.task_function(None, None, None, "vader-tweets", "", **args)


def test_the_evidence_calls_a_difference_significant_only_at_the_packs_level(tmp_path: Path) -> None:
    """An evaluation record saying ``significant`` for p = 0.75 (made at alpha=0.999 before the level was bounded) is
    not significant evidence: the catalog re-derives it from the recorded p-value at the pack's level."""
    from flytekitplugins.aios_audit import AuditEvent
    from flytekitplugins.aios_audit.stores import open_store
    from flytekitplugins.aios_catalog.evidence import EVALUATION_ALPHA, recorded_evaluation

    store = open_store(f"sqlite:///{tmp_path}/a.db")
    model = {"digest": "sha256:" + "1" * 64, "accuracy": 0.8, "model": "m:2"}
    comparison = {"accuracy_delta": 0.005, "macro_f1_delta": 0.0, "significant": True, "mcnemar_p": 0.7539}

    def recorded(comp: dict[str, Any]) -> Any:
        rec = store.append(
            AuditEvent(
                kind="evaluation", actor="service:retraining", status="evaluated", subject="m:2",
                inputs={"test": "sha256:" + "2" * 64}, attributes={
                    "candidate": model, "champion": {**model, "model": "m:1"}, "comparison": comp,
                    "drift_passed": False,
                },
            )
        )  # fmt: skip
        return recorded_evaluation(store, rec.record_id).evidence["significant"]

    assert EVALUATION_ALPHA == 0.05
    assert recorded(comparison) is False  # was True: copied from the record
    assert recorded({**comparison, "mcnemar_p": 0.01}) is True
    assert recorded({**comparison, "mcnemar_p": 0.01, "significant": False}) is False  # a stricter level's answer


@pytest.mark.parametrize("value", [math.nan, -0.5, math.inf])
def test_retraining_refuses_a_rating_distance_that_means_nothing(value: float) -> None:
    from tasks.training.data import prepare_data

    with pytest.raises(ValueError, match=rf"min_abs_score={value!r}: use a rating distance of 0 or more"):
        prepare_data.task_function("tweets", 10, 10, 0, False, value)


@pytest.mark.slow
def test_held_out_rows_that_cannot_be_scored_are_refused_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty set raised TypeError, an unknown or NaN label ValueError from list.index, a missing ``label``
    column KeyError; a one-row set was evaluated."""
    import pandas as pd

    from tasks.evaluation.tasks import evaluate_pair
    from workflows.evaluation import vader_models

    monkeypatch.setenv("AIOS_PRINCIPAL", "service:retraining")
    s = vader_models(n_weak=30, n_strong=60, n_test=40)
    test: pd.DataFrame = s.test
    args: dict[str, Any] = {"dataset": "vader", "drift_record": "", "alpha": 0.05, "latency_sample": 4}
    args["cpu_price_per_hour"] = 0.048
    cases = [
        (test.head(0), "0 held-out row"),
        (test.head(1), "1 held-out row"),
        (test.assign(label=["positive"] * (len(test) - 1) + ["meh"]), r"1 held-out row\(s\) have a label .*'meh'"),
        (test.assign(label=[math.nan] + ["positive"] * (len(test) - 1)), "row 0: nan"),
        (test.drop(columns=["label"]), r"lack column\(s\) \['label'\]"),
    ]
    for rows, want in cases:
        with pytest.raises(ValueError, match=want):
            evaluate_pair.task_function(s.strong, s.weak, rows, **args)
