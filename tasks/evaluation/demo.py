"""One-command reproduction of the evaluation on real VADER text: ``python -m workflows.evaluation``.

Trains and registers a weak and a strong MiniLM head on tweets, checks the held-out rows for drift
against the training rows, evaluates strong (candidate) vs weak (reference) and prints the figures and the
policy's decision. Acts as ``$AIOS_PRINCIPAL`` (default ``service:retraining``, the catalog writer).
"""

from __future__ import annotations

import json
import os


def main() -> None:
    """Run the demo and print a JSON summary (figures, decision, audit record ids)."""
    os.environ.setdefault("AIOS_PRINCIPAL", "service:retraining")
    from workflows.drift import check_drift
    from workflows.evaluation import evaluate_model, vader_models

    splits = vader_models()
    drift = check_drift(
        reference=splits.train,
        current=splits.test,
        dataset="vader-tweets",
        suite="vader_text",
        columns=["score"],
        text_column="text",
    )
    report = evaluate_model(
        candidate=splits.strong, champion=splits.weak, test=splits.test, drift_record=drift.audit_record_id
    )
    summary = {
        "candidate": report.candidate.model_dump(exclude={"reliability", "per_class"}),
        "champion": report.champion.model_dump(exclude={"reliability", "per_class"}),
        "comparison": report.comparison.model_dump(),
        "drift_passed": report.drift_passed,
        "decision": report.decision,
        "reasons": report.reasons,
        "approval_request_id": report.approval_request_id,
        "evaluation_record": report.audit_record_id,
    }
    print(json.dumps(summary, indent=2))
    if report.decision == "needs_approval":
        print(
            f"\nApprove request {report.approval_request_id} with the approvals CLI as a model-approver (user:frank),"
            f" then run workflows/evaluation.py promote_after_approval --evaluation_record {report.audit_record_id}"
            f" --approval_request_id {report.approval_request_id}"
        )
