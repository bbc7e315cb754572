"""Signed JSON webhooks with bounded retries: how the connectors talk to chat and ticketing tools.

Contract with the receiver:

* ``POST <url>`` with a JSON body, ``Content-Type: application/json``;
* ``X-AIOS-Timestamp: <unix seconds>`` and ``X-AIOS-Signature: sha256=<hex>``, the HMAC-SHA256 of
  ``b"<timestamp>." + body`` under the shared secret (the receiver recomputes it and rejects stale
  timestamps, as Slack and Stripe do);
* ``Idempotency-Key: <key>``: the same notification may be delivered more than once (retries, a
  connector restart); the receiver deduplicates on it;
* a 2xx answer is success; its JSON body may carry ``id`` and ``url`` (the ticket or message);
  429, 5xx, connection errors and timeouts are retried with exponential backoff and jitter, up to
  ``attempts`` in all; any other status fails at once.

Secrets never leave this module: the secret is excluded from ``repr`` and every error or log line
names the URL's origin only (a Slack incoming-webhook URL carries its token in the path).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import math
import os
import random
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from flytekitplugins.aios_connectors.constants import (
    IDEMPOTENCY_HEADER,
    SECRET_GROUP,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WEBHOOK_ALLOW_HTTP_ENV,
    WEBHOOK_SECRET_ENV,
    WEBHOOK_SECRET_SECRET_KEY,
    WEBHOOK_URL_ENV,
    WEBHOOK_URL_SECRET_KEY,
)
from flytekitplugins.aios_core.errors import AiosError, ConfigError

log = logging.getLogger(__name__)


class _OriginOnly(logging.Filter):
    """httpx logs every request at INFO with its full URL (``HTTP Request: POST https://hooks.slack.com/services/
    T0/B0/<token>``); a webhook URL carries its token in the path, so every URL in such a record is cut to its
    origin (the record's message is formatted here: a masking record factory may already have done it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is the logging module's to report
            return True
        record.msg, record.args = _URL_PATH.sub(r"\1/...", message), None
        return True


_URL_PATH = re.compile(r"(?i)\b(https?://[^/\s\"'?#]+)[/?#][^\s\"']*")


_HTTPX_LOG = logging.getLogger("httpx")
if not any(isinstance(f, _OriginOnly) for f in _HTTPX_LOG.filters):
    _HTTPX_LOG.addFilter(_OriginOnly())

_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


class WebhookError(AiosError):
    """The external system did not accept a notification; names the origin, the status and the attempts."""

    def __init__(self, message: str, *, status: int | None, attempts: int) -> None:
        super().__init__(message)
        self.status = status
        self.attempts = attempts


MAX_DELIVERY_S = 600.0
"""The longest one delivery may take in all (:meth:`RetryPolicy.worst_case_s`): a task template comes from whoever
calls the connector, and an attempt timeout or back-off of days held the service's call (and its worker) that long."""


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded exponential backoff with jitter.

    Attributes:
        attempts: tries in all, 1 to 10.
        base_delay_s: the first back-off ceiling; it doubles per retry up to ``max_delay_s``.
        max_delay_s: ceiling of any single back-off.
        timeout_s: connect and read timeout of one attempt.
    """

    attempts: int = 4
    base_delay_s: float = 0.5
    max_delay_s: float = 8.0
    timeout_s: float = 10.0

    def __post_init__(self) -> None:
        if not 1 <= self.attempts <= 10:
            msg = f"RetryPolicy.attempts={self.attempts} must be between 1 and 10 (bounded retries)"
            raise ValueError(msg)
        numbers = (self.base_delay_s, self.max_delay_s, self.timeout_s)
        # NaN compares false with everything: without isfinite it passed both checks, and a NaN back-off or
        # timeout reached asyncio and httpx; an infinite one waited for ever
        if (
            not all(math.isfinite(x) for x in numbers)
            or not 0 <= self.base_delay_s <= self.max_delay_s
            or not (self.timeout_s > 0)
        ):
            msg = (
                f"RetryPolicy needs finite 0 <= base_delay_s <= max_delay_s and timeout_s > 0, got "
                f"base_delay_s={self.base_delay_s}, max_delay_s={self.max_delay_s}, timeout_s={self.timeout_s}"
            )
            raise ValueError(msg)
        if self.worst_case_s() > MAX_DELIVERY_S:  # a template is its sender's: huge delays held the service's calls
            msg = (
                f"RetryPolicy lets one delivery take up to {self.worst_case_s():,.0f} s (attempts x timeout_s plus "
                f"back-offs): at most {MAX_DELIVERY_S:.0f} s; lower timeout_s, max_delay_s or attempts"
            )
            raise ValueError(msg)

    def worst_case_s(self) -> float:
        """Longest time one delivery can take (every attempt times out, every back-off at its ceiling).

        Flyte propeller's ``CreateTask`` timeout for the connector must be larger (deploy/propeller-connector.yaml).
        """
        backoff = sum(min(self.max_delay_s, self.base_delay_s * 2 ** (r - 1)) for r in range(1, self.attempts))
        return self.attempts * self.timeout_s + backoff

    def delay(self, retry: int, rng: random.Random | None = None) -> float:
        """Back-off before retry number ``retry`` (1-based): half the ceiling plus a random half ("equal jitter")."""
        ceiling = min(self.max_delay_s, self.base_delay_s * 2 ** (retry - 1))
        return ceiling / 2 + (rng or random).uniform(0, ceiling / 2)


@dataclass(frozen=True)
class WebhookTarget:
    """Where notifications go and the shared secret that signs them (neither printed: a Slack URL's path is a token)."""

    url: str = field(repr=False)
    secret: str = field(repr=False)

    def __repr__(self) -> str:
        return f"WebhookTarget(origin={self.origin!r})"

    @property
    def origin(self) -> str:
        """``scheme://host[:port]``: the only part of the URL that errors and logs show."""
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


def _read_secret(env_var: str, key: str) -> str:
    value = os.environ.get(env_var, "")
    if value:
        return value
    try:
        import flytekit

        return str(flytekit.current_context().secrets.get(group=SECRET_GROUP, key=key)).strip()
    except Exception:  # a missing secret is reported by the caller, without details
        return ""


def load_target() -> WebhookTarget:
    """The configured webhook, from ``AIOS_APPROVAL_WEBHOOK_URL``/``_SECRET`` or the Flyte secret group ``aios``.

    Raises:
        ConfigError: URL or secret missing, or plain http to a non-loopback host without
            ``AIOS_APPROVAL_WEBHOOK_ALLOW_HTTP=true`` (fail closed: nothing is sent).
    """
    url = _read_secret(WEBHOOK_URL_ENV, WEBHOOK_URL_SECRET_KEY)
    secret = _read_secret(WEBHOOK_SECRET_ENV, WEBHOOK_SECRET_SECRET_KEY)
    if not url or not secret:
        missing = [n for n, v in ((WEBHOOK_URL_ENV, url), (WEBHOOK_SECRET_ENV, secret)) if not v]
        msg = (
            f"approval webhook is not configured: {', '.join(missing)} unset. Set them in the connector "
            f"deployment from the Kubernetes secret '{SECRET_GROUP}' (keys {WEBHOOK_URL_SECRET_KEY}, "
            f"{WEBHOOK_SECRET_SECRET_KEY}); see docs/connectors.md"
        )
        raise ConfigError(msg)
    target = WebhookTarget(url=url, secret=secret)
    parts = urlsplit(url)
    allow_http = os.environ.get(WEBHOOK_ALLOW_HTTP_ENV, "").lower() in {"1", "true", "yes"}
    if parts.scheme not in {"https", "http"} or (
        parts.scheme == "http" and parts.hostname not in _LOOPBACK and not allow_http
    ):
        msg = (
            f"approval webhook {target.origin} must use https (plain http only to loopback, or with "
            f"{WEBHOOK_ALLOW_HTTP_ENV}=true for an in-cluster service)"
        )
        raise ConfigError(msg)
    return target


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>``: HMAC-SHA256 of ``b"<timestamp>." + body`` under ``secret``."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def _retryable(status: int) -> bool:
    return status == 429 or status >= 500


def _parse(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


async def post_json(
    target: WebhookTarget,
    payload: Mapping[str, Any],
    *,
    idempotency_key: str,
    policy: RetryPolicy | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> dict[str, Any]:
    """POST ``payload`` signed, retrying transient failures; returns the receiver's JSON object (or ``{}``).

    Args:
        target: URL and secret.
        payload: JSON-serializable body.
        idempotency_key: sent as ``Idempotency-Key`` so a repeated delivery is recognised.
        policy: retry bounds (default :class:`RetryPolicy`).
        transport: an httpx transport (tests).
        sleep: the back-off sleeper (tests).

    Raises:
        WebhookError: not accepted after the allowed attempts, or a non-retryable status.
    """
    policy = policy or RetryPolicy()
    body = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    last = "no attempt made"
    status: int | None = None
    async with httpx.AsyncClient(timeout=policy.timeout_s, transport=transport) as client:
        for attempt in range(1, policy.attempts + 1):
            ts = str(int(time.time()))
            headers = {
                "Content-Type": "application/json",
                TIMESTAMP_HEADER: ts,
                SIGNATURE_HEADER: sign(target.secret, ts, body),
                IDEMPOTENCY_HEADER: idempotency_key,
            }
            try:
                response = await client.post(target.url, content=body, headers=headers)
            except httpx.TransportError as e:
                status, last = None, f"{type(e).__name__}"
            else:
                status, last = response.status_code, f"HTTP {response.status_code} {response.reason_phrase}".strip()
                if response.is_success:
                    return _parse(response)
                if not _retryable(response.status_code):
                    break
            if attempt < policy.attempts:
                delay = policy.delay(attempt)
                n = policy.attempts
                log.warning("webhook %s attempt %d/%d: %s; retrying in %.2fs", target.origin, attempt, n, last, delay)
                await sleep(delay)
    msg = f"webhook POST to {target.origin} failed after {attempt} attempt(s) (last: {last})"
    raise WebhookError(msg, status=status, attempts=attempt)
