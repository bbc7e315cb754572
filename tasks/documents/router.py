"""Route each document to the cheapest model that is sure enough, then to a person.

1. ``doc-type-fast`` (first 128 tokens) answers when its confidence >= ``fast_threshold``.
2. Otherwise ``doc-type-strong`` (mean of four 128-token windows) answers when >= ``strong_threshold``.
3. Otherwise the document goes to human review (route ``review``; the label is the strong model's guess).

Inference is batched per stage; answers are cached in SQLite under the state dir, keyed by
(document digest, router digest), where the router digest covers both model digests, thresholds and the
precision each encoder runs at (bf16 or fp32: the answers differ in the last digits, and a host's precision follows
its CPU), so a new model version, threshold or precision never reads a stale answer. The cache is trusted only as a
file of this process's user (see :class:`ResultCache`).
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from flytekitplugins.aios_audit import ModelRef
from flytekitplugins.aios_audit.private_files import SQLITE_COMPANIONS, UnsafeFile, state_refusal, touch_private
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

    Its answers are sealed as the models' (``documents_classified``), so the file is this process's user's or none:
    its folders are created 0700 and the file 0600 (:func:`.private_files.touch_private`), and a file or folder
    another user made or can write is refused before SQLite opens it (``GovernanceDenied``, ``unsafe_state_file``).
    The folder used to be made with the umask's mode and any ``documents.db`` found was opened: another local user
    who created it first (the cluster profile's state dir is ``/tmp/aios``), mode 0666, with a row keyed as the pack
    keys it (the text's digest and the router digest are both public) had ``correspondence, 0.99`` sealed for an
    invoice the models gave 0.917, and policy allowed what needed a low-confidence review (review R9, F1). Rows are
    not signed: only this user's processes can write the file, and they write the models' answers.
    """

    def __init__(self, path: Path) -> None:
        try:
            _private_cache(path)  # before SQLite opens it (SQLite gives -wal and -shm the database's mode)
        except UnsafeFile as e:
            risk = "its answers could be another local user's; nothing was classified"
            fallback = f"remove {e.path}, and keep the state folder where only this user can write (AIOS_STATE_DIR)"
            raise state_refusal(e, f"the classification cache {path}", risk, fallback) from None
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


def _private_cache(path: Path) -> None:
    """``path`` made (0600, folders 0700) or found as this user's private file (:func:`.private_files.touch_private`).

    A cache of this user's that others may write (an earlier version made it with the umask's mode: 0666 under umask
    0) is discarded and made again, unread: it is only a cache, and its rows may be theirs. Anything else refused
    (another user's file or folder, a link, not a regular file) is raised as :class:`UnsafeFile`.
    """
    try:
        touch_private(path, companions=SQLITE_COMPANIONS)  # a -wal another user left would answer with its rows
        return
    except UnsafeFile as e:
        ours = {path.with_name(path.name + suffix) for suffix in _SQLITE_FILES}
        st = os.lstat(e.path) if e.path in ours else None  # (this user's own old files: discarded below)
        if st is None or not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid() or not st.st_mode & 0o077:
            raise
    for suffix in _SQLITE_FILES:  # SQLite's files of the old database go with it
        path.with_name(path.name + suffix).unlink(missing_ok=True)
    touch_private(path, companions=SQLITE_COMPANIONS)


_SQLITE_FILES = ("", *SQLITE_COMPANIONS)


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
