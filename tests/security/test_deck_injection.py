"""A launcher's text never runs as script in a Deck people open in the console (review of 2026-12-06).

flytekit's Input and Output Deck pages write ``str()`` of each value into the page unescaped. The approval gate's
verification task showed its Input page, so a request id launched as ``<img src=x onerror=...>`` ran in the Deck
approvers open; every governed task with a Deck had both pages, and the evaluation's decision table put the model
names of a hand-typed report into the page as they were. Each Deck here is the file flytekit writes, opened in
headless Chromium: the payload would set the page title.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flytekit.core.context_manager import FlyteContextManager

from tests.lineage.chromium import open_page

pytestmark = [pytest.mark.slow, pytest.mark.chromium]


def _payload(tag: str) -> str:
    return f"<img src=x onerror=document.title=/XSS-{tag}/.source>"


def _decks_of(run: Callable[[], Any]) -> list[Path]:
    """The deck.html files flytekit wrote for the local task executions ``run`` made."""
    root = Path(FlyteContextManager.current_context().file_access.local_sandbox_dir)
    since = time.time() - 1
    run()
    found = [p for p in root.rglob("deck.html") if p.stat().st_mtime >= since]
    assert found, f"no deck.html under {root}"
    return found


def _assert_inert(decks: list[Path], tag: str) -> None:
    for deck in decks:
        assert _payload(tag) not in deck.read_text(encoding="utf-8"), deck  # was written raw
        dom, _errors = open_page(deck)
        title = re.search(r"<title>([^<]*)</title>", dom)
        assert f"XSS-{tag}" not in (title.group(1) if title else ""), deck  # the script did not run


def test_a_request_id_typed_at_launch_is_not_markup_in_the_approval_deck() -> None:
    from flytekitplugins.aios.approval_gate import verify_approvals

    outcomes: list[Any] = []
    decks = _decks_of(
        lambda: outcomes.extend(verify_approvals(gate="payment-signoff", request_ids=[_payload("approvals")]))
    )
    assert [o.status for o in outcomes] == ["refused"]
    _assert_inert(decks, "approvals")


def test_model_names_in_a_hand_typed_report_are_not_markup_in_the_decision_deck() -> None:
    from tasks.evaluation.metrics import ModelFigures
    from tasks.evaluation.report import Comparison, EvaluationReport
    from workflows.evaluation import publish_decision

    fig: dict[str, Any] = {
        "digest": "sha256:" + "0" * 64, "accuracy": 0.9, "macro_f1": 0.9, "per_class": {}, "confusion": [[1]],
        "labels": ["a"], "ece": 0.0, "reliability": [], "latency_ms_p50": 1, "latency_ms_p95": 1,
        "latency_ms_p99": 1, "cpu_s_per_doc": 0.1, "cost_per_1k_docs_usd": 0.1,
    }  # fmt: skip
    report = EvaluationReport(
        dataset="vader",
        n_test=100,
        test_digest="sha256:" + "1" * 64,
        candidate=ModelFigures(model="doc-type@2", **fig),
        champion=ModelFigures(model=_payload("decision"), **fig),
        comparison=Comparison(
            accuracy_delta=0.1,
            macro_f1_delta=0.1,
            ece_delta=0,
            champion_only_correct=0,
            candidate_only_correct=5,
            mcnemar_p=0.01,
            bootstrap_ci=[0.0, 0.2],
            significant=True,
        ),
        drift_passed=True,
        decision="promote",
        approval_request_id=_payload("decision"),
    )
    _assert_inert(_decks_of(lambda: publish_decision(report=report)), "decision")


def test_a_column_name_is_not_markup_in_the_drift_deck(tmp_path: Path) -> None:
    """The drift Deck's first sentence names the features that shifted: column names of the launcher's data frames
    and its ``columns`` input, written into the page as they were (a re-review of the day's fixes)."""
    from types import SimpleNamespace

    from flytekit.deck.deck import get_deck_template

    from tasks.drift.deck_pages import overall_meaning

    name = _payload("drift")
    report = SimpleNamespace(drifted_features=[name], features=[object()], embedding=None, drifted=True)
    page = tmp_path / "deck.html"
    nav = '<li onclick="handleLinkClick(this)">drift</li>'
    body = overall_meaning(report)  # type: ignore[arg-type]
    page.write_text(get_deck_template().substitute(NAV_HTML=nav, BODY_HTML=f"<div>{body}</div>"), encoding="utf-8")
    _assert_inert([page], "drift")
