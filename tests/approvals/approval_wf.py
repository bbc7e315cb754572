"""A governed payment workflow used by the approval tests (run in-process and with ``pyflyte run``).

Invoices up to 10,000 are paid straight away; larger ones need ``payment-signoff`` approval. The
payments log under the state dir is the "gated action": tests read it to prove what ran, and how often.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from flytekit import task, workflow

from flytekitplugins.aios_approvals import ApprovalOutcome, approval_gate, open_request
from flytekitplugins.aios_approvals.evaluate import Env
from flytekitplugins.aios_core.digest import digest_value
from flytekitplugins.aios_core.settings import get_settings

LIMIT = 10_000


def _pay(what: str) -> None:
    with open(Path(get_settings().state_dir) / "payments.log", "a", encoding="utf-8") as f:
        f.write(what + "\n")


@task
def request_signoffs(amounts: list[int], timeout_s: float) -> list[str]:
    """Open a payment-signoff request for every invoice over the limit.

    Args:
        amounts: invoice amounts.
        timeout_s: seconds each request stays open.
    """
    ids = []
    for i, amount in enumerate(amounts):
        if amount > LIMIT:
            doc = {"invoice": i, "amount": amount}
            ids.append(
                open_request(
                    gate="payment-signoff",
                    risk="medium",
                    subject=digest_value(doc),
                    summary={"invoice": i, "amount": amount, "currency": "EUR"},
                    evidence={"document": digest_value(doc)},
                    requester="service:document-pipeline",
                    reason=f"policy payment-over-10k: {amount} > {LIMIT}",
                    timeout_s=timeout_s,
                    env=Env.load(get_settings()),
                )
            )
    return ids


@task
def pay_small(amounts: list[int]) -> int:
    """Pay the invoices that need no approval.

    Args:
        amounts: invoice amounts.
    """
    small = [a for a in amounts if a <= LIMIT]
    for a in small:
        _pay(f"auto {a}")
    return len(small)


@task
def pay_approved(outcomes: list[ApprovalOutcome]) -> int:
    """Pay exactly the invoices whose approval was verified.

    Args:
        outcomes: verified outcomes from the approval gate.
    """
    paid = 0
    for o in outcomes:
        if o.approved:
            _pay(f"approved {o.request_id} {o.subject}")
            paid += 1
    return paid


@workflow
def payment_wf(amounts: list[int] = [500, 12500], timeout_s: float = 600.0) -> tuple[int, int]:
    """Pay small invoices at once; pay large ones only after verified sign-off.

    Args:
        amounts: invoice amounts.
        timeout_s: how long each approval request stays open.
    """
    ids = request_signoffs(amounts=amounts, timeout_s=timeout_s)
    auto = pay_small(amounts=amounts)
    outcomes = approval_gate("payment-signoff", request_ids=ids, timeout=dt.timedelta(minutes=10))
    return auto, pay_approved(outcomes=outcomes)


@workflow
def short_gate_wf(amounts: list[int] = [12500], timeout_s: float = 600.0) -> int:
    """Like payment_wf, but the gate itself times out after 2 seconds.

    Args:
        amounts: invoice amounts.
        timeout_s: how long each approval request stays open.
    """
    ids = request_signoffs(amounts=amounts, timeout_s=timeout_s)
    outcomes = approval_gate("payment-signoff", request_ids=ids, timeout=dt.timedelta(seconds=2))
    return pay_approved(outcomes=outcomes)
