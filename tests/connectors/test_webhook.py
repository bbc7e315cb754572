"""Unit tests of the signed webhook client: signature, bounded backoff, redaction, fail-closed configuration."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import random

import httpx
import pytest

from flytekitplugins.aios_connectors.webhook import RetryPolicy, WebhookError, WebhookTarget, load_target, post_json
from flytekitplugins.aios_core.errors import ConfigError


def test_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    from flytekitplugins.aios_connectors.webhook import sign

    want = hmac.new(b"k", b"1700000000.{}", hashlib.sha256).hexdigest()
    assert sign("k", "1700000000", b"{}") == "sha256=" + want
    assert sign("k", "1700000001", b"{}") != sign("k", "1700000000", b"{}")  # the timestamp is covered


def test_backoff_grows_exponentially_within_jitter_bounds_and_is_capped() -> None:
    p = RetryPolicy(attempts=6, base_delay_s=0.5, max_delay_s=4.0)
    rng = random.Random(7)
    for retry, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (5, 4.0)]:
        samples = [p.delay(retry, rng) for _ in range(200)]
        assert min(samples) >= ceiling / 2 and max(samples) <= ceiling
        assert len(set(samples)) > 100  # jittered, not a fixed schedule


@pytest.mark.parametrize(
    "kwargs",
    [
        {"attempts": 0},
        {"attempts": 11},
        {"base_delay_s": 5, "max_delay_s": 1},
        {"timeout_s": 0},
        # NaN passed every comparison and infinity waited for ever
        {"base_delay_s": float("nan")},
        {"max_delay_s": float("nan")},
        {"max_delay_s": float("inf")},
        {"timeout_s": float("nan")},
        {"timeout_s": float("inf")},
        # a template is its sender's: a delivery of 10 attempts of a day each held the service's call for days
        {"attempts": 10, "timeout_s": 86_400.0},
        {"attempts": 10, "base_delay_s": 1.0, "max_delay_s": 3_600.0},
    ],
)
def test_retry_bounds_are_validated(kwargs) -> None:
    with pytest.raises(ValueError, match="RetryPolicy"):
        RetryPolicy(**kwargs)


def test_the_longest_allowed_delivery_is_ten_minutes() -> None:
    assert RetryPolicy(attempts=10, timeout_s=55.0, base_delay_s=1.0, max_delay_s=5.0).worst_case_s() <= 600
    assert RetryPolicy().worst_case_s() < 60  # the default fits propeller's CreateTask timeout (deploy/)


def test_secret_and_url_path_stay_out_of_repr_and_origin() -> None:
    t = WebhookTarget(url="https://user:pw@hooks.example.com/services/T0/B0/XYZ", secret="s3cr3t")
    assert t.origin == "https://hooks.example.com"
    assert "s3cr3t" not in repr(t)


def _run_with(handler, attempts: int = 3) -> tuple[list[httpx.Request], object]:
    seen: list[httpx.Request] = []

    def wrapped(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request)

    sleeps: list[float] = []

    async def fake_sleep(s: float) -> None:
        sleeps.append(s)

    target = WebhookTarget(url="https://hooks.example.com/x/TOKEN", secret="s3cr3t")
    policy = RetryPolicy(attempts=attempts, base_delay_s=0.1, max_delay_s=1.0)
    coro = post_json(
        target, {"a": 1}, idempotency_key="k", policy=policy, transport=httpx.MockTransport(wrapped), sleep=fake_sleep
    )
    try:
        result: object = asyncio.run(coro)
    except WebhookError as e:
        result = e
    return seen, (result, sleeps)


def test_client_errors_are_not_retried() -> None:
    seen, (err, sleeps) = _run_with(lambda r: httpx.Response(403))
    assert len(seen) == 1 and sleeps == []
    assert isinstance(err, WebhookError) and err.status == 403 and "after 1 attempt(s)" in str(err)
    assert "TOKEN" not in str(err) and "s3cr3t" not in str(err)


def test_429_and_5xx_are_retried_with_growing_backoff() -> None:
    codes = iter([429, 503, 502, 500])
    seen, (err, sleeps) = _run_with(lambda r: httpx.Response(next(codes)), attempts=4)
    assert len(seen) == 4 and len(sleeps) == 3
    assert 0.05 <= sleeps[0] <= 0.1 and 0.1 <= sleeps[1] <= 0.2 and 0.2 <= sleeps[2] <= 0.4
    assert isinstance(err, WebhookError) and err.attempts == 4 and "HTTP 500" in str(err)


def test_success_returns_the_receivers_json() -> None:
    seen, (result, _) = _run_with(lambda r: httpx.Response(201, json={"id": "T-1", "url": "https://t/1"}))
    assert result == {"id": "T-1", "url": "https://t/1"}
    assert seen[0].headers["Idempotency-Key"] == "k" and seen[0].headers["X-AIOS-Signature"].startswith("sha256=")


def test_missing_configuration_fails_closed_naming_the_variables(monkeypatch) -> None:
    monkeypatch.delenv("AIOS_APPROVAL_WEBHOOK_URL", raising=False)
    monkeypatch.delenv("AIOS_APPROVAL_WEBHOOK_SECRET", raising=False)
    with pytest.raises(ConfigError, match="AIOS_APPROVAL_WEBHOOK_URL, AIOS_APPROVAL_WEBHOOK_SECRET unset"):
        load_target()


def test_plain_http_is_refused_except_loopback_or_explicit_opt_in(monkeypatch) -> None:
    monkeypatch.setenv("AIOS_APPROVAL_WEBHOOK_SECRET", "s3cr3t")
    monkeypatch.setenv("AIOS_APPROVAL_WEBHOOK_URL", "http://tickets.internal/hook")
    with pytest.raises(ConfigError, match="must use https") as e:
        load_target()
    assert "s3cr3t" not in str(e.value)
    monkeypatch.setenv("AIOS_APPROVAL_WEBHOOK_ALLOW_HTTP", "true")
    assert load_target().origin == "http://tickets.internal"
    monkeypatch.delenv("AIOS_APPROVAL_WEBHOOK_ALLOW_HTTP")
    monkeypatch.setenv("AIOS_APPROVAL_WEBHOOK_URL", "http://127.0.0.1:9/hook")
    assert load_target().url.endswith("/hook")
