"""Validation of emitted events: the OpenLineage 2-0-2 RunEvent schema and the pack's custom facet schemas."""

from __future__ import annotations

import datetime as dt
import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

from flytekitplugins.aios_audit.lineage_events import SCHEMA_BASE, SCHEMA_DIR

OL_SCHEMA = Path(__file__).resolve().parents[1] / "audit" / "openlineage-2-0-2-runevent.schema.json"
_FORMATS = jsonschema.Draft202012Validator.FORMAT_CHECKER


@cache
def _validator(path: Path) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(json.loads(path.read_text(encoding="utf-8")), format_checker=_FORMATS)


def facet_schema_file(schema_url: str) -> Path:
    """The shipped JSON Schema file a custom facet's ``_schemaURL`` resolves to (fails if it is not shipped)."""
    assert schema_url.startswith(SCHEMA_BASE), schema_url
    name = schema_url.removeprefix(SCHEMA_BASE).split("#", 1)[0]
    path = SCHEMA_DIR / name
    assert path.is_file(), f"{schema_url} names {path}, which is not shipped"
    return path


def validate_event(event: dict[str, Any]) -> None:
    """Validate a RunEvent and every custom (``aios_*``) facet against its own schema."""
    _validator(OL_SCHEMA).validate(event)
    dt.datetime.fromisoformat(event["eventTime"])  # format date-time is not checked without extra packages
    for key, facet in event["run"].get("facets", {}).items():
        if key.startswith("aios_"):
            _validator(facet_schema_file(facet["_schemaURL"])).validate({key: facet})
