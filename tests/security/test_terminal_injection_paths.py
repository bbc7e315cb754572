"""The other ways text someone else chose reaches a person: none of them passes control codes on raw.

``test_terminal_injection.py`` covers the tables, error lines and Decks. These paths printed the same kind of text
raw (each test here fails on the code before the fix):

* ``aios lineage trace``, readable form: what records quote (a quarantined file's name, a task's status or name);
* ``aios evidence verify``: a bundle's sender writes its unsigned manifest (its scope label) and its file names;
* a governance refusal: a policy denial quotes the resource id the launcher chose, and the task's error is shown in
  a terminal and in the Flyte console;
* a connector's answer and log line: a gRPC caller chooses the action and the principal it claims;
* ``one_line_error``, how every error reaches a user, a log or a gRPC caller;
* the approval connector's ticket link: the webhook receiver's ``url`` becomes a link in the Flyte console, where a
  ``javascript:`` URL would run in the browser of whoever clicks it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import zipfile
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from flytekitplugins.aios_audit import AuditEvent, audit_log
from flytekitplugins.aios_core.cli import cli
from flytekitplugins.aios_core.errors import GovernanceDenied
from flytekitplugins.aios_core.redact import one_line_error
from flytekitplugins.aios_core.settings import get_settings
from tests.lineage.synthetic import exported_bundle

ESC = "\x1b[2J\x1b[H\x1b[32mAPPROVED BY SECURITY\x1b[0m"
RLO = "\u202e"
RAW = ("\x1b", "\u202e", "\x07", "\x9b")


def _clean(text: str) -> None:
    for ch in RAW:
        assert ch not in text, f"raw {ch!r} reached the output: {text!r}"


def test_lineage_trace_text_shows_what_records_quote_as_escapes(aios_env: Path) -> None:
    store = audit_log(get_settings(), emit=False)
    digest = "sha256:" + "cd" * 32
    first = store.append(AuditEvent(kind="task", actor="service:x", status="succeeded", outputs={"o": digest}))
    store.append(AuditEvent(kind="task", actor="service:x", status="quarantined" + ESC + RLO, inputs={"x": digest}))
    res = CliRunner().invoke(cli, ["lineage", "trace", first.record_id])
    assert res.exit_code == 0, res.output
    assert "quarantined\\x1b[2J" in res.output and "\\u202e" in res.output  # the downstream record's line
    _clean(res.output)


@pytest.fixture
def bundle(aios_env: Path, tmp_path: Path) -> Path:
    return exported_bundle(tmp_path)


def _rewrite(src: Path, dst: Path, scope: Any = None, extra: str = "") -> Path:
    with zipfile.ZipFile(src) as z:
        files = {n: z.read(n) for n in z.namelist()}
    manifest = json.loads(files.pop("manifest.json"))
    if scope is not None:
        manifest["scope"] = scope
    with zipfile.ZipFile(dst, "w") as z:
        z.writestr("manifest.json", json.dumps(manifest))
        for name, data in files.items():
            z.writestr(name, data)
        if extra:
            z.writestr(extra, b"{}")
    return dst


def test_evidence_verify_quotes_the_unsigned_scope_as_the_senders_label(bundle: Path, tmp_path: Path) -> None:
    forged = _rewrite(bundle, tmp_path / "scope.zip", scope="execution prod/payments/run-9" + ESC)
    res = CliRunner().invoke(cli, ["evidence", "verify", str(forged)])
    assert res.exit_code == 0, res.output  # nothing signed was changed: the records verify
    line = res.output.strip().splitlines()[-1]
    assert line.startswith("OK: ")
    assert "the unsigned manifest labels them 'execution prod/payments/run-9\\x1b[2J" in line
    _clean(res.output)


def test_evidence_verify_shows_a_bundles_file_names_as_escapes(bundle: Path, tmp_path: Path) -> None:
    forged = _rewrite(bundle, tmp_path / "names.zip", extra="notes" + ESC + ".json")
    res = CliRunner().invoke(cli, ["evidence", "verify", str(forged)])
    assert res.exit_code == 1 and "the zip member name 'notes\\x1b[2J" in res.output, res.output  # refused by name
    _clean(res.output)


def test_a_policy_denial_shows_the_resource_id_a_launcher_chose_as_escapes(aios_env: Path) -> None:
    from flytekitplugins.aios_policy import enforce

    request = {
        "principal": "service:document-pipeline",
        "action": "act_on_document",
        "resource": {"type": "Document", "id": "sha256:0f3c9a" + ESC},
        "context": {"amount": 10.0, "currency": "XYZ", "data_class": "internal", "doc_type": "invoice"},
    }
    with pytest.raises(GovernanceDenied) as err:
        enforce(request, settings=get_settings())
    assert "Document::sha256:0f3c9a\\x1b[2J" in str(err.value)
    _clean(str(err.value))
    # the record keeps the id as it came: only what a person reads is escaped
    decided = [r for r in audit_log(get_settings()).scan(1) if r.event.kind == "policy_decision"]
    assert decided[-1].event.subject == "Document::sha256:0f3c9a" + ESC


def test_one_line_error_shows_control_codes_as_escapes() -> None:
    shown = one_line_error(ValueError("bad value " + ESC + RLO + "\x9b2J"))
    assert shown.startswith("ValueError: bad value \\x1b[2J")
    _clean(shown)


def _policy_call(values: dict[str, Any]) -> Any:
    from flytekit.models.literals import LiteralMap
    from flytekit.models.task import TaskExecutionMetadata, TaskTemplate

    from flytekitplugins.aios_connectors import PolicyDecisionTask
    from flytekitplugins.aios_connectors.policy_connector import PolicyDecisionConnector
    from flytekitplugins.aios_connectors.policy_task import POLICY_INPUTS
    from tests.connectors.protos import execution_metadata, literal_map, template_of

    template = TaskTemplate.from_flyte_idl(template_of(PolicyDecisionTask(name="escape_probe")))
    meta = TaskExecutionMetadata.from_flyte_idl(execution_metadata())
    inputs = LiteralMap.from_flyte_idl(literal_map(values, POLICY_INPUTS))
    return asyncio.run(PolicyDecisionConnector().do(template, "/tmp/unused", inputs, meta))


REQUEST = {
    "principal": "service:document-pipeline",
    "action": "act_on_document",
    "resource": {"type": "Document", "id": "sha256:0f3c9a"},
    "context": {"amount": 420.0, "currency": "EUR", "data_class": "internal", "doc_type": "invoice", "confidence": 0.9},
}


@pytest.mark.parametrize(
    ("change", "shown", "logs"),
    [
        ({"action": "act_on_document" + ESC}, "unknown action 'act_on_document\\x1b[2J", False),  # a deny naming it
        ({"principal": "service:document-pipeline" + ESC}, "input principal service:document-pipeline\\x1b[2J", True),
    ],
    ids=["denied action", "refused claimed principal"],
)
def test_a_connectors_answer_and_log_show_what_the_caller_sent_as_escapes(
    aios_env: Path, caplog: pytest.LogCaptureFixture, change: dict[str, str], shown: str, logs: bool
) -> None:
    with caplog.at_level(logging.WARNING):
        res = _policy_call({**REQUEST, **change})
    assert res.phase == 5 and shown in res.message, res.message  # FAILED
    _clean(res.message)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert ("\\x1b[2J" in logged) == logs  # a refusal is logged; a deny is the task's answer alone
    _clean(logged)


@pytest.mark.parametrize(
    ("url", "kept"),
    [
        ("https://tickets.example/T-1", True),
        ("http://tickets.example:8080/browse/T-1?x=1", True),
        ("javascript:alert(document.cookie)", False),
        ("JavaScript:alert(1)", False),
        ("data:text/html,<script>alert(1)</script>", False),
        ("https://tickets.example/T-1\x1b[2J", False),
        ("https://tickets.example/a b", False),
        ("//tickets.example/T-1", False),
        ("https:///no-host", False),
        (["https://tickets.example/T-1"], False),
        ("", False),
    ],
)
def test_the_ticket_link_is_only_a_web_address(url: object, kept: bool) -> None:
    from flytekitplugins.aios_connectors.approval_connector import ticket_link

    assert ticket_link(url) == (url if kept else "")
