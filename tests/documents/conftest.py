"""Fixtures of the document tests: one trained model pair per machine, generated corpora."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# Train the document models once per machine (about a minute), not once per test.
os.environ.setdefault("AIOS_DOCUMENT_MODELS_DIR", str(REPO / ".aios" / "cache" / "document-models"))


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo corpus (24 labelled documents + bad inputs), generated once per session."""
    from tasks.documents.corpus import build

    out = tmp_path_factory.mktemp("corpus")
    build(out, 24, 7)
    return out


def options(**kw: object):  # type: ignore[no-untyped-def]
    """Test options: small chunks (several mapped tasks), no progress bar, short approval timeout."""
    from tasks.documents.schemas import ProcessingOptions

    base: dict[str, object] = {"chunk_size": 8, "progress": "off", "approval_timeout_s": 20.0}
    base.update(kw)
    return ProcessingOptions(**base)  # type: ignore[arg-type]
