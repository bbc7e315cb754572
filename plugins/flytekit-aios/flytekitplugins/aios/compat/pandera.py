"""flytekitplugins-pandera's transformer internals the pack uses, and the marker of the pack's own schemas.

The pack converts its tables with a subclass of flytekitplugins-pandera's ``PanderaPandasTransformer``
(``tasks.documents.schemas.ValidatingTransformer``) that reaches three private members of it: the schema
lookup, the structured-dataset engine and the validation memo. Each is behind one function here, pinned by
``tests/compat/test_pandera_compat.py``.

The pack's transformer applies to the pack's schemas only: a schema is the pack's when its model derives from
:class:`PackDataFrameModel`. :func:`use_for_pack_schemas` registers the transformer with flytekit's public
``TypeEngine.register_additional_type`` for the exact type ``DataFrame[S]`` of each such schema ``S`` (those
defined already and those defined later). ``TypeEngine`` looks a generic type up exactly before it falls back
to its origin, so ``DataFrame[S]`` of any other schema (a user's own) still finds flytekitplugins-pandera's
original transformer registered for ``pandera.typing.DataFrame``, which the pack never replaces.
"""

from __future__ import annotations

import typing
from typing import Any

import numpy as np
import pandera.pandas as pa
from flytekit.core.type_engine import TypeEngine, TypeTransformer
from pandera.engines import pandas_engine
from pandera.typing import DataFrame

from flytekitplugins.aios.compat import CompatError, missing_member
from flytekitplugins.pandera.pandas_transformer import PanderaPandasTransformer

DISTRIBUTION = "flytekitplugins-pandera"
CHECKED_ON = "1.16.31"
"""The flytekitplugins-pandera version every member below was checked on (with pandera 0.35.0)."""

_PACK_SCHEMAS: list[type[pa.DataFrameModel]] = []
_PACK_TRANSFORMER: list[TypeTransformer[Any]] = []  # at most one: the transformer of the pack's schemas


def _missing(member: str, relies_on: str) -> CompatError:
    return missing_member(DISTRIBUTION, member, CHECKED_ON, relies_on)


def pandera_schema(transformer: Any, python_type: Any) -> tuple[pa.DataFrameSchema, Any]:
    """The pandera schema and the ``ValidationConfig`` of a ``DataFrame[S]`` annotation.

    Private member: ``flytekitplugins.pandera.PanderaPandasTransformer._get_pandera_schema``; checked on
    flytekitplugins-pandera 1.16.31 (pandera 0.35.0).

    The pack relies on: for ``DataFrame[S]`` it returns ``(S.to_schema(), ValidationConfig())``; for
    ``Annotated[DataFrame[S], ValidationConfig(on_error=...)]`` the config is the annotation's, so the
    pack's transformer validates exactly as the plugin does (same schema, same ``on_error``).
    """
    lookup = getattr(transformer, "_get_pandera_schema", None)
    if lookup is None:
        raise _missing("PanderaPandasTransformer._get_pandera_schema", "read a table's schema and on_error setting")
    schema, config = lookup(python_type)
    return schema, config


def structured_dataset_engine(transformer: Any) -> Any:
    """The structured-dataset engine the transformer reads and writes tables with.

    Private member: ``flytekitplugins.pandera.PanderaPandasTransformer._sd_transformer`` (set in ``__init__``);
    checked on flytekitplugins-pandera 1.16.31.

    The pack relies on: it is flytekit's ``StructuredDatasetTransformerEngine``, so a ``pandas.DataFrame``
    written with ``to_literal(ctx, df, pandas.DataFrame, expected)`` is the same structured-dataset literal
    (parquet in the blob store) the plugin writes, and ``to_python_value`` reads it back.
    """
    from flytekit.types.structured.structured_dataset import StructuredDatasetTransformerEngine

    engine = getattr(transformer, "_sd_transformer", None)
    if not isinstance(engine, StructuredDatasetTransformerEngine):
        raise _missing("PanderaPandasTransformer._sd_transformer", "write and read tables as the plugin does")
    return engine


def validation_memo(transformer: Any) -> set[tuple[str, str]]:
    """The set of tables this process has already validated, keyed ``(structured dataset uri, schema name)``.

    Private member: ``flytekitplugins.pandera.PanderaPandasTransformer._VALIDATION_MEMO`` (a class attribute);
    checked on flytekitplugins-pandera 1.16.31.

    The pack relies on: one ``set`` shared by every instance of the plugin's transformer and its subclasses;
    the plugin adds ``(uri, schema.name)`` after writing a validated table and skips validation when reading
    a table whose key is in it. The pack adds and checks the same keys, so a table validated on write (by
    either transformer) is not validated again on read.
    """
    memo = getattr(transformer, "_VALIDATION_MEMO", None)
    if not isinstance(memo, set):
        raise _missing("PanderaPandasTransformer._VALIDATION_MEMO (a set)", "skip re-validating a table just written")
    return memo


