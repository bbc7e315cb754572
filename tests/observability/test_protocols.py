"""Real protocols end to end: a governed workflow run in its own process with only the standard variables set.

``OPENLINEAGE_URL`` (+ ``OPENLINEAGE_API_KEY``) points at an HTTP receiver and ``OTEL_EXPORTER_OTLP_ENDPOINT``
at an OTLP/HTTP receiver, both started here on 127.0.0.1; the OTLP bodies are decoded with opentelemetry-proto.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from flytekitplugins.aios_audit import audit_log
from flytekitplugins.aios_audit.lineage_events import parent_run_id
from flytekitplugins.aios_audit.otel import root_span_id_for, trace_id_for
from flytekitplugins.aios_core.settings import get_settings
from tests.observability.receivers import Receiver, attrs
from tests.observability.schemas import validate_event

REPO = Path(__file__).resolve().parents[2]
SOURCE_ROOTS = ("plugins/flyte-aios-core", "plugins/flytekit-aios", "connectors/flytekit-aios-connectors", ".")


def _run(env: dict[str, str], doc: Path, *extra: str) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OPENLINEAGE", "OTEL_"))}
    out = subprocess.run(
        [sys.executable, "-m", "tests.observability.run_kpi", str(doc), *extra],
        cwd=REPO,
        env={**clean, "PYTHONPATH": os.pathsep.join(str(REPO / d) for d in SOURCE_ROOTS), **env},
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert out.returncode == 0, out.stderr[-3000:]


@pytest.fixture
def doc(tmp_path: Path) -> Path:
    p = tmp_path / "batch.txt"
    p.write_text("invoice 42\n", encoding="utf-8")
    return p


@pytest.mark.slow
def test_standard_variables_only(aios_env: Path, doc: Path) -> None:
    with Receiver() as lineage, Receiver() as otlp:
        env = {
            "OPENLINEAGE_URL": lineage.url,
            "OPENLINEAGE_API_KEY": "k-123",
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_ENDPOINT": otlp.url,
            "OTEL_SERVICE_NAME": "x",
        }
        _run(env, doc, "--fail")
    records = list(audit_log(get_settings()).scan())
    key = records[0].event.execution.execution_key
    assert {r.event.execution.execution_key for r in records} == {key}
    _check_lineage(lineage, key, doc)
    _check_traces(otlp, key)
    _check_metrics(otlp)


def _check_lineage(lineage: Receiver, key: str, doc: Path) -> None:
    assert all(h.get("Authorization") == "Bearer k-123" for _, h, _ in lineage.posts)
    events = lineage.lineage()
    for e in events:
        validate_event(e)
    parent = parent_run_id(key)
    runs: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in events:
        runs[e["run"]["runId"]].append(e)
    # the execution's own run, then one run per task attempt, each START then COMPLETE / FAIL
    assert [e["eventType"] for e in runs.pop(parent)] == ["START", "FAIL"]
    by_job = {evs[0]["job"]["name"].rsplit(".", 1)[-1]: evs for evs in runs.values()}
    assert sorted(by_job) == ["act", "fail_once", "ingest", "triage"]
    for name, evs in by_job.items():
        assert [e["eventType"] for e in evs] == ["START", "FAIL" if name == "fail_once" else "COMPLETE"]
        for e in evs:
            facet = e["run"]["facets"]["parent"]
            assert facet["run"]["runId"] == facet["root"]["run"]["runId"] == parent
            assert facet["job"]["namespace"] == e["job"]["namespace"] == "flyte://local/local"
        assert evs[1]["run"]["facets"]["aios_audit"]["status"] in ("succeeded", "failed")
    assert by_job["ingest"][0]["run"]["facets"]["parent"]["job"]["name"] == "tests.observability.kpi_wf.batch"
    (ds,) = by_job["ingest"][0]["inputs"]
    assert (ds["namespace"], ds["name"]) == ("file", str(doc))
    assert ds["facets"]["dataSource"]["name"] == "file"
    assert ds["facets"]["version"]["datasetVersion"].startswith("sha256:")
    assert "bad input" not in str(by_job["fail_once"])  # the error message may quote data: only its digest


def _check_traces(otlp: Receiver, key: str) -> None:
    spans = otlp.spans()
    assert spans and {res["service.name"] for res, _ in spans} == {"x"}
    assert {s.trace_id.hex() for _, s in spans} == {f"{trace_id_for(key):032x}"}  # one trace per execution
    root = f"{root_span_id_for(key):016x}"
    (execution,) = [s for _, s in spans if s.span_id.hex() == root]
    assert execution.parent_span_id == b"" and execution.name == "tests.observability.kpi_wf.batch"
    tasks = {s.name.rsplit(".", 1)[-1]: s for _, s in spans if s.parent_span_id.hex() == root}
    assert sorted(tasks) == ["act", "fail_once", "ingest", "triage"]
    for name, s in tasks.items():
        assert s.end_time_unix_nano > s.start_time_unix_nano
        assert s.status.code == (2 if name == "fail_once" else 1)  # ERROR / OK
        a = attrs(s)
        assert a["flyte.run_name"] == key.rsplit("/", 1)[-1] and a["flyte.task_name"] == s.name
    assert [e.name for e in tasks["fail_once"].events] == ["exception"]
    children = [s for _, s in spans if s.parent_span_id == tasks["triage"].span_id]
    assert sorted(s.name for s in children) == [
        "aios.approval_decision",
        "aios.approval_request",
        "aios.policy_decision",
        "aios.quarantine",
    ]


def _points(metrics: dict[str, list[Any]], name: str) -> list[Any]:
    assert name in metrics, sorted(metrics)
    return metrics[name]


def _check_metrics(otlp: Receiver) -> None:
    m = otlp.metrics()
    durations = _points(m, "aios.task.duration")
    assert sum(p.count for p in durations) == 4
    assert {attrs(p)["status"] for p in durations} == {"ok", "error"}
    assert sum(p.as_int for p in _points(m, "aios.documents.processed")) == 4
    (q,) = _points(m, "aios.documents.quarantined")
    assert q.as_int == 1 and attrs(q)["reason"] == "encrypted_pdf"
    (review,) = _points(m, "aios.documents.review")
    assert review.as_int == 1 and attrs(review)["gate"] == "document-review"
    assert sum(p.as_int for p in _points(m, "aios.documents.acted")) == 2
    (wait,) = _points(m, "aios.approval.wait_time")
    assert wait.count == 1 and 89 < wait.sum < 200
    (deny,) = _points(m, "aios.policy.denials")
    assert attrs(deny)["policy.id"] == "payments-known-vendor"
    (cost,) = _points(m, "aios.document.cost")
    assert cost.count == 4 and abs(cost.sum - 0.008) < 1e-9
    (total,) = _points(m, "aios.workflow.cost")
    assert abs(total.as_double - 0.008) < 1e-9


@pytest.mark.slow
def test_disabled_sends_nothing(aios_env: Path, doc: Path) -> None:
    with Receiver() as lineage:
        _run({"OPENLINEAGE_URL": lineage.url, "OPENLINEAGE_DISABLED": "true"}, doc)
    assert lineage.posts == []
    assert not (aios_env / "lineage").exists()  # nor the pack's own file default


@pytest.mark.slow
def test_openlineage_yml_composite_transport(aios_env: Path, doc: Path, tmp_path: Path) -> None:
    """openlineage.yml (via OPENLINEAGE_CONFIG): a composite of http and openlineage-python's file transport."""
    out = tmp_path / "ol-file.jsonl"
    with Receiver() as lineage:
        cfg = tmp_path / "openlineage.yml"
        cfg.write_text(
            "transport:\n  type: composite\n  continue_on_failure: true\n  transports:\n"
            f"    web:\n      type: http\n      url: {lineage.url}\n"
            f"    disk:\n      type: file\n      log_file_path: {out}\n      append: true\n",
            encoding="utf-8",
        )
        _run({"OPENLINEAGE_CONFIG": str(cfg)}, doc)
    events = lineage.lineage()
    assert len(events) == 2 + 2 * 3  # the execution's run and three task attempts, START and COMPLETE each
    lines = [ln for ln in out.read_text(encoding="utf-8").splitlines() if ln.strip()]
    assert len(lines) == len(events)
