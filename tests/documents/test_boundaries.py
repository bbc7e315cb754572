"""Table boundaries: pandera still validates every task output; its HTML report is rendered only for Decks."""

from __future__ import annotations

import html
from typing import Annotated

import pandas as pd
import pytest
from flytekit import task
from pandera.errors import SchemaErrors
from pandera.typing import DataFrame

from flytekitplugins.pandera import ValidationConfig
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


def _decks_and_reports(monkeypatch: pytest.MonkeyPatch) -> tuple[list[tuple[str, str]], list[str]]:
    """Record the Decks the pack's transformer adds (title, HTML) and the plugin's report renderings (titles)."""
    from flytekitplugins.pandera import pandas_transformer
    from tasks.documents import schemas

    decks: list[tuple[str, str]] = []
    reports: list[str] = []
    real_deck, real_html = schemas.Deck, pandas_transformer.PandasReportRenderer.to_html

    def deck(name: str, html: str = "") -> object:
        decks.append((name, html))
        return real_deck(name, html)

    def spy(self, *a, **k):  # type: ignore[no-untyped-def]
        reports.append(self._title)
        return real_html(self, *a, **k)

    monkeypatch.setattr(schemas, "Deck", deck)
    monkeypatch.setattr(pandas_transformer.PandasReportRenderer, "to_html", spy)
    return decks, reports


def test_report_is_rendered_only_when_the_task_publishes_decks(monkeypatch: pytest.MonkeyPatch) -> None:
    decks, reports = _decks_and_reports(monkeypatch)
    _no_deck(status="ok")
    assert decks == [] and reports == []
    _with_deck(status="ok")
    assert [name for name, _ in decks] == ["Pandera Report: DocumentRef"]
    assert reports == []  # a table that passed: the pack's plain report, not the plugin's great_tables one


LONG = "<script>alert(1)</script>" + "x" * 500


def test_a_passed_tables_report_shows_the_plugins_content_escaped(monkeypatch: pytest.MonkeyPatch) -> None:
    decks, _ = _decks_and_reports(monkeypatch)

    @task(enable_deck=True)
    def hostile() -> DataFrame[DocumentRef]:
        df = _refs("ok")
        df["name"] = LONG
        return df

    hostile()
    ((name, page),) = decks
    assert name == "Pandera Report: DocumentRef"
    for shown in ("Schema Name", "DocumentRef", "1 rows x 7 columns", "Total schema errors", "Total data errors"):
        assert shown in page
    assert "Data Preview" in page and "<th>doc_id</th>" in page and "<td>d0</td>" in page
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert f"<td>{html.escape(LONG[:200])}\u2026</td>" in page and "x" * 200 not in page  # a long cell is cut


def test_a_failed_table_gets_the_plugins_error_report_and_its_on_error(monkeypatch: pytest.MonkeyPatch) -> None:
    decks, reports = _decks_and_reports(monkeypatch)

    @task(enable_deck=True)
    def warned(status: str) -> Annotated[DataFrame[DocumentRef], ValidationConfig(on_error="warn")]:
        return _refs(status)

    assert list(warned(status="not-a-status")["status"]) == ["not-a-status"]  # warn: the table goes on
    assert reports == ["Pandera Report: DocumentRef"] and decks == []
    reports.clear()
    with pytest.raises(SchemaErrors):
        _with_deck(status="not-a-status")
    assert reports == ["Pandera Report: DocumentRef"] and decks == []


def test_an_input_table_read_in_a_deck_task_is_reported_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """A table this process did not write (as in a pod, where the producer ran elsewhere) is validated on read and
    reported; one it wrote and validated is not validated or reported again."""
    from flytekit import FlyteContextManager
    from flytekit.core.type_engine import TypeEngine

    from flytekitplugins.aios.compat.pandera import validation_memo
    from tasks.documents import schemas

    decks, reports = _decks_and_reports(monkeypatch)
    ctx = FlyteContextManager.current_context()
    transformer = TypeEngine.get_transformer(DataFrame[DocumentRef])
    lv = TypeEngine.to_literal(
        ctx, _refs("ok"), DataFrame[DocumentRef], TypeEngine.to_literal_type(DataFrame[DocumentRef])
    )
    key = (lv.scalar.structured_dataset.uri, "DocumentRef")
    assert key in validation_memo(transformer)
    validation_memo(transformer).discard(key)  # as if another process had written it
    monkeypatch.setattr(schemas, "_decks_enabled", lambda: True)  # the reading task publishes Decks
    got = transformer.to_python_value(ctx, lv, DataFrame[DocumentRef])
    assert list(got["doc_id"]) == ["d0"]
    assert [name for name, _ in decks] == ["Pandera Report: DocumentRef"] and reports == []
    decks.clear()
    validation_memo(transformer).add(key)  # written and validated by this process
    assert list(transformer.to_python_value(ctx, lv, DataFrame[DocumentRef])["doc_id"]) == ["d0"]
    assert decks == [] and reports == []
