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


def test_a_decision_the_policy_made_on_another_amount_is_not_posted(sor: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A contract decided before the fix above (the policy saw amount 0, the record sealed 95,000 to post) was still
    posted after it without any sign-off: the fix changed no policy file, so the acting point's ``policy_changed``
    did not refuse it, and it never compared the amount the policy saw with the amount posted (re-review R8 of
    2026-12-07, F1; attacker: launch rights, handing ``post_document_actions`` the rows of such a decision)."""
    import sqlite3

    import pandas as pd

    from flytekitplugins.aios_audit import audit_log
    from flytekitplugins.aios_connectors.system_of_record import SystemOfRecordConfig, SystemOfRecordTask
    from flytekitplugins.aios_core.settings import get_settings
    from tasks.documents import governance

    fixed = governance.policy_context

    def as_before(label: str, confidence: float, amount: float | None, currency: str, personal: bool) -> dict:
        ctx = fixed(label, confidence, amount, currency, personal)
        return ctx if label in governance.PAYMENT_ACTIONS else {**ctx, "amount": 0.0, "currency": "EUR"}

    monkeypatch.setattr(governance, "policy_context", as_before)
    (old,) = decided_docs(1, tag="preup", amount=95_000.0, label="contract")
    monkeypatch.setattr(governance, "policy_context", fixed)  # the upgrade
    assert (old["action"], old["effect"], old["amount"]) == ("register_contract", "allow", 95_000.0)
    rows = action_rows([old])
    assert len(rows) == 1  # the pipeline would post it: the policy allowed it on amount 0
    post = SystemOfRecordTask(name="post_document_actions", config=SystemOfRecordConfig(table="document_actions"))
    out = post(actions=pd.DataFrame(rows))
    assert (out.posted, out.refused) == (0, 1)
    refused = [r.event for r in audit_log(get_settings()).scan() if r.event.kind == "action_refused"]
    assert [e.status for e in refused] == ["policy_record_mismatch"]
    assert "another amount or currency" in str(refused[0].attributes)
    if sor.exists():
        with sqlite3.connect(sor) as conn:
            assert conn.execute("SELECT count(*) FROM document_actions").fetchone()[0] == 0
