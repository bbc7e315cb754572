"""Cost per document and per workflow: the document pipeline's summarize task records them as metrics."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from flytekit import workflow

from flytekitplugins.aios_audit import metrics
from flytekitplugins.aios_core.settings import reset_settings
from tasks.documents import stages
from tasks.documents.schemas import BatchSummary, ProcessingOptions


def _decided() -> pd.DataFrame:
    """Three documents: two classified (1 s and 2 s of CPU), one quarantined (its CPU is not measured)."""
    rows = []
    for i, (status, cpu) in enumerate([("ok", 1.0), ("ok", 2.0), ("quarantine", 0.5)]):
        rows.append(
            {
                "doc_id": f"d{i}", "name": f"doc{i}.txt", "digest": f"sha256:{i:064x}", "status": status,
                "reason": "encrypted_pdf" if status == "quarantine" else "", "fmt": "txt", "ocr": False, "pii": 0,
                "secrets": 0, "personal": False, "injection": False, "latency_ms": 10.0, "cpu_s": cpu,
                "label": "invoice", "confidence": 0.9, "route": "fast", "cached": False, "amount": 12.5,
                "currency": "EUR", "parties": "", "dates": "", "action": "", "effect": "none", "gate": "",
                "request_id": "", "policy_record": "", "decision_digest": f"sha256:{i:064x}",
            }
        )  # fmt: skip
    return pd.DataFrame(rows)


@workflow
def costed(decided: pd.DataFrame, source: str, options: ProcessingOptions) -> BatchSummary:
    """The summarize step alone, inside a workflow (the cost carries the workflow's name).

    Args:
        decided: decided documents.
        source: the batch source.
        options: batch options.
    """
    summary, _, _ = stages.summarize(
        decided=decided, payment=[], review=[], posted=[0, 0, 0, 0, 0, 0], source=source, options=options
    )
    return summary


def _points(name: str) -> list[Any]:
    data = metrics.memory_reader().get_metrics_data()
    return [
        p
        for rm in (data.resource_metrics if data else [])
        for sm in rm.scope_metrics
        for m in sm.metrics
        if m.name == name
        for p in m.data.data_points
    ]


@pytest.mark.parametrize("in_workflow", [False, True])
def test_summarize_records_cost_per_document_and_workflow(
    aios_env: Path, monkeypatch: pytest.MonkeyPatch, in_workflow: bool
) -> None:
    monkeypatch.setenv("AIOS_OTEL_EXPORTER", "memory")
    monkeypatch.setenv("AIOS_LINEAGE_URL", "none")
    monkeypatch.setattr(metrics, "_provider", {})  # a meter provider (and in-memory reader) of this test only
    monkeypatch.setattr(metrics, "_memory", None)
    monkeypatch.setattr(metrics, "_instruments", {})
    reset_settings()
    options = ProcessingOptions(cost_per_cpu_hour=3.6, progress="off")  # 3.6 USD/h = 0.001 USD per CPU second
    source = str(aios_env)
    if in_workflow:
        summary = costed(decided=_decided(), source=source, options=options)
        name = "tests.observability.test_cost.costed"
    else:
        summary, _, _ = stages.summarize(
            decided=_decided(), payment=[], review=[], posted=[0] * 6, source=source, options=options
        )
        name = "flyte.local_tasks"  # a task called on its own (observe.ADHOC_WORKFLOW)
    # cost model: measured CPU seconds of the processed documents (1 + 2) x price, over all 3 documents in
    assert summary.documents_in == 3 and summary.cpu_seconds == pytest.approx(3.0)
    assert summary.cost_per_document_usd == pytest.approx(0.001)
    (per_doc,) = _points("aios.document.cost")
    assert per_doc.count == 3 and per_doc.sum == pytest.approx(0.003)
    assert dict(per_doc.attributes) == {"flyte.workflow_name": name}
    (total,) = _points("aios.workflow.cost")
    assert total.value == pytest.approx(0.003) and dict(total.attributes) == {"flyte.workflow_name": name}


def test_no_cost_metric_when_metrics_are_off(aios_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIOS_OTEL_EXPORTER", "none")
    monkeypatch.delenv("OTEL_METRICS_EXPORTER", raising=False)
    monkeypatch.setattr(metrics, "_provider", {})
    monkeypatch.setattr(metrics, "_memory", None)
    reset_settings()
    from flytekitplugins.aios_core.settings import get_settings

    metrics.record_cost(0.5, 2, "wf", get_settings())  # nothing to record to, and nothing fails
    assert metrics._provider == {}
