"""Fixtures of the security tests that post through the system of record."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def sor(aios_env: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This test's system-of-record database (``AIOS_SYSTEM_OF_RECORD_URL``); a served call reads its data frame
    only from the operator's folders: here, where this test's frames are written."""
    from flytekit import FlyteContextManager

    db = aios_env / "system_of_record.db"
    monkeypatch.setenv("AIOS_SYSTEM_OF_RECORD_URL", f"sqlite:///{db}")
    monkeypatch.setenv("AIOS_CONNECTOR_INPUT_DIRS", FlyteContextManager.current_context().file_access.raw_output_prefix)
    return db
