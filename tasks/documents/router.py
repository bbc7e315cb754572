"""Route each document to the cheapest model that is sure enough, then to a person.

1. ``doc-type-fast`` (first 128 tokens) answers when its confidence >= ``fast_threshold``.
2. Otherwise ``doc-type-strong`` (mean of four 128-token windows) answers when >= ``strong_threshold``.
3. Otherwise the document goes to human review (route ``review``; the label is the strong model's guess).

Inference is batched per stage; answers are cached in SQLite under the state dir, keyed by
(document digest, router digest), where the router digest covers both model digests, thresholds and the
precision each encoder runs at (bf16 or fp32: the answers differ in the last digits, and a host's precision follows
its CPU), so a new model version, threshold or precision never reads a stale answer.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from flytekitplugins.aios_audit import ModelRef
from flytekitplugins.aios_core.digest import digest_value
from tasks.documents.models import DocumentModels, strong_features


@dataclass(frozen=True)
class Routed:
    """The answer for one document."""

    label: str
    confidence: float
    route: str
    cached: bool = False


class ResultCache:
    """(digest of the text classified, router digest) -> answer, in one SQLite file.

    Keyed by the text, not by the document: keyed by the document's digest, a run with ``max_chars=40`` stored the
    label of a 40-character prefix (``invoice``, confident) under the document, and the next run with the default
    options took it for the whole text and paid a contract as an invoice. The answers of that key live in the
    table ``answers``, which is no longer read.
    """

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(path, timeout=60.0)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS answers_by_text (doc TEXT, router TEXT, answer TEXT, PRIMARY KEY (doc, router))"
        )

    def get_many(self, docs: list[str], router: str) -> dict[str, Routed]:
        """Cached answers for ``docs``."""
        out: dict[str, Routed] = {}
        for i in range(0, len(docs), 500):
            part = docs[i : i + 500]
            q = f"SELECT doc, answer FROM answers_by_text WHERE router = ? AND doc IN ({','.join('?' * len(part))})"
            for doc, answer in self._conn.execute(q, (router, *part)):
                out[doc] = Routed(**{**json.loads(answer), "cached": True})
        return out

    def put_many(self, items: dict[str, Routed], router: str) -> None:
        """Store answers (idempotent)."""
        rows = [
            (d, router, json.dumps({"label": r.label, "confidence": r.confidence, "route": r.route}))
            for d, r in items.items()
        ]
        with self._conn:
            self._conn.executemany("INSERT OR REPLACE INTO answers_by_text VALUES (?, ?, ?)", rows)

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()


class Router:
    """Cheap model first, stronger model when unsure, human review when both are unsure."""

    def __init__(self, models: DocumentModels, fast_threshold: float, strong_threshold: float) -> None:
        self.models = models
        self.fast_threshold = fast_threshold
        self.strong_threshold = strong_threshold
        self.digest = digest_value(
            {
                "fast": models.fast.digest,
                "strong": models.strong.digest,
                "t": [fast_threshold, strong_threshold],
                "precision": [models.fast.encoder.precision, models.strong.encoder.precision],
            }
        )

    @property
    def refs(self) -> list[ModelRef]:
        """Catalog references of the encoder and both heads."""
        return [self.models.fast.encoder.ref, self.models.fast.ref, self.models.strong.ref]

    def route(self, texts: list[str], batch_size: int = 32) -> list[Routed]:
        """Answers for ``texts`` (no cache)."""
        if not texts:
            return []
        fast, strong = self.models.fast, self.models.strong
        p_fast = fast.predict_proba_embeddings(fast.encoder.embed(texts, batch_size=batch_size))
        out: list[Routed | None] = [None] * len(texts)
        unsure = []
        for i, p in enumerate(p_fast):
            k = int(np.argmax(p))
            if p[k] >= self.fast_threshold:
                out[i] = Routed(fast.labels[k], float(p[k]), "fast")
            else:
                unsure.append(i)
        if unsure:
            feats = strong_features(strong.encoder, [texts[i] for i in unsure], batch_size=batch_size)
            for i, p in zip(unsure, strong.predict_proba_embeddings(feats), strict=True):
                k = int(np.argmax(p))
                route = "strong" if p[k] >= self.strong_threshold else "review"
                out[i] = Routed(strong.labels[k], float(p[k]), route)
        return [r for r in out if r is not None]

    def route_cached(
        self, digests: list[str], texts: list[str], cache: ResultCache, batch_size: int = 32
    ) -> list[Routed]:
        """Answers for ``texts``, reading and filling the cache by ``digests``, each the digest of its text itself
        (``seals.text_digest``), so an answer is reused only for exactly the text it was computed on."""
        hits = cache.get_many(digests, self.digest)
        todo = [i for i, d in enumerate(digests) if d not in hits]
        fresh = dict(zip([digests[i] for i in todo], self.route([texts[i] for i in todo], batch_size), strict=True))
        cache.put_many(fresh, self.digest)
        return [hits.get(d) or fresh[d] for d in digests]
