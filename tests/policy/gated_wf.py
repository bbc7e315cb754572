"""A small workflow with a policy-gated payment, run with ``pyflyte run`` by the tests.

The task writes a marker file (the "action") only when the policy lets it run.
"""

from __future__ import annotations

import os
from pathlib import Path

from flytekit import task, workflow

from flytekitplugins.aios_policy import policy_gate


@task
@policy_gate(
    action="act_on_document",
    resource=("Document", "doc_id"),
    context=lambda **i: {"amount": i["amount"], "currency": i["currency"], "data_class": "internal",
                         "doc_type": "invoice", "confidence": 0.95},
)  # fmt: skip
def pay_invoice(doc_id: str, amount: float, currency: str) -> str:
    """Pay an invoice: writes ``<AIOS_STATE_DIR>/paid-<doc_id>`` (the action the gate protects).

    Args:
        doc_id: content digest of the invoice.
        amount: amount to pay.
        currency: ISO currency code.
    """
    Path(os.environ["AIOS_STATE_DIR"], f"paid-{doc_id}").write_text(f"{amount} {currency}")
    return f"paid {amount} {currency}"


@workflow
def pay_wf(doc_id: str = "inv-1", amount: float = 100.0, currency: str = "EUR") -> str:
    """Pay one invoice through the policy gate.

    Args:
        doc_id: content digest of the invoice.
        amount: amount to pay.
        currency: ISO currency code.
    """
    return pay_invoice(doc_id=doc_id, amount=amount, currency=currency)
