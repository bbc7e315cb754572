"""Decimal attributes reach Cedar exactly or not at all: no rounding across a policy threshold.

Cedar's decimal holds 4 fractional digits. The pack used to round half-to-even, so 10000.00005 became
10000.0000 and skipped the ``amount > 10000`` sign-off, and -0.00004 became 0.0000 and escaped the
``amount < 0`` forbid. A value with more than 4 decimal places is now refused with a reason (deny).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from flytekitplugins.aios_core.errors import GovernanceDenied
from flytekitplugins.aios_core.settings import get_settings
from flytekitplugins.aios_policy import enforce, evaluate
from flytekitplugins.aios_policy.cedar_types import RequestError, to_decimal_str

from ..policy.conftest import POLICIES, doc_request, policy_records

TOO_PRECISE = "more than 4 decimal places"


def _decide(**context: Any) -> Any:
    return evaluate(doc_request(**context), policy_dir=POLICIES, settings=get_settings())


@pytest.mark.parametrize(
    ("amount", "reason"),
    [
        (10000.00005, TOO_PRECISE),  # was rounded to 10000.0000: no sign-off
        (9999.99999, TOO_PRECISE),  # was rounded to 10000.0000
        (50000.00005, TOO_PRECISE),  # was rounded to 50000.0000: medium instead of high risk
        (-0.00004, TOO_PRECISE),  # was rounded to 0.0000: escaped the negative-amount forbid
        (Decimal("10000.00005"), TOO_PRECISE),
        (1e300, "out of range"),
        (float("nan"), "finite"),
        (float("inf"), "finite"),
        ("10000.00005", "must be a number"),
        ("10000", "must be a number"),
        (True, "must be a number"),
    ],
    ids=repr,
)
def test_inexact_or_invalid_amounts_are_denied_with_a_reason(amount: Any, reason: str) -> None:
    d = _decide(amount=amount)
    assert d.effect == "deny"
    assert d.approval is None
    assert any(reason in r and "context.amount" in r for r in d.reasons), d.reasons


@pytest.mark.parametrize(
    ("amount", "effect", "risk"),
    [
        (10000.0001, "require_approval", "medium"),
        (Decimal("10000.00010"), "require_approval", "medium"),
        (50000.0001, "require_approval", "high"),
        (10000.0, "allow", None),
        (9999.9999, "allow", None),
        (10000, "allow", None),
        (-0.0, "allow", None),  # zero, not negative
        (0, "allow", None),
    ],
    ids=repr,
)
def test_exact_amounts_are_compared_exactly(amount: Any, effect: str, risk: str | None) -> None:
    d = _decide(amount=amount)
    assert d.effect == effect, d.reasons
    assert (d.approval.risk if d.approval else None) == risk


def test_negative_amount_with_four_places_is_still_forbidden() -> None:
    d = _decide(amount=-0.0001)
    assert d.effect == "deny" and "doc-amount-nonnegative" in d.policy_ids


@pytest.mark.parametrize("confidence", [0.59995, 0.60004, 1.00004, -0.00004])
def test_other_decimal_attributes_are_exact_too(confidence: float) -> None:
    d = _decide(confidence=confidence)
    assert d.effect == "deny" and any("context.confidence" in r and TOO_PRECISE in r for r in d.reasons)


def test_inexact_accuracy_delta_is_denied() -> None:
    req = {
        "principal": "service:retraining",
        "action": "promote_model",
        "resource": {"type": "Model", "id": "m"},
        "context": {"accuracy_delta": 0.00004, "drift_passed": True},
    }
    d = evaluate(req, policy_dir=POLICIES, settings=get_settings())
    assert d.effect == "deny" and any("context.accuracy_delta" in r and TOO_PRECISE in r for r in d.reasons)


def test_enforce_denies_and_audits_the_inexact_amount() -> None:
    with pytest.raises(GovernanceDenied) as exc:
        enforce(doc_request(amount=10000.00005), policy_dir=POLICIES, settings=get_settings())
    assert exc.value.reason_code == "policy_deny" and TOO_PRECISE in str(exc.value)
    rec = policy_records()[-1]
    assert rec.event.status == "deny" and rec.record_id == exc.value.record_id


@pytest.mark.parametrize(
    ("value", "literal"),
    [(10000.0001, "10000.0001"), (-0.0, "0.0000"), (Decimal("-0.00000"), "0.0000"), (0.6, "0.6000"), (-1, "-1.0000")],
)
def test_cedar_literal_is_the_exact_value(value: Any, literal: str) -> None:
    assert to_decimal_str(value, "x") == literal


def test_refusal_names_the_attribute_and_the_fix() -> None:
    with pytest.raises(RequestError, match=r"context\.amount = 10000\.00005 .*round it to 4 places"):
        to_decimal_str(10000.00005, "context.amount")
