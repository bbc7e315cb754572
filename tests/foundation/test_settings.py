"""Settings precedence: flag > environment > profile file > default; clear errors for bad config."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from flytekitplugins.aios_core.errors import ConfigError
from flytekitplugins.aios_core.settings import get_settings, load_settings, reset_settings


def _config(tmp_path: Path, body: str, profile: str = "local") -> Path:
    cfg = tmp_path / "cfg"
    (cfg / "profiles").mkdir(parents=True)
    (cfg / "profiles" / f"{profile}.yaml").write_text(body)
    return cfg


def test_precedence_flag_over_env_over_file_over_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = _config(tmp_path, "state_dir: /tmp/from-file\npolicy_dir: /tmp/policies-from-file\n")
    monkeypatch.setenv("AIOS_CONFIG_DIR", str(cfg))
    monkeypatch.delenv("AIOS_STATE_DIR")
    monkeypatch.delenv("AIOS_AUDIT_STORE")
    s = load_settings()
    assert s.state_dir == Path("/tmp/from-file")  # file over default
    assert s.audit_store == "sqlite:////tmp/from-file/audit.db"  # default, expanded with the file's state_dir
    assert s.otel_exporter == "none"  # default
    monkeypatch.setenv("AIOS_STATE_DIR", str(tmp_path / "from-env"))
    assert load_settings().state_dir == tmp_path / "from-env"  # env over file
    s = load_settings({"state_dir": str(tmp_path / "from-flag")})
    assert s.state_dir == tmp_path / "from-flag"  # flag over env
    assert s.policy_dir == Path("/tmp/policies-from-file")


def test_public_env_vars(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AIOS_AUDIT_STORE", "postgresql://postgres@127.0.0.1:5432/test")
    monkeypatch.setenv("AIOS_POLICY_DIR", str(tmp_path / "p"))
    monkeypatch.setenv("AIOS_PROFILE", "cluster")
    reset_settings()
    s = get_settings()
    assert s.profile == "cluster"
    assert s.audit_store.startswith("postgresql://")
    assert s.policy_dir == tmp_path / "p"
    assert s.approvals_backend == "flyteremote"  # from profiles/cluster.yaml


def test_unknown_profile_and_bad_values_name_the_problem(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="profile 'staging' not found"):
        load_settings({"profile": "staging"})
    cfg = _config(tmp_path, "otel_exporter: carrier-pigeon\n")
    monkeypatch.setenv("AIOS_CONFIG_DIR", str(cfg))
    with pytest.raises(ConfigError, match="otel_exporter"):
        load_settings()
    cfg2 = _config(tmp_path / "x", "no_such_key: 1\n")
    monkeypatch.setenv("AIOS_CONFIG_DIR", str(cfg2))
    with pytest.raises(ConfigError, match="no_such_key"):
        load_settings()


def test_cli_lists_groups_and_applies_flags(tmp_path: Path) -> None:
    from flytekitplugins.aios_core.cli import cli

    runner = CliRunner()
    res = runner.invoke(cli, ["--help"])
    assert res.exit_code == 0
    for group in ("audit", "lineage", "policy", "approvals", "models", "demo"):
        assert group in res.output
    res = runner.invoke(cli, ["--state-dir", str(tmp_path / "flag"), "config", "show"])
    assert res.exit_code == 0, res.output
    assert str(tmp_path / "flag") in res.output
