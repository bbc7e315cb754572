"""Typed evaluation report: both models' figures, their paired comparison and the policy's decision."""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, Field

from tasks.evaluation.metrics import ClassFigures, ModelFigures, calibration, classification, latency
from tasks.ml.classifier import TextClassifier


class Comparison(BaseModel):
    """Candidate minus champion on the same held-out rows."""

    accuracy_delta: float
    macro_f1_delta: float
    ece_delta: float
    champion_only_correct: int
    candidate_only_correct: int
    mcnemar_p: float = Field(description="exact two-sided McNemar p-value")
    bootstrap_ci: list[float] = Field(description="95% paired-bootstrap interval of accuracy_delta")
    significant: bool = Field(description="McNemar p < alpha")
    alpha: float = Field(default=0.05, description="the McNemar test's level (the pack's 0.05 or stricter)")


class NoSkill(BaseModel):
    """The no-skill floor on the held-out rows: always answering their most frequent label (no model involved)."""

    label: str
    accuracy: float
    macro_f1: float


class EvaluationReport(BaseModel):
    """Result of one champion/challenger evaluation."""

    dataset: str
    n_test: int
    test_digest: str
    candidate: ModelFigures
    champion: ModelFigures
    comparison: Comparison
    drift_passed: bool
    no_skill: NoSkill | None = Field(
        default=None,
        description="the held-out rows' no-skill floor (their most frequent label); a first champion must beat it",
    )
    decision: Literal["pending", "promote", "keep", "needs_approval"] = Field(
        default="pending", description="pending until decide_promotion asks policy promote_model"
    )
    reasons: list[str] = Field(default_factory=list)
    approval_request_id: str = ""
    audit_record_id: str = ""

    def evidence(self) -> dict[str, object]:
        """The figures the promotion policy and the catalog record keep."""
        c = self.comparison
        return {
            "accuracy_delta": round(c.accuracy_delta, 6),
            "macro_f1_delta": round(c.macro_f1_delta, 6),
            "significant": c.significant,
            "mcnemar_p": c.mcnemar_p,
            "drift_passed": self.drift_passed,
            "candidate_accuracy": self.candidate.accuracy,
            "champion_accuracy": self.champion.accuracy,
            "champion_model": self.champion.model,
            "champion_digest": self.champion.digest,
            "evaluation_record": self.audit_record_id,
            "test_digest": self.test_digest,
        } | ({"no_skill_delta": round(self.candidate.accuracy - self.no_skill.accuracy, 6)} if self.no_skill else {})


def model_figures(
    clf: TextClassifier,
    proba: np.ndarray,
    y: np.ndarray,
    latency_texts: list[str],
    cpu_price_per_hour: float,
    batch: int = 4,
) -> ModelFigures:
    """All per-model figures from its probabilities on the test set and a timed latency sample."""
    k = len(clf.labels)
    pred = proba.argmax(axis=1)
    acc, f1, cm, per = classification(y, pred, k)
    ece, rel = calibration(y, proba)
    lat, cpu, cost = latency(clf.predict_proba, latency_texts, batch, cpu_price_per_hour)
    p50, p95, p99 = np.percentile(lat, [50, 95, 99]) if lat else (0.0, 0.0, 0.0)
    return ModelFigures(
        model=f"{clf.card.name}@{clf.card.version}",
        digest=clf.digest,
        accuracy=round(acc, 6),
        macro_f1=round(f1, 6),
        per_class={
            lab: ClassFigures(precision=round(float(p), 6), recall=round(float(r), 6), support=int(s))
            for lab, (p, r, s) in zip(clf.labels, per, strict=True)
        },
        confusion=cm,
        labels=clf.labels,
        ece=round(ece, 6),
        reliability=rel,
        latency_ms_p50=round(float(p50), 3),
        latency_ms_p95=round(float(p95), 3),
        latency_ms_p99=round(float(p99), 3),
        cpu_s_per_doc=round(cpu, 6),
        cost_per_1k_docs_usd=round(cost, 8),
    )
