"""Fixtures of the document tests: one trained model pair per session, generated corpora."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def document_models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where this session's document models live, trained here once (about a minute) before any test's own set-up.
    They used to be trained by whichever test needed them first, inside that test's set-up: when that was
    ``test_read_whole``'s cached-classification test, which patches ``parse.finish`` to cut every text at 40
    characters, the heads were trained on 40-character texts, and in a CI run in random order (seed 1039346397) the
    router sent 15 of 25 demo documents to review (accuracy 0.68) in two later tests that pass alone. That order,
    reproduced alone, failed the same way; with the models trained here it passes."""
    from tasks.documents.models import load_or_train

    folder = tmp_path_factory.mktemp("document-models")
    load_or_train(folder)
    return folder


@pytest.fixture(autouse=True)
def _session_document_models(document_models_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIOS_DOCUMENT_MODELS_DIR", str(document_models_dir))


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
