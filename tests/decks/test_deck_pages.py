"""Every Deck of the drift check, the evaluation and the promotion decision, rendered in headless Chromium.

The Decks come from the real tasks on real data (VADER text, MiniLM embeddings, trained heads); each is
written as the page Flyte serves (flytekit's deck template) and screenshotted. Screenshots stay under
tmp_path and are copied to ``$AIOS_TEST_ARTIFACTS`` when set.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flytekit.core.context_manager import FlyteContextManager
from flytekit.deck.deck import get_deck_template

from tests.lineage.chromium import open_page, screenshot

pytestmark = pytest.mark.slow


def capture(fn: Callable[..., Any], **kwargs: Any) -> tuple[Any, dict[str, str]]:
    """Run a task's function; return its result and the Decks it published ({name: html})."""
    decks = FlyteContextManager.current_context().user_space_params.decks
    before = len(decks)
    out = fn(**kwargs)
    return out, {d.name: d.html for d in decks[before:]}


def render(name: str, body: str, folder: Path) -> tuple[str, Path]:
    """Write one Deck as Flyte serves it, open and screenshot it in Chromium; (the tab's visible text, screenshot)."""
    page = folder / f"{re.sub(r'[^a-z0-9]+', '-', name)}.html"
    nav = f'<li onclick="handleLinkClick(this)">{name}</li>'
    page.write_text(get_deck_template().substitute(NAV_HTML=nav, BODY_HTML=f"<div>{body}</div>"), encoding="utf-8")
    dom, errors = open_page(page)
    assert errors == [] and "flyte-frame-container" in dom, errors
    png = screenshot(page, folder / f"deck-{page.stem}.png")
    assert png.stat().st_size > 20_000, f"{png} looks blank"
    text = re.sub(r"<[^>]+>", " ", re.sub(r"<svg.*?</svg>", " ", body, flags=re.S))  # the tab's visible text
    assert "Resolved(" not in text and "Promise" not in text, name
    return text, png


def test_drift_decks_say_what_each_result_means(tmp_path: Path) -> None:
    from tasks.drift.check import check_quality, measure_drift
    from tasks.evaluation.data import load_vader, split

    ref = split(load_vader("tweets"), (150,), 0)[0]
    cur = split(load_vader("movieReviewSnippets"), (150,), 1)[0]
    quality, decks = capture(
        check_quality.task_function, reference=ref, current=cur, suite="vader_text", dataset="vader-tweets"
    )
    report, more = capture(
        measure_drift.task_function, reference=ref, current=cur, quality=quality, dataset="vader-tweets",
        columns=["score"], text_column="text", model_dir="", psi_threshold=0.03, js_threshold=0.1,
        wasserstein_threshold=0.2, text_sample=150,
    )  # fmt: skip
    decks.update(more)
    assert set(decks) == {"quality", "drift", "features", "text"}
    pages = {name: render(name, body, tmp_path)[0] for name, body in decks.items()}

    q = pages["quality"]
    assert "What this means" in q and "both batches meet every expectation" in q
    for e in quality[0].expectations:  # every expectation that ran is named, with its rows
        assert e.expectation in q
    assert "of 150" in q and "<svg" in decks["quality"]
    d = pages["drift"]
    assert "What this means" in d and "vader-tweets" in d
    assert ("shifted" in d) or ("no meaningful change" in d) or ("real but small" in d) or ("may be chance" in d)
    t = pages["text"]
    assert "What this means" in t and "domain AUC" in t and "{" not in t  # a reading and a chart, not raw JSON
    assert report.embedding is not None and ("DETECTED" in decks["text"]) == report.embedding.drifted


def test_evaluation_decks_show_the_real_decision_and_readable_heatmaps(tmp_path: Path, monkeypatch) -> None:
    from tasks.evaluation.tasks import decide_promotion, evaluate_pair
    from tasks.evaluation.train import register_models, train_vader_models
    from workflows.evaluation import publish_decision

    monkeypatch.setenv("AIOS_PRINCIPAL", "service:retraining")
    s = train_vader_models.task_function(
        source="tweets", name="deck-model", n_weak=20, n_strong=120, n_test=120, seed=0
    )
    register_models.task_function(models=[s.weak, s.strong], owner="team:ml-platform")
    evaluated, decks = capture(
        evaluate_pair.task_function, candidate=s.strong, champion=s.weak, test=s.test, dataset="vader-tweets",
        drift_record="", alpha=0.05, latency_sample=8, cpu_price_per_hour=0.048,
    )  # fmt: skip
    decided = decide_promotion.task_function(report=evaluated)
    final, more = capture(publish_decision.task_function, report=decided)
    decks.update(more)
    assert set(decks) == {"evaluation", "decision"}
    pages = {name: render(name, body, tmp_path)[0] for name, body in decks.items()}

    assert "decision: pending" in pages["evaluation"] and "decision: keep" not in pages["evaluation"]
    assert f"decision: {final.decision}" in pages["decision"] and "What this means" in pages["decision"]
    for body in decks.values():  # matplotlib writes each text as a comment next to its glyphs
        assert "<!-- true label -->" in body and "<!-- predicted label -->" in body
        assert "fill: #ffffff" in body  # counts on dark cells are white
