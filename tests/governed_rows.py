"""Action rows with a real policy decision behind them, made through the pipeline's own governance code.

The acting point (``aios_approvals.acting``) posts only rows that a policy decision in the audit trail stands
behind, so tests that post rows make them the way the pipeline does: the classify step's seal of the rows
(``tasks.documents.seals``), ``decide_many`` (real Cedar policies, real audit records, real approval requests) and
then ``report.action_rows``.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from flytekitplugins.aios_core.settings import get_settings

PRINCIPAL = "service:document-pipeline"


def decided_docs(
    n: int, tag: str = "", amount: float = 100.0, label: str = "invoice", confidence: float = 0.99, route: str = "cheap"
) -> list[dict[str, Any]]:
    """``n`` parsed invoices, decided by the real policy set (amounts above 10,000 need a sign-off)."""
    from tasks.documents import seals
    from tasks.documents.governance import decide_many

    docs = [
        {
            "digest": f"sha256:{tag}{i:0{64 - len(tag)}d}",
            "label": label,
            "amount": amount + i,
            "currency": "EUR",
            "confidence": confidence,
            "personal": False,
            "route": route,
            "injection": False,
            "status": "ok",
            "name": f"{tag}-{i}.txt",
            "doc_id": f"{tag}-{i}",
            "text_digest": f"sha256:{i:064d}",
        }
        for i in range(n)
    ]
    rid = seals.seal(docs, seals.CLASSIFIED, PRINCIPAL, get_settings())  # as classify seals what it classified
    for doc in docs:
        doc["sealed_by"] = rid
    fields = ("label", "amount", "currency")
    for doc, d in zip(docs, decide_many(docs, PRINCIPAL, 3600.0, get_settings()), strict=True):
        doc.update(action=d.action, effect=d.effect, gate=d.gate, request_id=d.request_id)
        doc.update(policy_record=d.policy_record, reason=d.reason)
        doc["decision_digest"] = d.digest(doc["digest"], {k: doc[k] for k in fields})
    return docs


def action_rows(docs: list[dict[str, Any]], approved: set[str] | None = None) -> list[dict[str, Any]]:
    """The rows the pipeline would post for ``docs`` (auto-allowed, or those whose request is in ``approved``)."""
    from tasks.documents import report

    frame = pd.DataFrame(docs)
    rows: list[dict[str, Any]] = report.action_rows(frame, PRINCIPAL, approved).to_dict(orient="records")
    return rows


def governed_rows(n: int, tag: str = "", amount: float = 100.0) -> list[dict[str, Any]]:
    """``n`` auto-allowed invoice payments (amount under the sign-off threshold) ready to post."""
    return action_rows(decided_docs(n, tag, amount))
