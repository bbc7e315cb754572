"""The policy test cases beside the policies pass, cover every rule, and catch the removal of any rule."""

from __future__ import annotations

import json
from pathlib import Path

import cedarpy
import pytest
from click.testing import CliRunner

from flytekitplugins.aios_core.cli import cli
from flytekitplugins.aios_core.settings import get_settings
from flytekitplugins.aios_policy.testing import run_cases

from .conftest import POLICIES


def test_cases_pass_and_cover_every_rule() -> None:
    report = run_cases(get_settings())
    assert len(report.results) >= 40
    assert report.failed == []
    assert len(report.rule_ids) >= 20 and report.uncovered == []


def _rules(policy_dir: Path) -> list[tuple[str, str]]:
    out = []
    for f in sorted(policy_dir.glob("*.cedar")):
        est = json.loads(cedarpy.policies_to_json_str(f.read_text()))
        out += [(f.name, pid) for pid in est["staticPolicies"]]
    return out


def _without(src: Path, dst: Path, file: str, pid: str) -> str:
    """Copy the policy set to ``dst`` with policy ``pid`` of ``file`` removed; return its @id."""
    dst.mkdir()
    (dst / "schema.cedarschema.json").write_text((src / "schema.cedarschema.json").read_text())
    for f in src.glob("*.cedar"):
        text = f.read_text()
        if f.name == file:
            est = json.loads(cedarpy.policies_to_json_str(text))
            removed = est["staticPolicies"].pop(pid)["annotations"]["id"]
            text = cedarpy.policies_from_json_str(json.dumps(est)) if est["staticPolicies"] else ""
        (dst / f.name).write_text(text)
    return str(removed)


@pytest.mark.slow
def test_removing_any_single_rule_fails_a_case(tmp_path: Path) -> None:
    rules = _rules(POLICIES)
    assert len(rules) >= 20
    survivors = []
    for n, (file, pid) in enumerate(rules):
        mutant = tmp_path / f"mutant-{n}"
        rule_id = _without(POLICIES, mutant, file, pid)
        report = run_cases(get_settings(), mutant, POLICIES / "tests")
        assert rule_id not in report.rule_ids
        if not report.failed:
            survivors.append(rule_id)
    assert survivors == [], f"removing these rules changed no test outcome: {survivors}"


def test_cli_test_validate_eval(tmp_path: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(cli, ["policy", "test"])
    assert res.exit_code == 0, res.output
    assert "rule coverage: 23/23" in res.output or "rules exercised" in res.output
    res = runner.invoke(cli, ["policy", "validate"])
    assert res.exit_code == 0 and "ok:" in res.output
    req = {
        "principal": "service:retraining",
        "action": "write_catalog",
        "resource": {"type": "Model", "id": "m:1"},
        "context": {},
    }
    res = runner.invoke(cli, ["policy", "eval", "--request", "-"], input=json.dumps(req))
    assert res.exit_code == 0 and '"effect": "allow"' in res.output and "catalog-write-catalog-writer" in res.output
    req["principal"] = "service:document-pipeline"
    path = tmp_path / "req.yaml"
    path.write_text(json.dumps(req))
    res = runner.invoke(cli, ["policy", "eval", "--request", str(path)])
    assert res.exit_code == 3 and '"effect": "deny"' in res.output


def test_cli_validate_and_test_fail_on_broken_policies(policy_copy: Path) -> None:
    (policy_copy / "typo.cedar").write_text('@id("typo") permit (principal, action, resource) when { context.nope };')
    runner = CliRunner()
    res = runner.invoke(cli, ["--policy-dir", str(policy_copy), "policy", "validate"])
    assert res.exit_code == 1 and "typo" in res.output
    res = runner.invoke(cli, ["policy", "test", "--dir", str(policy_copy), "--cases", str(POLICIES / "tests")])
    assert res.exit_code == 1 and "FAIL" in res.output
