"""``aios models history``: who approved each stage change (role, reason) and each version's lineage."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from flytekitplugins.aios_audit import audit_log
from flytekitplugins.aios_core.cli import cli
from flytekitplugins.aios_core.settings import get_settings
from tests.lineage.synthetic import MODEL, TRAIN, write_model


def test_history_names_approvers_and_links_training_evaluation_and_drift(aios_env: Path) -> None:
    write_model(audit_log(get_settings(), emit=False))
    res = CliRunner().invoke(cli, ["models", "history", f"{MODEL.name}@{MODEL.version}", "--json"])
    assert res.exit_code == 0, res.output
    changes = json.loads(res.output)
    assert [c["op"] for c in changes] == ["register", "promote"]
    promote = changes[1]
    assert promote["to_stage"] == "champion" and promote["approved_by"] == "user:dana [model-approver] 'better F1'"
    lineage = promote["lineage"]
    assert lineage["digest"] == MODEL.digest and lineage["training_data"] == [TRAIN]
    assert lineage["training"][0]["trigger"] == "drift" and lineage["evaluations"]
    assert [d["status"] for d in lineage["drift_triggers"]] == ["drifted"]
    text = CliRunner().invoke(cli, ["models", "history", MODEL.name]).output
    assert "user:dana [model-approver] 'better F1'" in text  # roles are text, not terminal markup
    assert TRAIN in text and "drifted" in text
