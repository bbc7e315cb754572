"""A database URL's password never reaches the lineage backend or the logs, whatever characters it holds.

libpq reads ``postgresql://reader:2024#Spring!@host/docs`` as user ``reader``, password ``2024#Spring!``; urllib
ends the authority at the "#" (or "?", or "/") and reads ``2024`` as the port. The dataset a task's input names
must come from the host after the userinfo, and an authority that does not parse must cost the dataset only,
never the attempt's START and COMPLETE/FAIL events or a log line quoting the password.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest

from flytekitplugins.aios_audit.emit import flush
from tests.audit import governed_tasks as gt

PASSWORDS = ("2024#Spring!", "Winter?2024", "Autumn/Leaves9", "5432/Leaves!")
URL = "postgresql://reader:{}@127.0.0.1:5999/docs"
TASK = "tests.audit.governed_tasks.tokenize"


def _events(state: Path) -> list[dict]:
    flush()  # events are built and written by the emitter thread
    path = state / "lineage" / "events.jsonl"  # the default lineage_url: the file transport in the state dir
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def _forbidden(password: str) -> set[str]:
    """The password, the pieces a "#", "?" or "/" cuts it into (long enough not to occur by chance, e.g. in a
    digest), and the user name joined to its first piece: what a URL read wrong turns into a host, port or name."""
    pieces = re.split(r"[#?/]", password)
    found = {password, f"reader:{pieces[0]}", f":{pieces[0]}", f"{pieces[-1]}@"}
    found |= {p for p in pieces if len(p) >= 5}
    return found


@pytest.mark.parametrize("password", PASSWORDS)
def test_password_in_source_url_never_leaks(aios_env: Path, caplog: pytest.LogCaptureFixture, password: str) -> None:
    url = URL.format(password)
    with caplog.at_level(logging.DEBUG):
        assert gt.tokenize(text=url) == [url]
        events = _events(aios_env)
    task_events = [e for e in events if e["job"]["name"] == TASK]
    # the attempt is observed: its START and its outcome both reach the lineage backend
    assert [e["eventType"] for e in task_events] == ["START", "COMPLETE"], [e["eventType"] for e in events]
    # the input's dataset is the host after the userinfo (the port libpq reads), never the userinfo
    named = [(d["namespace"], d["name"]) for e in task_events for d in e.get("inputs", []) + e.get("outputs", [])]
    assert named and set(named) == {("postgres://127.0.0.1:5999", "docs")}
    lineage = (aios_env / "lineage" / "events.jsonl").read_text()
    logged = "\n".join(r.getMessage() for r in caplog.records) + caplog.text
    for piece in sorted(_forbidden(password)):
        assert piece not in lineage, f"{piece!r} in the lineage events"
        assert piece not in logged, f"{piece!r} in the logs: {logged[-500:]}"
    assert "could not start observing" not in logged


def test_failure_to_observe_logs_the_type_only(
    aios_env: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever else raises while the attempt's observation starts, its text (here urllib's, quoting a password
    piece) stays out of the log: the task runs, and the warning names the type."""
    from flytekitplugins.aios_audit import observe

    def broken(*args: object, **kwargs: object) -> None:
        raise ValueError("Port could not be cast to integer value as 'Winter'")

    monkeypatch.setattr(observe, "_start", broken)
    with caplog.at_level(logging.WARNING):
        assert gt.tokenize(text="a b") == ["a", "b"]
    warnings = [r.getMessage() for r in caplog.records if "could not start observing" in r.getMessage()]
    assert warnings and all(m.endswith(f"{TASK} (ValueError)") for m in warnings), warnings
    assert "Winter" not in caplog.text
