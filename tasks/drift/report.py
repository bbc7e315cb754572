"""Typed drift report: what a drift check found, passed between Flyte tasks as pydantic models."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, Field

from tasks.drift.effect_size import EffectSizes, Thresholds


def _f(x: float) -> float | None:
    return None if math.isnan(x) else round(float(x), 6)


class FeatureDrift(BaseModel):
    """Effect sizes and significance of one feature, reference vs current (definitions: docs/drift.md)."""

    name: str
    kind: Literal["numeric", "categorical"]
    psi: float = Field(description="population stability index, natural log, over the bins (a divergence)")
    js: float = Field(description="Jensen-Shannon distance (sqrt of the divergence), log base 2, in [0, 1]")
    wasserstein: float | None = Field(
        default=None, description="exact Wasserstein-1 / reference std (ddof 0), non-missing values (numeric only)"
    )
    ks: float | None = Field(default=None, description="two-sample Kolmogorov-Smirnov statistic (numeric only)")
    p_value: float = Field(
        description="feature p-value: numeric min(1, 2 min(chi-square, KS)), categorical chi-square on the bins"
    )
    p_threshold: float = Field(default=0.0, description="alpha / features tested (Bonferroni)")
    significant: bool = False
    material: bool = False
    missing_ref: float
    missing_cur: float
    drifted: bool = Field(description="significant AND material")
    reasons: list[str] = Field(default_factory=list, description="the test and the effect sizes that crossed")


class ExpectationResult(BaseModel):
    """One expectation of a suite on one batch: what it checked and how many rows broke it."""

    expectation: str = Field(description="Great Expectations type, e.g. expect_column_values_to_not_be_null")
    column: str = ""
    success: bool
    unexpected: int | None = Field(default=None, description="rows that broke it (None: a whole-table check)")
    observed: str = Field(default="", description="what was observed, as GE reports it")


class QualityReport(BaseModel):
    """Great Expectations validation of one batch against a suite kept in config/expectations/."""

    suite: str
    batch: str
    success: bool
    evaluated: int
    failed: list[str] = Field(default_factory=list, description="'expectation_type(column): observed' per failure")
    rows: int = Field(default=0, description="rows of the batch")
    expectations: list[ExpectationResult] = Field(default_factory=list, description="every expectation that ran")
    audit_record_id: str = Field(
        default="", description="the quality_passed record sealing this validation (digest of the rows, suite)"
    )


class EmbeddingDrift(BaseModel):
    """Text drift on MiniLM embeddings: MMD (RBF kernel, permutation test) and a domain classifier."""

    n_ref: int
    n_cur: int
    mmd2: float
    p_value: float = Field(description="permutation p-value of MMD^2")
    permutations: int
    domain_auc: float = Field(description="cross-validated AUC of a classifier telling reference from current")
    drifted: bool


class PredictionDrift(BaseModel):
    """Drift of a model's outputs: predicted-label mix and confidence distribution."""

    model: str
    label_js: float
    label_psi: float
    confidence_psi: float
    label_p_value: float = Field(default=1.0, description="chi-square p-value of the predicted-label mix")
    confidence_p_value: float = Field(default=1.0, description="chi-square p-value of the confidence bins")
    mean_confidence_ref: float
    mean_confidence_cur: float
    drifted: bool


class DriftReport(BaseModel):
    """Result of one drift check (features, optional text embedding and prediction drift)."""

    dataset: str
    n_ref: int
    n_cur: int
    thresholds: dict[str, float]
    features: list[FeatureDrift] = Field(default_factory=list)
    embedding: EmbeddingDrift | None = None
    prediction: PredictionDrift | None = None
    quality: list[QualityReport] = Field(default_factory=list)
    effect_size_ms: float = 0.0
    audit_record_id: str = ""

    @property
    def drifted_features(self) -> list[str]:
        """Names of the features whose effect size crossed a threshold."""
        return [f.name for f in self.features if f.drifted]

    @property
    def drift_share(self) -> float:
        """Fraction of features that drifted."""
        return len(self.drifted_features) / len(self.features) if self.features else 0.0

    @property
    def drifted(self) -> bool:
        """True when any feature, the text embedding or the predictions drifted."""
        return bool(
            self.drifted_features
            or (self.embedding and self.embedding.drifted)
            or (self.prediction and self.prediction.drifted)
        )

    def summary(self) -> dict[str, object]:
        """Compact, JSON-ready facts for audit records and policy context."""
        return {
            "dataset": self.dataset,
            "drift_detected": self.drifted,
            "drift_share": round(self.drift_share, 4),
            "drifted_features": self.drifted_features,
            "max_psi": max((f.psi for f in self.features), default=0.0),
            "max_js": max((f.js for f in self.features), default=0.0),
            "embedding_auc": self.embedding.domain_auc if self.embedding else None,
            "embedding_p_value": self.embedding.p_value if self.embedding else None,
            "prediction_drifted": self.prediction.drifted if self.prediction else None,
            "n_ref": self.n_ref,
            "n_cur": self.n_cur,
        }


def _material(es: EffectSizes, i: int, th: Thresholds) -> list[str]:
    crossed = []
    if es.psi[i] >= th.psi:
        crossed.append(f"psi {es.psi[i]:.3f} >= {th.psi}")
    if es.js[i] >= th.js:
        crossed.append(f"js {es.js[i]:.3f} >= {th.js}")
    w = es.wasserstein[i]
    if not math.isnan(w) and w >= th.wasserstein:
        crossed.append(f"wasserstein {w:.3f} >= {th.wasserstein}")
    return crossed


def feature_drifts(es: EffectSizes, th: Thresholds) -> list[FeatureDrift]:
    """Apply the decision rule: a feature drifts when its shift is significant AND material.

    Significant: p-value < ``th.alpha / k`` for the k features of this check (Bonferroni: a same-distribution
    batch alarms on any feature with probability at most ``th.alpha``). Material: PSI, JS or W1/std at or
    above its threshold in ``th``.
    """
    out = []
    cut = th.alpha / max(len(es.columns), 1)
    for i, name in enumerate(es.columns):
        crossed = _material(es, i, th)
        significant = bool(es.p_value[i] < cut)
        drifted = significant and bool(crossed)
        reasons = [f"p {es.p_value[i]:.2g} < {cut:.2g}", *crossed] if drifted else []
        out.append(
            FeatureDrift(
                name=name,
                kind="numeric" if es.kinds[i] == "numeric" else "categorical",
                psi=round(float(es.psi[i]), 6),
                js=round(float(es.js[i]), 6),
                wasserstein=_f(es.wasserstein[i]),
                ks=_f(es.ks[i]),
                p_value=float(es.p_value[i]),
                p_threshold=cut,
                significant=significant,
                material=bool(crossed),
                missing_ref=round(float(es.missing_ref[i]), 6),
                missing_cur=round(float(es.missing_cur[i]), 6),
                drifted=drifted,
                reasons=reasons,
            )
        )
    return out
