"""The gate's waiting message tells the real time left: the requests' expiry, not the gate node's timeout."""

from __future__ import annotations

import datetime as dt

from flytekitplugins.aios_approvals import open_request
from flytekitplugins.aios_approvals.clock import get_clock
from flytekitplugins.aios_approvals.evaluate import Env
from flytekitplugins.aios_approvals.waiting import waiting_message
from flytekitplugins.aios_core.settings import get_settings


def test_the_message_names_the_request_expiry_when_it_comes_before_the_gate_timeout() -> None:
    rid = open_request(
        "payment-signoff",
        "low",
        "doc:1",
        requester="service:document-pipeline",
        timeout_s=3600,
        env=Env.load(get_settings()),
    )
    deadline = get_clock().now() + dt.timedelta(hours=25)
    msg = waiting_message("payment-signoff", [rid], deadline, Env.load(get_settings()))
    assert rid in msg and ("they expire in 59m" in msg or "they expire in 1h 0m" in msg), msg
    assert "1 day" not in msg and "gives up" not in msg, msg


def test_the_message_names_the_gate_timeout_when_it_comes_first() -> None:
    rid = open_request(
        "payment-signoff",
        "low",
        "doc:2",
        requester="service:document-pipeline",
        timeout_s=7200,
        env=Env.load(get_settings()),
    )
    deadline = get_clock().now() + dt.timedelta(minutes=30)
    msg = waiting_message("payment-signoff", [rid], deadline, Env.load(get_settings()))
    assert "the gate gives up in 29m" in msg or "the gate gives up in 30m" in msg, msg
