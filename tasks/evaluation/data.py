"""Real labelled text: the VADER corpus (Hutto & Gilbert, ICWSM 2014), read from local files only.

Four sources of human-rated snippets (mean rating -4..+4): ``tweets``, ``movieReviewSnippets``,
``nytEditorialSnippets``, ``amazonReviewSnippets``. Sentiment is binarized as the pack's evaluation
task: score > 0 is ``positive``, score < 0 ``negative``; exact zeros are dropped. The data is fetched at
install time by ``scripts/fetch_data.sh`` into ``$AIOS_DATA_DIR`` (default ``.data``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

SOURCES = ("tweets", "movieReviewSnippets", "nytEditorialSnippets", "amazonReviewSnippets")
_REPO = Path(__file__).resolve().parents[2]


def vader_dir(data_dir: str = "") -> Path:
    """Folder holding ``*_GroundTruth.txt`` under ``data_dir`` (the ``data_dir`` setting; empty: the repo's
    ``.data``, where scripts/fetch_data.sh puts it)."""
    base = Path(data_dir) if data_dir else _REPO / ".data"
    return base / "vader" / "corpus" / "hutto_ICWSM_2014"


def load_vader(source: str, data_dir: str = "") -> pd.DataFrame:
    """All snippets of one source: columns ``id``, ``score``, ``text``, ``source``.

    Args:
        source: one of :data:`SOURCES`.
        data_dir: the caller's ``settings.data_dir`` (empty: the repository's ``.data``).
    """
    if source not in SOURCES:
        msg = f"unknown VADER source {source!r}; use one of {SOURCES}"
        raise ValueError(msg)
    path = vader_dir(data_dir) / f"{source}_GroundTruth.txt"
    if not path.is_file():
        msg = f"VADER data not found at {path}: run scripts/fetch_data.sh (or set AIOS_DATA_DIR)"
        raise FileNotFoundError(msg)
    rows = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        parts = line.split("\t", 2)
        if len(parts) == 3:
            rows.append((parts[0], float(parts[1]), parts[2].strip()))
    df = pd.DataFrame(rows, columns=["id", "score", "text"])
    df["source"] = source
    return df


def binarize(df: pd.DataFrame) -> pd.DataFrame:
    """Rows with a non-zero score, with ``label`` = positive / negative."""
    out = df[df["score"] != 0].copy()
    out["label"] = np.where(out["score"] > 0, "positive", "negative")
    return out.reset_index(drop=True)


def split(df: pd.DataFrame, sizes: tuple[int, ...], seed: int) -> list[pd.DataFrame]:
    """Disjoint random samples of the given sizes (deterministic for a seed)."""
    from tasks.seeds import check_seed

    check_seed(seed)
    if any(n < 0 for n in sizes):
        raise ValueError(f"sample sizes {sizes}: give each as 0 or more")
    if sum(sizes) > len(df):
        msg = f"asked for {sum(sizes)} rows but the data has {len(df)}"
        raise ValueError(msg)
    order = np.random.default_rng(seed).permutation(len(df))
    out, start = [], 0
    for n in sizes:
        out.append(df.iloc[order[start : start + n]].reset_index(drop=True))
        start += n
    return out
