"""Dataset names by the OpenLineage naming spec; exporter selection from the standard OTEL_* variables."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from flytekitplugins.aios_audit.lineage_datasets import datasets, locate
from flytekitplugins.aios_audit.otel import exporter_kind, resource


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("s3://bucket/inbox/a.pdf", ("s3://bucket", "inbox/a.pdf")),
        ("gs://b/k/x.parquet", ("gs://b", "k/x.parquet")),
        (
            "postgresql://user:secret@db.internal:6432/erp/public/invoices",
            ("postgres://db.internal:6432", "erp.public.invoices"),
        ),
        ("file:///data/in/a.txt", ("file", "/data/in/a.txt")),
        ("https://example.com/page", None),  # not a data store scheme
        ("plain text, not a location", None),
        (42, None),
    ],
)
def test_locate_follows_the_naming_spec(value: object, expected: tuple[str, str] | None) -> None:
    assert locate(value) == expected
    if expected is not None:
        assert "secret" not in "".join(expected) and "user" not in "".join(expected)


def test_flyte_file_and_frame_columns(tmp_path: Path) -> None:
    from flytekit.types.file import FlyteFile
    from flytekit.types.structured import StructuredDataset

    doc = tmp_path / "a.txt"
    doc.write_text("x")
    frame = pd.DataFrame({"amount": [1.5], "vendor": ["acme"]})
    sd = StructuredDataset(dataframe=frame, uri="s3://lake/invoices/2026")
    found = datasets({"doc": FlyteFile(str(doc)), "rows": sd, "n": 3}, {"doc": "sha256:" + "a" * 64})
    assert [(d.namespace, d.name) for d in found] == [("file", str(doc)), ("s3://lake", "invoices/2026")]
    assert found[0].digest == "sha256:" + "a" * 64
    assert [n for n, _ in found[1].fields] == ["amount", "vendor"] and found[1].fields[0][1] == "float64"


def test_standard_otel_variables_win(monkeypatch: pytest.MonkeyPatch) -> None:
    assert exporter_kind("none") == "none"
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console")
    assert exporter_kind("otlp") == "console"
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    assert exporter_kind("otlp") == "none"


def test_service_name_and_resource_attributes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    monkeypatch.delenv("OTEL_RESOURCE_ATTRIBUTES", raising=False)
    assert resource().attributes["service.name"] == "flyte-aios"
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "service.name=from-attrs,deployment.environment=prod")
    assert resource().attributes["service.name"] == "from-attrs"
    monkeypatch.setenv("OTEL_SERVICE_NAME", "x")
    res = resource().attributes
    assert res["service.name"] == "x" and res["deployment.environment"] == "prod"
