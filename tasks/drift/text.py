"""Text drift on MiniLM embeddings, and drift of a model's predictions and confidence.

Embedding drift reports two complementary figures:

* MMD^2 with an RBF kernel (bandwidth: median pairwise distance) and a permutation test. All
  permutations are evaluated at once as ``diag(S^T K S)`` for a (N x P) matrix of signed weights.
* The AUC of a logistic-regression domain classifier (5-fold cross-validated) telling reference from
  current embeddings: 0.5 means indistinguishable, 1.0 fully separable. It is the effect size.

A text batch is flagged when the permutation p-value is below ``alpha`` AND the AUC reaches
``auc_threshold``: significance alone would flag trivial shifts at large n.
"""

from __future__ import annotations

import numpy as np

from tasks.drift.binned import chi2_pvalue, js_distance, pool_sparse, psi
from tasks.drift.report import EmbeddingDrift, PredictionDrift

CONF_EDGES = np.linspace(0.5, 1.0, 11)[1:-1]
_CACHE: dict[str, np.ndarray] = {}
_CACHE_MAX = 32


def embed_cached(texts: list[str]) -> np.ndarray:
    """MiniLM embeddings of ``texts``; repeated batches in one process are embedded once."""
    from flytekitplugins.aios_core.digest import digest_value
    from tasks.ml.minilm import base_model_ref, shared_encoder

    key = digest_value({"model": base_model_ref().digest, "texts": texts})
    if key not in _CACHE:
        if len(_CACHE) >= _CACHE_MAX:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = shared_encoder().embed(texts)
    return _CACHE[key]


def _sq_dists(z: np.ndarray) -> np.ndarray:
    sq = (z * z).sum(axis=1)
    return np.asarray(np.maximum(sq[:, None] + sq[None, :] - 2 * z @ z.T, 0.0))


def mmd_permutation(x: np.ndarray, y: np.ndarray, permutations: int = 500, seed: int = 0) -> tuple[float, float]:
    """Biased MMD^2 of ``x`` vs ``y`` (RBF, median heuristic) and its permutation p-value."""
    z = np.vstack([x, y]).astype(np.float64)
    d2 = _sq_dists(z)
    bandwidth = np.median(d2[np.triu_indices_from(d2, k=1)]) or 1.0
    k = np.exp(-d2 / bandwidth)
    n, m = len(x), len(y)
    sign = np.concatenate([np.full(n, 1.0 / n), np.full(m, -1.0 / m)])
    rng = np.random.default_rng(seed)
    perms = np.stack([rng.permutation(sign) for _ in range(permutations)], axis=1)  # (N, P)
    observed = float(sign @ k @ sign)
    null = ((k @ perms) * perms).sum(axis=0)
    p_value = (1 + int((null >= observed).sum())) / (1 + permutations)
    return observed, p_value


def domain_auc(x: np.ndarray, y: np.ndarray, seed: int = 0) -> float:
    """Cross-validated AUC of a classifier separating ``x`` (reference) from ``y`` (current)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    z = np.vstack([x, y])
    target = np.concatenate([np.zeros(len(x)), np.ones(len(y))])
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=seed)
    proba = cross_val_predict(LogisticRegression(C=1.0, max_iter=1000), z, target, cv=folds, method="predict_proba")
    return float(roc_auc_score(target, proba[:, 1]))


def embedding_drift(
    ref: np.ndarray, cur: np.ndarray, *, permutations: int = 500, alpha: float = 0.01, auc_threshold: float = 0.65
) -> EmbeddingDrift:
    """Embedding drift of two batches of (L2-normalized) sentence embeddings.

    Args:
        ref: reference embeddings (n x d).
        cur: current embeddings (m x d).
        permutations: permutations of the MMD test.
        alpha: significance level of the permutation test.
        auc_threshold: domain-classifier AUC at or above which the shift is large enough to alert.
    """
    mmd2, p_value = mmd_permutation(ref, cur, permutations)
    auc = domain_auc(ref, cur)
    return EmbeddingDrift(
        n_ref=len(ref),
        n_cur=len(cur),
        mmd2=round(mmd2, 6),
        p_value=p_value,
        permutations=permutations,
        domain_auc=round(auc, 4),
        drifted=bool(p_value < alpha and auc >= auc_threshold),
    )


def prediction_drift(
    model: str,
    proba_ref: np.ndarray,
    proba_cur: np.ndarray,
    *,
    psi_threshold: float = 0.03,
    js_threshold: float = 0.1,
    alpha: float = 0.01,
) -> PredictionDrift:
    """Drift of predicted labels (JS, PSI) and of top-class confidence (PSI on 10 bins (lo, hi] over [0.5, 1]).

    The feature rule applies to each of the two: drifted when its chi-square p-value is below ``alpha / 2``
    (Bonferroni over the two) AND an effect size reaches its threshold; sparse bins are pooled first.

    Args:
        model: ``name@version`` of the model whose outputs are compared.
        proba_ref: class probabilities on the reference batch (n x k).
        proba_cur: class probabilities on the current batch (m x k).
        psi_threshold: PSI at or above which a significant label or confidence shift is material.
        js_threshold: JS distance at or above which a significant shift of the label mix is material.
        alpha: family-wise significance level over the two tests.
    """
    k = proba_ref.shape[1]
    counts = [np.bincount(p.argmax(axis=1), minlength=k) for p in (proba_ref, proba_cur)]
    lab_r, lab_c = pool_sparse(np.asarray(counts[:1], float), np.asarray(counts[1:], float))
    counts = [np.bincount(np.searchsorted(CONF_EDGES, p.max(axis=1)), minlength=10) for p in (proba_ref, proba_cur)]
    conf_r, conf_c = pool_sparse(np.asarray(counts[:1], float), np.asarray(counts[1:], float))
    label_js, label_psi = float(js_distance(lab_r, lab_c)[0]), float(psi(lab_r, lab_c)[0])
    conf_psi = float(psi(conf_r, conf_c)[0])
    label_p, conf_p = float(chi2_pvalue(lab_r, lab_c)[0]), float(chi2_pvalue(conf_r, conf_c)[0])
    label_drift = label_p < alpha / 2 and (label_js >= js_threshold or label_psi >= psi_threshold)
    return PredictionDrift(
        model=model,
        label_js=round(label_js, 6),
        label_psi=round(label_psi, 6),
        confidence_psi=round(conf_psi, 6),
        label_p_value=label_p,
        confidence_p_value=conf_p,
        mean_confidence_ref=round(float(proba_ref.max(axis=1).mean()), 4),
        mean_confidence_cur=round(float(proba_cur.max(axis=1).mean()), 4),
        drifted=bool(label_drift or (conf_p < alpha / 2 and conf_psi >= psi_threshold)),
    )
