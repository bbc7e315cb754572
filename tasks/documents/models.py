"""The document-type models: a cheap head and a stronger, longer-context head on frozen MiniLM.

* ``doc-type-fast``: logistic-regression head on the embedding of the first window (128 tokens).
* ``doc-type-strong``: head on the mean embedding of up to four 128-token windows; it reads the body of
  documents whose first window is a generic cover note, where the fast head cannot tell.

Both are trained on the pack's generated training corpus (seed ``TRAIN_SEED``, never the demo seed),
redacted exactly as production text is, and saved as ``tasks.ml.classifier`` artifacts, in a folder only this
process's user can write (:func:`load_or_train`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from flytekitplugins.aios_audit.private_files import UnsafeFile, open_owned, private_dir, state_refusal
from flytekitplugins.aios_core.settings import Settings
from tasks.ml.classifier import TextClassifier, train_head
from tasks.ml.minilm import Encoder, shared_encoder

log = logging.getLogger(__name__)

FAST, STRONG = "doc-type-fast", "doc-type-strong"
VERSION = "1.0.0"
TRAIN_SEED, N_TRAIN = 1001, 800
WINDOW_WORDS, MAX_WINDOWS = 90, 4
LOCK = ".lock"


def windows(text: str, size: int = WINDOW_WORDS, limit: int = MAX_WINDOWS) -> list[str]:
    """Consecutive word windows (about 128 tokens each) covering the start of ``text``."""
    words = re.split(r"\s+", text.strip())
    return [" ".join(words[i : i + size]) for i in range(0, min(len(words), size * limit), size)] or [""]


def strong_features(encoder: Encoder, texts: list[str], batch_size: int = 32) -> np.ndarray:
    """Mean of the window embeddings of each text, L2-normalized (n x 384)."""
    spans, flat = [], []
    for t in texts:
        w = windows(t)
        spans.append((len(flat), len(flat) + len(w)))
        flat.extend(w)
    emb = encoder.embed(flat, batch_size=batch_size)
    out = np.stack([emb[a:b].mean(axis=0) for a, b in spans]) if texts else np.zeros((0, emb.shape[1]), np.float32)
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)


def models_dir(settings: Settings) -> Path:
    """Where the artifacts live: ``settings.document_models_dir`` (``AIOS_DOCUMENT_MODELS_DIR``; default
    ``<state_dir>/models/documents``)."""
    return Path(settings.document_models_dir)


def training_texts(n: int = N_TRAIN, seed: int = TRAIN_SEED) -> tuple[list[str], list[str]]:
    """Redacted training texts and labels from the generated corpus (same cleaning as production)."""
    from tasks.documents.corpus_text import generate
    from tasks.documents.parse import Limits, Parsed, finish
    from tasks.documents.protect import redact

    docs = generate(n, seed)
    texts = [finish(Parsed(redact(d.text).text, "text"), Limits(min_chars=0)).text for d in docs]
    return texts, [d.label for d in docs]


@dataclass
class DocumentModels:
    """The pair of artifacts the router uses."""

    fast: TextClassifier
    strong: TextClassifier


def train(folder: Path, encoder: Encoder | None = None) -> DocumentModels:
    """Train both heads on the generated training corpus and save them under ``folder``."""
    encoder = encoder or shared_encoder()
    texts, labels = training_texts()
    fast = train_head(texts, labels, name=FAST, version=VERSION, encoder=encoder, embeddings=encoder.embed(texts))
    feats = strong_features(encoder, texts)
    strong = train_head(texts, labels, name=STRONG, version=VERSION, encoder=encoder, embeddings=feats)
    strong.card.params.update({"features": f"mean of {MAX_WINDOWS} x {WINDOW_WORDS}-word windows"})
    fast.card.params.update({"features": "first 128 tokens"})
    for clf in (fast, strong):
        clf.card.params.update({"train_seed": TRAIN_SEED, "corpus": "tasks.documents.corpus_text"})
        clf.save(private_dir(folder / clf.card.name))  # 0700 whatever the umask (save's mkdir keeps it)
    log.info("trained document models in %s", folder)
    return DocumentModels(fast, strong)


def load_or_train(folder: Path, bf16: bool | None = None) -> DocumentModels:
    """Load the artifacts in ``folder`` (``models_dir(settings)``), training them first when they are missing (a
    file lock keeps it single); their encoders run bf16 or fp32 as ``bf16`` says (None: where it is faster).

    The folder and its artifact folders are created 0700, and an existing one another user owns or may write is
    refused, as is a lock file another user could hold (:func:`_lock`), with ``GovernanceDenied``
    (``unsafe_state_file``) before anything is loaded. They were made with the umask's mode and the lock opened
    with ``open("w")``: another local user who created the folder first (the cluster profile's state dir is
    ``/tmp/aios``) had a planted ``.lock`` link truncate a file of the pack's user, stalled every classify for ever
    by holding ``flock -s`` on their own 0666 ``.lock`` (or with a FIFO), and had the heads they copied in loaded
    and catalogued (review R9, F2).
    """
    import fcntl

    fd = _lock(folder)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with _refusing(folder):  # an artifact folder left writable by others (a umask 0 run) is refused too
            for name in (FAST, STRONG):
                private_dir(folder / name)
        if not all((folder / n / "aios_model.json").is_file() for n in (FAST, STRONG)):
            from tasks.documents import progress

            with progress.step("train models"):  # the first run only: shown, not a silent minute
                train(folder)
        return DocumentModels(
            TextClassifier.load(folder / FAST, bf16=bf16), TextClassifier.load(folder / STRONG, bf16=bf16)
        )
    finally:
        os.close(fd)  # releases the lock


def _lock(folder: Path) -> int:
    """A descriptor of ``folder``'s lock file: the folder made private (0700, refused where another user owns it or
    others may write it), the file opened by :func:`.private_files.open_owned` (never through a link, refused when
    it is not a regular file, is another user's than this process's or root's, or others may open it)."""
    with _refusing(folder):
        private_dir(folder)
        _narrow_own_lock(folder / LOCK)
        return open_owned(folder / LOCK, {os.geteuid(), 0})


def _narrow_own_lock(path: Path) -> None:
    """Set this process's user's own lock file to 0600 when an earlier version left it open to others (it was
    created with the umask's mode, 0644): otherwise :func:`.private_files.open_owned` refuses every existing models
    folder. Anything else found there (a link, a FIFO, another user's file) is left for ``open_owned`` to refuse.
    Narrowed in place, not replaced: two processes replacing it at once could each lock a file of their own. A
    descriptor someone opened on it while it was 0644 keeps working (remove the file where that is a concern)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return  # missing (created 0600 by open_owned), a link (ELOOP), unreadable: open_owned says what it is
    try:
        st = os.fstat(fd)
        if stat.S_ISREG(st.st_mode) and st.st_uid == os.geteuid() and st.st_mode & 0o077:
            os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


@contextlib.contextmanager
def _refusing(folder: Path) -> Iterator[None]:
    """A refusal of :mod:`.private_files` raised as ``GovernanceDenied`` naming ``folder`` and the fix."""
    try:
        yield
    except UnsafeFile as e:
        risk = "another local user could choose the models classify loads or stall it on their lock; nothing was loaded"
        fallback = (
            f"remove {e.path}, and keep the models where only this user can write (AIOS_DOCUMENT_MODELS_DIR or "
            "AIOS_STATE_DIR)"
        )
        raise state_refusal(e, f"the document models folder {folder}", risk, fallback) from None
