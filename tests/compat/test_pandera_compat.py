"""Pins the flytekitplugins-pandera internals the pack relies on, and that its transformer stays on its own schemas.

flytekitplugins.aios.compat.pandera: the schema lookup, the structured-dataset engine and the validation
memo of the plugin's transformer; ``DataFrame[S]`` of a user's own schema keeps the plugin's transformer.
"""

from __future__ import annotations

from typing import Annotated, Any

import pandas as pd
import pandera.pandas as pa
import pytest
from flytekit import FlyteContextManager, task, workflow
from flytekit.core.type_engine import TypeEngine
from flytekit.types.structured.structured_dataset import StructuredDatasetTransformerEngine
from pandera.errors import SchemaErrors
from pandera.typing import DataFrame, Series

from flytekitplugins.aios.compat import CompatError
from flytekitplugins.aios.compat import pandera as compat
from flytekitplugins.pandera import PanderaPandasTransformer, ValidationConfig, pandas_transformer
from tasks.documents.schemas import DocumentRef, ValidatingTransformer


class UserRow(pa.DataFrameModel):
    """A user's own schema: not the pack's."""

    key: Series[str] = pa.Field(unique=True)
    qty: Series[int] = pa.Field(ge=0)


def _users(qty: int = 1) -> pd.DataFrame:
    return pd.DataFrame({"key": ["a"], "qty": [qty]})


def _refs(status: str = "ok") -> pd.DataFrame:
    row = {"doc_id": "d0", "uri": "/x", "name": "x", "size": 1, "digest": "sha256:0", "status": status, "reason": ""}
    return pd.DataFrame([row])


def _plugin() -> Any:
    return TypeEngine.get_transformer(DataFrame[UserRow])


def test_schema_lookup_returns_the_models_schema_and_the_annotations_config() -> None:
    """PanderaPandasTransformer._get_pandera_schema: (S.to_schema(), ValidationConfig of the annotation)."""
    schema, config = compat.pandera_schema(_plugin(), DataFrame[UserRow])
    assert schema.name == "UserRow" and list(schema.columns) == ["key", "qty"]
    assert config == ValidationConfig() and config.on_error == "raise"
    schema, config = compat.pandera_schema(_plugin(), Annotated[DataFrame[UserRow], ValidationConfig(on_error="warn")])
    assert schema.name == "UserRow" and config.on_error == "warn"


def test_structured_dataset_engine_writes_and_reads_a_table() -> None:
    """PanderaPandasTransformer._sd_transformer: flytekit's structured-dataset engine, round-tripping a frame."""
    engine = compat.structured_dataset_engine(_plugin())
    assert isinstance(engine, StructuredDatasetTransformerEngine)
    ctx = FlyteContextManager.current_context()
    lv = engine.to_literal(ctx, _users(), pd.DataFrame, engine.get_literal_type(pd.DataFrame))
    assert lv.scalar.structured_dataset.uri
    pd.testing.assert_frame_equal(engine.to_python_value(ctx, lv, pd.DataFrame), _users())


def test_validation_memo_is_one_set_keyed_by_uri_and_schema_name() -> None:
    """PanderaPandasTransformer._VALIDATION_MEMO: shared set of (uri, schema name); a key skips validation on read."""
    plugin = _plugin()
    memo = compat.validation_memo(plugin)
    assert isinstance(memo, set)
    assert memo is compat.validation_memo(ValidatingTransformer()) is compat.validation_memo(PanderaPandasTransformer())
    ctx = FlyteContextManager.current_context()
    expected = TypeEngine.to_literal_type(DataFrame[UserRow])
    lv = plugin.to_literal(ctx, _users(), DataFrame[UserRow], expected)
    assert (lv.scalar.structured_dataset.uri, "UserRow") in memo  # the plugin adds the key after validating

    # an invalid table written without validation is not validated on read once its key is in the memo
    engine = compat.structured_dataset_engine(plugin)
    bad = engine.to_literal(ctx, _users(qty=-1), pd.DataFrame, expected)
    with pytest.raises(SchemaErrors):
        plugin.to_python_value(ctx, bad, DataFrame[UserRow])
    memo.add((bad.scalar.structured_dataset.uri, "UserRow"))
    assert plugin.to_python_value(ctx, bad, DataFrame[UserRow])["qty"].tolist() == [-1]


def test_only_the_packs_schemas_get_the_packs_transformer() -> None:
    plugin = TypeEngine.get_transformer(DataFrame)
    assert type(plugin) is PanderaPandasTransformer  # the plugin's own registration is never replaced
    assert TypeEngine.get_transformer(DataFrame[UserRow]) is plugin
    assert TypeEngine.get_transformer(Annotated[DataFrame[UserRow], ValidationConfig(on_error="warn")]) is plugin
    assert isinstance(TypeEngine.get_transformer(DataFrame[DocumentRef]), ValidatingTransformer)
    assert isinstance(
        TypeEngine.get_transformer(Annotated[DataFrame[DocumentRef], ValidationConfig()]), ValidatingTransformer
    )
    assert compat.is_pack_schema(DataFrame[DocumentRef]) and not compat.is_pack_schema(DataFrame[UserRow])
    assert DocumentRef in compat.pack_schemas() and UserRow not in compat.pack_schemas()


