"""Hermetic set-up of the Flyte 2 adapter's tests (run in .venv-flyte2: flyte 2.x, the core, no flytekit).

Every test gets its own state dir, SQLite audit store, HOME, TMPDIR and cwd, the repository's config/ (policies and
roles.yaml unchanged) and the document pipeline's principal; the pack's per-process caches are cleared around it.
"""

from __future__ import annotations

import importlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]


def _clear_process_caches() -> None:
    from flytekitplugins.aios_audit import close_all
    from flytekitplugins.aios_core.settings import reset_settings

    close_all()
    reset_settings()
    importlib.import_module("flytekitplugins.aios_policy.cedar_load").clear_cache()
    importlib.import_module("flytekitplugins.aios_policy.record")._versions.clear()


@pytest.fixture(scope="session", autouse=True)
def flyte_initialised() -> None:
    """``flyte.init()`` once: local mode needs no cluster and no config."""
    import flyte

    flyte.init()


@pytest.fixture(autouse=True)
def aios_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Isolated state per test; the acting principal is the document pipeline's service."""
    state, tmp, home = tmp_path / "aios-state", tmp_path / "tmp", tmp_path / "home"
    for d in (state, tmp, home):
        d.mkdir()
    for var in [v for v in os.environ if v.startswith(("AIOS_", "FLYTE_INTERNAL_", "_F_", "OTEL_"))]:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AIOS_STATE_DIR", str(state))
    monkeypatch.setenv("AIOS_CONFIG_DIR", str(REPO / "config"))
    monkeypatch.setenv("AIOS_AUDIT_STORE", f"sqlite:///{state}/audit.db")
    monkeypatch.setenv("AIOS_PRINCIPAL", "service:document-pipeline")
    monkeypatch.setenv("TMPDIR", str(tmp))
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    monkeypatch.chdir(tmp_path)
    _clear_process_caches()
    yield state
    _clear_process_caches()
