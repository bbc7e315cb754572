"""The Cedar engine's verdict cache: the same request under the same policy set is answered from memory, exactly as
Cedar answers it; a changed policy set, schema or roles file is evaluated afresh."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cedarpy
import pytest

from flytekitplugins.aios_core.settings import get_settings
from flytekitplugins.aios_policy import cedar_engine, evaluate
from flytekitplugins.aios_policy.cedar_load import RECHECK_S

from .conftest import doc_request


@pytest.fixture
def cedar_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The number of requests each call of Cedar was given."""
    calls: list[int] = []
    real = cedarpy.is_authorized_batch

    def counted(requests: list[dict[str, Any]], *args: Any, **kwargs: Any) -> Any:
        calls.append(len(requests))
        return real(requests, *args, **kwargs)

    monkeypatch.setattr(cedarpy, "is_authorized_batch", counted)
    return calls


def test_a_repeated_request_is_answered_as_cedar_answered_it_without_evaluating_it_again(
    cedar_calls: list[int],
) -> None:
    settings = get_settings()
    requests = [doc_request(), doc_request(amount=25_000.0), doc_request(currency="XBT")]
    first = [evaluate(r, settings=settings) for r in requests]
    assert [d.effect for d in first] == ["allow", "require_approval", "deny"]
    evaluated = len(cedar_calls)
    assert evaluated >= 3
    again = [evaluate(r, settings=settings) for r in requests]
    assert len(cedar_calls) == evaluated, "a repeated request was evaluated again"
    for a, b in zip(first, again, strict=True):
        assert (a.effect, a.reasons, a.policy_ids, a.policy_set_digest, a.request_digest, a.approval) == (
            b.effect,
            b.reasons,
            b.policy_ids,
            b.policy_set_digest,
            b.request_digest,
            b.approval,
        )
    # any field of the request is part of the key: one cent more is evaluated
    assert evaluate(doc_request(amount=420.01), settings=settings).effect == "allow"
    assert len(cedar_calls) > evaluated


def test_a_changed_policy_set_is_evaluated_afresh(
    policy_copy: Path, cedar_calls: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    pdir = policy_copy
    settings = get_settings()
    assert evaluate(doc_request(), settings=settings, policy_dir=pdir).effect == "allow"
    text = (pdir / "documents.cedar").read_text(encoding="utf-8")
    forbid = (
        '\n@id("doc-no-eur")\n@reason("no EUR today")\n'
        'forbid (principal, action == Action::"act_on_document", resource)\nwhen { context.currency == "EUR" };\n'
    )
    (pdir / "documents.cedar").write_text(text + forbid, encoding="utf-8")
    from flytekitplugins.aios_policy import cedar_load

    monkeypatch.setattr(cedar_load, "RECHECK_S", 0.0)  # look at the files again now, not after RECHECK_S seconds
    assert RECHECK_S > 0
    calls = len(cedar_calls)
    decision = evaluate(doc_request(), settings=settings, policy_dir=pdir)
    assert decision.effect == "deny" and "doc-no-eur" in decision.policy_ids
    assert len(cedar_calls) > calls


def test_a_caller_changing_its_verdict_does_not_change_the_next_answer() -> None:
    from flytekitplugins.aios_policy.cedar_load import load_policy_set
    from flytekitplugins.aios_policy.decide import policy_source
    from flytekitplugins.aios_policy.request import coerce_request

    engine = cedar_engine.CedarEngine()
    source = policy_source(get_settings(), None)
    request = coerce_request(doc_request())
    (first,) = engine.decide([request], source)
    first.reasons.append("tampered")
    first.policy_ids.clear()
    (second,) = engine.decide([request], source)
    assert "tampered" not in second.reasons and second.policy_ids
    assert second.policy_set_digest == load_policy_set(source).digest


def test_the_cache_keeps_at_most_its_size_and_the_newest(
    monkeypatch: pytest.MonkeyPatch, cedar_calls: list[int]
) -> None:
    monkeypatch.setattr(cedar_engine, "VERDICT_CACHE_SIZE", 5)
    settings = get_settings()
    for i in range(12):
        evaluate(doc_request(amount=100.0 + i), settings=settings)
    assert len(cedar_engine._verdicts) == 5
    calls = len(cedar_calls)
    evaluate(doc_request(amount=111.0), settings=settings)  # among the newest five: answered from the cache
    assert len(cedar_calls) == calls
    evaluate(doc_request(amount=100.0), settings=settings)  # the oldest, dropped: evaluated again
    assert len(cedar_calls) > calls
    assert len(cedar_engine._verdicts) == 5


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_a_request_cedar_refuses_is_not_answered_as_its_twin_without_the_value(bad: float) -> None:
    """Re-review R32a: keyed by the request's digest, which writes NaN and infinities as null (an absent value), a
    promotion whose ``no_skill_delta`` was NaN got the verdict of the same promotion without it (require_approval)
    once that had been asked; a cold engine denies it (not a finite number). The key is what Cedar is handed."""
    settings = get_settings()

    def promotion(no_skill_delta: float | None) -> dict[str, Any]:
        context = {"accuracy_delta": 0.01, "drift_passed": True, "no_skill_delta": no_skill_delta}
        return {
            "principal": "service:retraining",
            "action": "promote_model",
            "resource": {"type": "Model", "id": "fraud@v9"},
            "context": context,
        }

    assert evaluate(promotion(None), settings=settings).effect == "require_approval"
    decision = evaluate(promotion(bad), settings=settings)
    assert decision.effect == "deny" and "must be a finite number" in " ".join(decision.reasons)