class _WholeString(pandas_engine.STRING):
    """pandera's string dtype, answering "all of them" once when every element passes.

    pandera 0.35.0's ``STRING.check`` answers a string column of the exact string dtype with one ``True`` per
    element, and its dtype check then builds a failure-case table and a message that prints it (an empty
    DataFrame's repr) for every such column, passed or not: half the time of validating the pipeline's tables.
    When every element passes this answers ``True`` (what pandera answers a whole column of a matching
    non-string dtype with); otherwise pandera's own per-element answer, so failures are reported exactly as
    before.
    """

    def check(self, pandera_dtype: Any, data_container: Any = None) -> Any:
        result = super().check(pandera_dtype, data_container)
        if not isinstance(result, bool) and bool(np.all(np.asarray(result))):
            return True
        return result


_QUICK: dict[int, tuple[pa.DataFrameSchema, pa.DataFrameSchema]] = {}


def quick_string_checks(schema: pa.DataFrameSchema) -> pa.DataFrameSchema:
    """``schema`` with its string columns checked as :class:`_WholeString` (same checks, same failures).

    One copy per schema object, made on first use (the pack's schemas are a handful of class attributes).
    """
    known = _QUICK.get(id(schema))
    if known is not None and known[0] is schema:
        return known[1]
    strings = {
        name: {"dtype": _WholeString(col.dtype.storage)}
        for name, col in schema.columns.items()
        if type(col.dtype) is pandas_engine.STRING
    }
    quick = schema.update_columns(strings) if strings else schema
    _QUICK[id(schema)] = (schema, quick)
    return quick


class QuickStringsTransformer(PanderaPandasTransformer):
    """flytekitplugins-pandera's transformer with its schema lookup answering :func:`quick_string_checks` copies.

    Private member overridden: ``PanderaPandasTransformer._get_pandera_schema`` (see :func:`pandera_schema`);
    every path of the plugin (validating on write and on read, the Deck report) looks the schema up through it,
    so each validates with the same checks, string columns quicker.
    """

    def _get_pandera_schema(self, python_type: Any) -> tuple[pa.DataFrameSchema, Any]:
        schema, config = super()._get_pandera_schema(python_type)
        return quick_string_checks(schema), config


class PackDataFrameModel(pa.DataFrameModel):
    """Base of the pack's table schemas: ``DataFrame[S]`` of a subclass converts through the pack's transformer.

    Derive every pandera model of the pack from this class (not from ``pandera.DataFrameModel`` directly); it
    adds no column and no check. A subclass defined anywhere (a user's subclass of a pack schema included)
    counts as the pack's.
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)  # type: ignore[no-untyped-call]
        _PACK_SCHEMAS.append(cls)
        for transformer in _PACK_TRANSFORMER:
            _register(transformer, cls)


def _register(transformer: TypeTransformer[Any], model: type[pa.DataFrameModel]) -> None:
    TypeEngine.register_additional_type(transformer, DataFrame[model], override=True)  # type: ignore[valid-type]


def use_for_pack_schemas(transformer: TypeTransformer[Any]) -> None:
    """Convert ``DataFrame[S]`` with ``transformer`` for every pack schema ``S``, now and defined later.

    Every other ``DataFrame[...]`` keeps flytekitplugins-pandera's transformer. Calling it again replaces the
    pack's transformer (the last call wins).
    """
    _PACK_TRANSFORMER[:] = [transformer]
    for model in _PACK_SCHEMAS:
        _register(transformer, model)


def is_pack_schema(python_type: Any) -> bool:
    """True when ``python_type`` is ``DataFrame[S]`` (or ``Annotated[DataFrame[S], ...]``) of a pack schema."""
    if typing.get_origin(python_type) is typing.Annotated:
        python_type = typing.get_args(python_type)[0]
    if typing.get_origin(python_type) is not DataFrame:
        return False
    args = typing.get_args(python_type)
    return bool(args) and isinstance(args[0], type) and issubclass(args[0], PackDataFrameModel)


def pack_schemas() -> tuple[type[pa.DataFrameModel], ...]:
    """The pack's schemas defined so far (subclasses of :class:`PackDataFrameModel`), in definition order."""
    return tuple(_PACK_SCHEMAS)


__all__ = [
    "CHECKED_ON",
    "PackDataFrameModel",
    "is_pack_schema",
    "pack_schemas",
    "pandera_schema",
    "structured_dataset_engine",
    "use_for_pack_schemas",
    "validation_memo",
]
