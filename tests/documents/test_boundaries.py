"""Table boundaries: pandera still validates every task output; its HTML report is rendered only for Decks."""

from __future__ import annotations

import pandas as pd
import pytest
from flytekit import task
from pandera.errors import SchemaErrors
from pandera.typing import DataFrame

from tasks.documents.schemas import DocumentRef, ValidatingTransformer


def _refs(status: str) -> pd.DataFrame:
    row = {"doc_id": "d0", "uri": "/x", "name": "x", "size": 1, "digest": "sha256:0", "status": status, "reason": ""}
    return pd.DataFrame([row])


@task
def _no_deck(status: str) -> DataFrame[DocumentRef]:
    return _refs(status)


@task(enable_deck=True)
def _with_deck(status: str) -> DataFrame[DocumentRef]:
    return _refs(status)


def test_the_documents_transformer_handles_pandera_tables() -> None:
    from flytekit.core.type_engine import TypeEngine

    assert isinstance(TypeEngine.get_transformer(DataFrame[DocumentRef]), ValidatingTransformer)


@pytest.mark.parametrize("fn", [_no_deck, _with_deck])
def test_invalid_output_still_fails_the_task(fn) -> None:  # type: ignore[no-untyped-def]
    assert len(fn(status="ok")) == 1
    with pytest.raises(SchemaErrors):
        fn(status="not-a-status")


def test_report_is_rendered_only_when_the_task_publishes_decks(monkeypatch: pytest.MonkeyPatch) -> None:
    from flytekitplugins.pandera import pandas_transformer

    rendered: list[str] = []
    real = pandas_transformer.PandasReportRenderer.to_html

    def spy(self, *a, **k):  # type: ignore[no-untyped-def]
        rendered.append(self._title)
        return real(self, *a, **k)

    monkeypatch.setattr(pandas_transformer.PandasReportRenderer, "to_html", spy)
    _no_deck(status="ok")
    assert rendered == []
    _with_deck(status="ok")
    assert len(rendered) >= 1
