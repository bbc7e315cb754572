"""Text drift on real VADER snippets: MiniLM embedding drift, score drift and prediction drift."""

from __future__ import annotations

from pathlib import Path

import pytest

from flytekitplugins.aios_audit import audit_log
from flytekitplugins.aios_core.settings import get_settings
from tasks.evaluation.data import binarize, load_vader, split

N = 150


@pytest.fixture
def model_dir(tmp_path: Path) -> str:
    from tasks.drift.text import embed_cached
    from tasks.ml.classifier import train_head

    (train,) = split(binarize(load_vader("tweets")), (300,), 42)
    texts = train["text"].tolist()
    clf = train_head(texts, train["label"].tolist(), name="tweets-head", version="t1", embeddings=embed_cached(texts))
    clf.save(tmp_path / "head")
    return str(tmp_path / "head")


@pytest.mark.slow
def test_cross_source_alarm_and_same_source_quiet(model_dir: str) -> None:
    from workflows.drift import check_drift

    tweets, movies = load_vader("tweets"), load_vader("movieReviewSnippets")
    a, b = split(tweets, (N, N), 0)
    (c,) = split(movies, (N,), 1)
    args = {
        "dataset": "vader",
        "suite": "vader_text",
        "columns": ["score"],
        "text_column": "text",
        "model_dir": model_dir,
        "text_sample": N,
    }
    same = check_drift(reference=a, current=b, **args)
    cross = check_drift(reference=a, current=c, **args)
    assert not same.drifted, same.summary()
    assert same.embedding.domain_auc < 0.65 and same.embedding.p_value > 0.01
    assert cross.drifted and cross.embedding.drifted
    assert cross.embedding.domain_auc > 0.9 and cross.embedding.p_value < 0.01
    assert cross.prediction is not None and cross.prediction.model == "tweets-head@t1"
    assert cross.prediction.mean_confidence_cur < cross.prediction.mean_confidence_ref  # less sure off-domain
    rec = audit_log(get_settings()).get(cross.audit_record_id)
    assert rec.event.status == "drift" and rec.event.attributes["embedding_auc"] == cross.embedding.domain_auc
    assert {m.name for m in rec.event.models} == {"all-MiniLM-L6-v2", "tweets-head"}


@pytest.mark.slow
def test_text_monitoring_starts_retraining(monkeypatch: pytest.MonkeyPatch) -> None:
    from workflows.monitoring import monitor_text

    monkeypatch.setenv("AIOS_PRINCIPAL", "service:monitoring")
    out = monitor_text(n=N, retrain_target="tests.evaluation.standin_retrain.retrain")
    assert out.startswith("retraining ran: tests.evaluation.standin_retrain.retrain for drift on vader-text"), out
    statuses = [r.event.status for r in audit_log(get_settings()).scan() if r.event.kind in ("drift", "task")]
    assert statuses == ["drift", "retrain_triggered", "retrain_started"]
