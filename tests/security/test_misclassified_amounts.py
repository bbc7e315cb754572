"""The sign-off rules apply to every document carrying an amount, whatever its label (review of 2026-12-07, R1 F3).

Attacker: whoever writes a document, or any misclassification. docs/policy.md says the payment sign-off "applies to
every document carrying an amount, so misclassifying an invoice cannot avoid it", but the pipeline sent the policy
``amount = 0`` for every label but invoice and claim, while the decision record sealed the document's real amount to be
posted: a 95,000 EUR invoice classified as a contract (or a letter) was allowed without any sign-off and posted to the
system of record as ``register_contract`` with 95,000 EUR. Now the policy sees the amount the document carries.
Real Cedar policies, real audit records and approval requests, through the pipeline's own ``decide_many``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.governed_rows import action_rows, decided_docs


@pytest.mark.parametrize(
    ("label", "action"), [("contract", "register_contract"), ("correspondence", "file_correspondence")]
)
def test_a_large_amount_needs_the_sign_off_whatever_the_label(aios_env: Path, label: str, action: str) -> None:
    (doc,) = decided_docs(1, tag=label[:4], amount=95_000.0, label=label)
    assert (doc["action"], doc["effect"], doc["gate"]) == (action, "require_approval", "payment-signoff"), doc
    assert action_rows([doc]) == []  # nothing is posted before the sign-off (it was, with its 95,000 EUR)


def test_a_small_amount_and_no_amount_stay_allowed(aios_env: Path) -> None:
    (small,) = decided_docs(1, tag="small", amount=5_000.0, label="contract")
    assert (small["effect"], small["gate"]) == ("allow", ""), small
    (row,) = action_rows([small])
    assert row["action"] == "register_contract" and row["amount"] == 5_000.0
    from flytekitplugins.aios_core.settings import get_settings
    from flytekitplugins.aios_policy import evaluate
    from tasks.documents.governance import _policy_request

    letter = {"label": "correspondence", "confidence": 0.97, "amount": None, "currency": None, "personal": False}
    built = _policy_request({**letter, "digest": "sha256:letter"}, "service:document-pipeline")
    assert built is not None and built[1]["amount"] == 0.0 and built[1]["currency"] == "EUR"
    assert evaluate(built[2], settings=get_settings()).effect == "allow"
