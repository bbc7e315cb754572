"""Every command that prints a result has ``--json`` (the tables at 80 and 120 columns: test_cli_table_widths.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from flytekitplugins.aios_audit import AuditEvent, audit_log
from flytekitplugins.aios_core.cli import cli
from flytekitplugins.aios_core.settings import get_settings


def _json(args: list[str], code: int = 0) -> object:
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == code, res.output
    return json.loads(res.stdout)


def test_audit_commands_print_json(tmp_path: Path) -> None:
    ids = [audit_log(get_settings()).append(AuditEvent(kind="task", actor=f"a{i}")).record_id for i in range(5)]
    cp, proof = str(tmp_path / "cp.json"), str(tmp_path / "proof.json")
    doc = _json(["audit", "checkpoint", "--out", cp, "--json"])
    assert isinstance(doc, dict) and doc["tree_size"] == 5 and doc["out"] == cp
    doc = _json(["audit", "prove", ids[2], "--checkpoint", cp, "--out", proof, "--json"])
    assert isinstance(doc, dict) and doc["out"] == proof and "path" in doc["proof"]
    doc = _json(["audit", "verify-proof", proof, "--checkpoint", cp, "--json"])
    assert isinstance(doc, dict) and doc["ok"] is True
    audit_log(get_settings()).append(AuditEvent(kind="task", actor="later"))
    doc = _json(["audit", "consistency", "--from", cp, "--out", str(tmp_path / "c.json"), "--json"])
    assert isinstance(doc, dict) and doc["proof"]["new_size"] == 6


def test_policy_approvals_models_and_config_print_json(tmp_path: Path) -> None:
    req = tmp_path / "req.json"
    req.write_text(json.dumps({"principal": "user:bob", "action": "act_on_document", "resource": {}, "context": {}}))
    assert _json(["policy", "eval", "--request", str(req), "--json"], code=3)["effect"] == "deny"  # type: ignore[index]
    doc = _json(["policy", "test", "--json"])
    assert isinstance(doc, dict) and doc["ok"] is True and doc["passed"] == doc["total"] > 0
    assert _json(["policy", "validate", "--json"])["ok"] is True  # type: ignore[index]
    assert _json(["approvals", "list", "--json"]) == []
    doc = _json(["approvals", "approve", "apr-nope", "--as", "user:bob", "--json"], code=3)
    assert isinstance(doc, dict) and doc["accepted"] is False and doc["code"]
    assert isinstance(_json(["models", "list", "--json"]), list)
    assert "state_dir" in json.dumps(_json(["config", "show", "--json"]))


def test_progress_is_silent_off_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    from flytekitplugins.aios_core.cli_output import working

    with working("verifying", total=3) as advance:
        for _ in range(3):
            advance(1)
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""
