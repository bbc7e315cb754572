"""Gated tasks used by the plugin tests (tasks must live in files for flytekit)."""

from __future__ import annotations

import os
from pathlib import Path

from flytekit import task

from flytekitplugins.aios_policy import Check, PolicyGate, policy_gate


def _marker(name: str) -> Path:
    return Path(os.environ["AIOS_STATE_DIR"]) / f"{name}.acted"


def _doc_context(**i: object) -> dict[str, object]:
    keys = ("amount", "currency", "data_class", "doc_type", "confidence")
    return {k: i[k] for k in keys}


@task
@policy_gate(action="act_on_document", resource=("Document", "doc_id"), context=_doc_context)
def pay(doc_id: str, amount: float, currency: str, data_class: str, doc_type: str, confidence: float) -> str:
    """Pay an invoice (writes a marker file: the action)."""
    _marker(f"pay-{doc_id}").write_text(str(amount))
    return f"paid {amount} {currency}"


@task(
    task_config=PolicyGate(
        action="use_model",
        resource=lambda **i: {"type": "Model", "id": i["model_id"], "approved_data_classes": ["public", "internal"]},
        context={"data_class": "data_class"},
    )
)
def classify(model_id: str, data_class: str) -> str:
    """Send a document to a model (marker file = the model saw the data)."""
    _marker(f"classify-{model_id}-{data_class}").write_text("seen")
    return "label"


@task
@policy_gate(
    post=Check(
        action="promote_model",
        resource=lambda result, **i: {"type": "Model", "id": i["model_id"]},
        context=lambda result, **i: {"accuracy_delta": result, "drift_passed": i["drift_passed"]},
    )
)
def evaluate_challenger(model_id: str, accuracy_delta: float, drift_passed: bool) -> float:
    """Evaluate a challenger; the post-condition gates its promotion on the result."""
    _marker(f"evaluated-{model_id}").write_text("done")
    return accuracy_delta
