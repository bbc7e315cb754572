"""Evaluation figures: quality, calibration, paired significance, latency and cost (numpy/scipy only).

Cost model (documented in docs/evaluation.md): cost per 1k documents = CPU-seconds per document, as
measured with ``time.process_time`` around prediction (all threads of the process), x 1000 x the price
of one CPU-second (``cpu_price_per_hour / 3600``, default 0.048 USD per vCPU-hour, an on-demand x86 rate).

Definitions (scikit-learn's, checked against it in tests/references/test_metrics_differential.py):

* macro-F1: the unweighted mean of per-label F1 over ``labels`` (default: every label of the model,
  0..k-1), as ``f1_score(y, pred, labels=labels, average="macro", zero_division=0)``: a label that is
  absent from both the true and the predicted labels counts with F1 = 0, so two models scored on the same
  rows are averaged over the same labels; a label with no predictions has precision 0, one with no true
  rows recall 0 (``zero_division=0``);
* ECE: top-label expected calibration error over ``bins`` equal-width bins of the top-class confidence,
  each bin ``(lo, hi]`` (the first ``[0, hi]``), as ``sklearn.calibration.calibration_curve``'s uniform bins:
  sum over bins of (rows in bin / rows) x |accuracy in bin - mean confidence in bin|.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
from pydantic import BaseModel, Field


class ClassFigures(BaseModel):
    """Precision, recall and support of one class."""

    precision: float
    recall: float
    support: int


class ModelFigures(BaseModel):
    """Figures of one model on the held-out set."""

    model: str = Field(description="name@version")
    digest: str
    accuracy: float
    macro_f1: float = Field(description="mean F1 over every model label, absent labels count 0 (sklearn labels=)")
    per_class: dict[str, ClassFigures]
    confusion: list[list[int]] = Field(description="rows: true label, columns: predicted, in `labels` order")
    labels: list[str]
    ece: float = Field(description="expected calibration error, 10 equal-width top-confidence bins (lo, hi]")
    reliability: list[list[float]] = Field(description="[bin mean confidence, bin accuracy, bin share] per bin")
    latency_ms_p50: float
    latency_ms_p95: float
    latency_ms_p99: float
    cpu_s_per_doc: float
    cost_per_1k_docs_usd: float


def classification(
    y: np.ndarray, pred: np.ndarray, k: int, labels: np.ndarray | None = None
) -> tuple[float, float, list[list[int]], np.ndarray]:
    """Accuracy, macro-F1, confusion matrix and (k x 3) precision/recall/support (definitions: module docstring).

    Args:
        y: true label indices in [0, k).
        pred: predicted label indices in [0, k).
        k: number of labels of the model.
        labels: label indices the macro-F1 averages over (default: all k).
    """
    cm = np.bincount(y * k + pred, minlength=k * k).reshape(k, k)
    tp = np.diag(cm).astype(float)
    precision = np.divide(tp, cm.sum(axis=0), out=np.zeros(k), where=cm.sum(axis=0) > 0)
    recall = np.divide(tp, cm.sum(axis=1), out=np.zeros(k), where=cm.sum(axis=1) > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros(k), where=(precision + recall) > 0)
    per = np.stack([precision, recall, cm.sum(axis=1)], axis=1)
    over = np.arange(k) if labels is None else np.asarray(labels, dtype=np.int64)
    macro = float(f1[over].mean()) if len(over) else 0.0
    return float(tp.sum() / max(len(y), 1)), macro, cm.tolist(), per


def no_skill(y: np.ndarray, k: int) -> tuple[int, float, float]:
    """The no-skill floor on rows labelled ``y``: ``(label index, accuracy, macro-F1)`` of always answering their most
    frequent label (ties: the lowest index), the best any constant answer scores there. It needs no model, so no
    launcher can choose it: a first champion of a name is judged against it (``aios_catalog.evidence``)."""
    idx = int(np.bincount(y, minlength=k).argmax()) if len(y) else 0
    acc, f1, _cm, _per = classification(y, np.full(len(y), idx, dtype=np.int64), k)
    return idx, acc, f1


def calibration(y: np.ndarray, proba: np.ndarray, bins: int = 10) -> tuple[float, list[list[float]]]:
    """Expected calibration error and reliability-diagram points (equal-width (lo, hi] bins of top confidence)."""
    conf = proba.max(axis=1)
    correct = (proba.argmax(axis=1) == y).astype(float)
    idx = np.searchsorted(np.linspace(0.0, 1.0, bins + 1)[1:-1], conf, side="left")  # (lo, hi], as sklearn
    n = np.bincount(idx, minlength=bins).astype(float)
    mean_conf = np.divide(np.bincount(idx, conf, bins), n, out=np.zeros(bins), where=n > 0)
    acc = np.divide(np.bincount(idx, correct, bins), n, out=np.zeros(bins), where=n > 0)
    share = n / max(len(y), 1)
    ece = float((share * np.abs(acc - mean_conf)).sum())
    return ece, [[float(c), float(a), float(s)] for c, a, s in zip(mean_conf, acc, share, strict=True) if s > 0]


def mcnemar_exact(y: np.ndarray, pred_a: np.ndarray, pred_b: np.ndarray) -> tuple[int, int, float]:
    """Discordant counts (a right & b wrong, b right & a wrong) and the exact two-sided McNemar p-value."""
    from scipy.stats import binomtest

    a_ok, b_ok = pred_a == y, pred_b == y
    n01, n10 = int((a_ok & ~b_ok).sum()), int((~a_ok & b_ok).sum())
    p = 1.0 if n01 + n10 == 0 else float(binomtest(min(n01, n10), n01 + n10, 0.5).pvalue)
    return n01, n10, p


def paired_bootstrap(
    y: np.ndarray, pred_a: np.ndarray, pred_b: np.ndarray, n: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """95% paired-bootstrap interval of accuracy(b) - accuracy(a) (all resamples at once)."""
    diff = (pred_b == y).astype(float) - (pred_a == y).astype(float)
    idx = np.random.default_rng(seed).integers(0, len(y), size=(n, len(y)))
    means = diff[idx].mean(axis=1)
    return float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))


def latency(
    predict: Callable[[list[str]], object], texts: list[str], batch: int, cpu_price_per_hour: float
) -> tuple[list[float], float, float]:
    """Per-document latency (ms; batch wall time / batch size), CPU-seconds per document and cost per 1k.

    One untimed warm-up batch runs first, so neither model pays for lazy initialisation.
    """
    per_doc: list[float] = []
    predict(texts[:batch])  # warm-up (lazy init, caches): not timed
    cpu0 = time.process_time()
    for start in range(0, len(texts), batch):
        chunk = texts[start : start + batch]
        t0 = time.perf_counter()
        predict(chunk)
        per_doc += [(time.perf_counter() - t0) * 1000 / len(chunk)] * len(chunk)
    cpu_per_doc = (time.process_time() - cpu0) / max(len(texts), 1)
    return per_doc, cpu_per_doc, cpu_per_doc * 1000 * cpu_price_per_hour / 3600
