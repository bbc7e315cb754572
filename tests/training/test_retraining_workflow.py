"""End to end: the retraining workflow fine-tunes MiniLM with 2 DDP workers (gloo) on real VADER text plus
review corrections, beats its start model on held-out rows, registers a candidate with full lineage, and
is promoted only after the policy sends it to approval and an authorized approver (another process) approves.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from flytekitplugins.aios_core.settings import get_settings

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _corrections(state: Path) -> None:
    from tasks.ml.feedback import append_correction, feedback_path

    append_correction(
        "What a dreary, joyless slog of a film.",
        "negative",
        "user:alice",
        settings=get_settings(),
        source="doc:1",
    )
    append_correction(
        "A warm, funny and quietly moving story.",
        "positive",
        "user:alice",
        settings=get_settings(),
        source="doc:2",
    )
    with open(feedback_path(get_settings()), "a", encoding="utf-8") as f:  # edited after review: must be refused
        f.write('{"text_digest": "sha256:' + "0" * 64 + '", "text": "x", "label": "positive", "reviewer": "u"}\n')


def _approver(*principals: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "AIOS_PRINCIPAL"}
    env["PYTHONPATH"] = str(REPO)
    cmd = [sys.executable, str(REPO / "tests/training/approver.py"), "approve", *principals]
    return subprocess.Popen(cmd, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_retrain_promotes_only_after_policy_and_authorized_approval(aios_env: Path, monkeypatch) -> None:
    from flytekitplugins.aios_audit import audit_log
    from flytekitplugins.aios_catalog import catalog
    from flytekitplugins.aios_core.settings import reset_settings
    from tasks.ml.classifier import TextClassifier, artifact_digest
    from tasks.training.config import TrainConfig
    from workflows.retraining import retrain

    monkeypatch.setenv("AIOS_PRINCIPAL", "service:retraining")
    reset_settings()
    _corrections(aios_env)
    approver = _approver("user:erin", "user:frank")  # erin is an ML engineer, not a model approver
    cfg = TrainConfig(max_steps=48, batch_size=8, lr=1e-4, max_length=48, checkpoint_every=16)
    try:
        summary = retrain(n_train=384, n_test=500, config=cfg, gpu=False, accelerator="")
        assert summary.decision == "promoted", (summary.reasons, summary.accuracy_delta)
        out, _ = approver.communicate(timeout=60)
    finally:
        approver.kill()

    # the approval: refused for erin, accepted for frank; nothing was promoted before it
    lines = [ln for ln in out.splitlines() if ln.startswith(("champion_before", "apr-"))]
    assert lines[0] == "champion_before=none", out
    assert lines[1].split()[1:] == ["role", "False"], out
    assert lines[2].endswith("True"), out
    assert summary.accuracy_delta > 0, summary  # fine-tuned beats the frozen-embedding start model

    entry = catalog(get_settings()).champion("vader-sentiment")
    assert entry is not None and entry.model_id == summary.model_id and entry.digest == summary.digest
    folder = Path(entry.artifact_uri)
    assert artifact_digest(folder) == entry.digest
    clf = TextClassifier.load(folder)
    assert clf.card.kind == "minilm-finetuned" and (folder / "tokenizer.json").is_file()
    assert clf.card.labels == ["negative", "positive"]

    log = audit_log(get_settings())
    training = log.get(summary.training_record)
    assert training is not None and training.event.kind == "training"
    ev = training.event
    assert ev.outputs["model"] == entry.digest and ev.inputs["feedback"] in entry.training_data_digests
    assert ev.attributes["data"]["n_feedback"] == 2 and ev.attributes["feedback_rejected_lines"] == 1
    assert ev.attributes["result"]["world_size"] == 2 and len(ev.attributes["losses"]) == 48
    # on demand: the split prepare_data sealed and the training step's seal of exactly these bytes, nothing else
    split, trained = [log.get(p) for p in ev.parents]
    assert split is not None and split.event.kind == "dataset" and split.event.outputs["train"] == ev.inputs["train"]
    assert trained is not None and trained.event.kind == "trained" and trained.event.outputs["model"] == entry.digest
    assert trained.event.inputs["train"] == ev.inputs["train"]
    # the drift check that let it through compared the rows the catalog pins as its training data with the test rows
    (evaluation,) = [r for r in log.scan(1) if r.event.kind == "evaluation"]
    (drift,) = [log.get(p) for p in evaluation.event.parents]
    assert drift is not None and drift.event.status == "no_drift" and evaluation.event.attributes["drift_passed"]
    assert drift.event.inputs["reference_rows"] == split.event.outputs["reference_rows"]
    assert drift.event.inputs["reference_rows"] in entry.training_data_digests
    assert drift.event.inputs["current"] == evaluation.event.inputs["test"] == split.event.outputs["test"]
    binding = evaluation.event.attributes["drift_binding"]
    trained = log.get(binding["trained"])  # sealed by the training step itself: this artifact, these rows
    assert binding["split"] == split.record_id and trained is not None and trained.event.kind == "trained"
    assert trained.event.outputs["model"] == entry.digest and trained.event.inputs["train"] == ev.inputs["train"]
    kinds = [r.event.kind for r in log.scan(1)]
    assert "approval_refused" in kinds and "evaluation" in kinds and "policy_decision" in kinds
    promote = [c for c in catalog(get_settings()).history("vader-sentiment") if c.op == "promote"]
    assert len(promote) == 1 and promote[0].approvals and promote[0].approvals[0]["approvers"] == ["user:frank"]