def test_a_pack_schema_defined_later_gets_the_packs_transformer() -> None:
    class LateRow(compat.PackDataFrameModel):
        key: Series[str]

    assert LateRow in compat.pack_schemas()
    assert isinstance(TypeEngine.get_transformer(DataFrame[LateRow]), ValidatingTransformer)
    assert LateRow.to_schema().name == "LateRow" and list(LateRow.to_schema().columns) == ["key"]


@task
def user_rows(qty: int) -> DataFrame[UserRow]:
    return _users(qty)


@task
def total(rows: DataFrame[UserRow]) -> int:
    return int(rows["qty"].sum())


@workflow
def user_wf(qty: int = 2) -> int:
    return total(rows=user_rows(qty=qty))


@task
def doc_refs(status: str) -> DataFrame[DocumentRef]:
    return _refs(status)


def test_a_users_schema_in_a_task_goes_through_the_plugins_transformer(monkeypatch: pytest.MonkeyPatch) -> None:
    """The plugin renders its report for every table it converts; the pack's transformer skips it without Decks."""
    reports: list[str] = []
    real = pandas_transformer.PandasReportRenderer.to_html

    def spy(self: Any, *a: Any, **k: Any) -> Any:
        reports.append(self._title)
        return real(self, *a, **k)

    monkeypatch.setattr(pandas_transformer.PandasReportRenderer, "to_html", spy)
    assert user_wf(qty=2) == 2
    assert "Pandera Report: UserRow" in reports  # the plugin's path: no enable_deck, report rendered anyway
    with pytest.raises(SchemaErrors):
        user_rows(qty=-1)  # and the plugin validates it

    reports.clear()
    assert len(doc_refs(status="ok")) == 1
    assert reports == []  # the pack's path: no Decks, no report
    with pytest.raises(SchemaErrors):
        doc_refs(status="not-a-status")  # still validated


def test_a_missing_member_names_the_plugin_version_to_pin() -> None:
    with pytest.raises(CompatError, match=r"_VALIDATION_MEMO.*install flytekitplugins-pandera==1\.16\.31"):
        compat.validation_memo(object())
    with pytest.raises(CompatError, match=r"_get_pandera_schema.*install flytekitplugins-pandera==1\.16\.31"):
        compat.pandera_schema(object(), DataFrame[UserRow])


def _failures(schema: pa.DataFrameSchema, frame: pd.DataFrame) -> list[tuple[str, str, str]]:
    try:
        schema.validate(frame, lazy=True)
    except SchemaErrors as e:
        fc = e.failure_cases
        return sorted(
            zip(fc["column"].astype(str), fc["check"].astype(str), fc["failure_case"].astype(str), strict=True)
        )
    return []


@pytest.mark.parametrize(
    ("frame", "valid"),
    [
        (_refs(), True),  # string columns of pandas' string dtype
        (_refs(status="not-a-status"), False),  # a value check fails
        (_refs().astype({"name": object}).assign(name=[3]), False),  # a number in a string column (object dtype)
        (_refs().assign(name=[None]), False),  # a missing value in a non-nullable string column
        (_refs().assign(digest=[7]), False),  # a whole column of the wrong dtype
    ],
    ids=["valid", "bad-value", "number-in-strings", "missing", "wrong-dtype"],
)
def test_quick_string_checks_fail_exactly_as_pandera_does(frame: pd.DataFrame, valid: bool) -> None:
    """The quicker string dtype answers a passing column at once and leaves every failure to pandera itself."""
    stock = DocumentRef.to_schema()
    quick = compat.quick_string_checks(stock)
    assert quick is compat.quick_string_checks(stock) and quick.name == stock.name
    assert [str(c.dtype) for c in quick.columns.values()] == [str(c.dtype) for c in stock.columns.values()]
    assert (_failures(stock, frame) == []) is valid
    assert _failures(quick, frame) == _failures(stock, frame)


def test_every_path_of_the_packs_transformer_validates_with_the_quick_copy() -> None:
    """The Deck path (the plugin's own ``to_literal``) and the pack's path both look the schema up through
    ``_get_pandera_schema``: both get the quick copy, so both fail bad tables as pandera does."""
    schema, _ = compat.pandera_schema(ValidatingTransformer(), DataFrame[DocumentRef])
    assert schema is compat.quick_string_checks(DocumentRef.to_schema())
    assert schema is not DocumentRef.to_schema()
    plugin_schema, _ = compat.pandera_schema(_plugin(), DataFrame[UserRow])
    assert plugin_schema is UserRow.to_schema()  # a user's schema through the plugin's transformer: untouched
