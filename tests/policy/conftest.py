"""Helpers for the policy tests: request builders and audit-trail readers."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flytekitplugins.aios_core.settings import get_settings

REPO = Path(__file__).resolve().parents[2]
POLICIES = REPO / "config" / "policies"


def doc_request(**context: Any) -> dict[str, Any]:
    """A valid act_on_document request (small internal invoice), with context overrides."""
    ctx = {"amount": 420.0, "currency": "EUR", "data_class": "internal", "doc_type": "invoice", "confidence": 0.93}
    ctx.update(context)
    return {
        "principal": "service:document-pipeline",
        "action": "act_on_document",
        "resource": {"type": "Document", "id": "sha256:feed"},
        "context": ctx,
    }


def policy_records() -> list[Any]:
    """Every policy_decision record in this test's audit store, in order."""
    from flytekitplugins.aios_audit import audit_log

    return [r for r in audit_log(get_settings()).scan() if r.event.kind == "policy_decision"]


@pytest.fixture(autouse=True)
def _fresh_policy_cache() -> Iterator[None]:
    from flytekitplugins.aios_policy.cedar_engine import clear_verdicts
    from flytekitplugins.aios_policy.cedar_load import clear_cache

    clear_cache()
    clear_verdicts()
    yield
    clear_cache()
    clear_verdicts()


@pytest.fixture
def policy_copy(tmp_path: Path) -> Path:
    """A writable copy of config/policies (without its tests) for tests that break policies."""
    dst = tmp_path / "policies"
    shutil.copytree(POLICIES, dst, ignore=shutil.ignore_patterns("tests"))
    return dst
