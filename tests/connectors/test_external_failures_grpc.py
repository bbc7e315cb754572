"""An external system that fails or hangs: bounded retries with backoff, clear errors, call deadlines, no leaks."""

from __future__ import annotations

import time

import grpc
import pytest
from flyteidl.core.execution_pb2 import TaskExecution

from flytekitplugins.aios_connectors import ApprovalNotificationConfig, ApprovalNotificationTask
from tests.connectors.conftest import WEBHOOK_SECRET
from tests.connectors.harness import Hook
from tests.connectors.test_approval_connector_grpc import _create, _get, _open

pytestmark = pytest.mark.slow


def test_http_500s_are_retried_then_fail_naming_status_and_attempts(channel, hook: Hook, shared_state) -> None:
    hook.reset("fail")
    rid = _open("sha256:" + "1" * 64)
    start = time.monotonic()
    with pytest.raises(grpc.RpcError) as e:
        _create(channel, rid)
    assert e.value.code() == grpc.StatusCode.INTERNAL
    details = e.value.details()
    assert "failed after 3 attempt(s)" in details and "HTTP 500" in details
    assert len(hook.received) == 3  # bounded: exactly the configured attempts
    assert time.monotonic() - start < 10
    assert WEBHOOK_SECRET not in details and "T0KEN-in-path" not in details  # origin only, never the path


def test_transient_failures_recover_within_the_attempts(channel, hook: Hook, shared_state) -> None:
    hook.reset("flaky", fail_first=2)
    rid = _open("sha256:" + "2" * 64)
    meta = _create(channel, rid)
    assert len(hook.received) == 3
    # every retry is the same notification: same idempotency key, same body
    assert {r["headers"]["Idempotency-Key"] for r in hook.received} == {rid}
    assert len({r["body"] for r in hook.received}) == 1
    assert _get(channel, meta).message.startswith("waiting for payment-signoff")


def test_a_slow_receiver_times_out_per_attempt(channel, hook: Hook, shared_state) -> None:
    hook.reset("sleep", sleep_s=2.0)
    slow = ApprovalNotificationTask(
        name="grpc_notify_slow", config=ApprovalNotificationConfig(attempts=2, base_delay_s=0.05, http_timeout_s=0.3)
    )
    rid = _open("sha256:" + "3" * 64)
    with pytest.raises(grpc.RpcError) as e:
        _create(channel, rid, task=slow)
    assert "failed after 2 attempt(s)" in e.value.details() and "ReadTimeout" in e.value.details()


def test_a_call_deadline_is_enforced_and_the_server_stays_healthy(channel, hook: Hook, shared_state) -> None:
    hook.reset("sleep", sleep_s=3.0)
    rid = _open("sha256:" + "4" * 64)
    start = time.monotonic()
    with pytest.raises(grpc.RpcError) as e:
        _create(channel, rid, timeout=0.5)
    assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert time.monotonic() - start < 2
    hook.reset("ok")
    meta = _create(channel, _open("sha256:" + "7" * 64))  # the next call is served normally
    assert _get(channel, meta).phase == TaskExecution.RUNNING


def test_the_webhook_secret_never_reaches_logs_or_errors(connector, channel, hook: Hook, shared_state) -> None:
    hook.reset("fail")
    with pytest.raises(grpc.RpcError):
        _create(channel, _open("sha256:" + "6" * 64))
    log = connector.log_text()
    assert "failed after 3 attempt(s)" in log  # the failure is logged ...
    assert WEBHOOK_SECRET not in log  # ... without the secret
    assert "T0KEN-in-path" not in log  # ... or the URL's token-bearing path


def test_httpx_s_request_log_shows_the_webhook_s_origin_only(caplog: pytest.LogCaptureFixture) -> None:
    """httpx logged ``HTTP Request: POST http://host/hooks/<token>`` at INFO: the token is in a webhook URL's path."""
    import asyncio
    import logging

    import httpx

    from flytekitplugins.aios_connectors.webhook import WebhookTarget, post_json

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"id": "T-1"})

    target = WebhookTarget(url="http://127.0.0.1:9/hooks/T0KEN-in-path", secret="whsec-x")
    with caplog.at_level(logging.INFO, logger="httpx"):
        out = asyncio.run(post_json(target, {"a": 1}, idempotency_key="k", transport=httpx.MockTransport(answer)))
    assert out == {"id": "T-1"}
    lines = [r.getMessage() for r in caplog.records if r.name == "httpx"]
    assert lines and all("T0KEN-in-path" not in m for m in lines), lines
    assert any("http://127.0.0.1:9/..." in m for m in lines), lines
