"""``aios config show``: every setting, its value (secrets masked) and where it came from."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from flytekitplugins.aios_core.cli import cli
from flytekitplugins.aios_core.settings import ENV_VARS, Settings, load_settings


def _show(*args: str) -> dict:
    res = CliRunner().invoke(cli, [*args, "config", "show", "--json"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def test_each_value_names_its_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIOS_POLICY_BUDGET_MS", "50")
    monkeypatch.setenv("AIOS_SYSTEM_OF_RECORD_URL", "postgresql://app:s3cret-pw@db:5432/sor")
    doc = _show("--state-dir", str(tmp_path / "flagged"))
    values, sources = doc["settings"], doc["sources"]
    assert sources["state_dir"] == "flag" and values["state_dir"] == str(tmp_path / "flagged")
    assert sources["policy_budget_ms"] == "env AIOS_POLICY_BUDGET_MS" and values["policy_budget_ms"] == 50.0
    assert sources["approval_timeout_s"].startswith("profile ") and sources["approval_timeout_s"].endswith("local.yaml")
    assert sources["policy_engine"] == "default" and values["policy_engine"] == "cedar"
    assert sources["config_dir"] == "env AIOS_CONFIG_DIR"  # the suite points every test at the repository's config
    assert set(sources) == set(Settings.model_fields)
    text = json.dumps(doc)
    assert "s3cret-pw" not in text and "app:***@db" in text


def test_the_table_and_the_unknown_variable_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIOS_POLICY_BUDGT_MS", "5")  # a typo: nothing reads it
    monkeypatch.setenv("AIOS_IMAGE_TAG", "v9")  # a build-time variable: listed as set, not a setting
    res = CliRunner().invoke(cli, ["--store", "sqlite:////tmp/x.db", "config", "show"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert "AIOS_POLICY_BUDGT_MS is set but nothing reads it" in res.stderr
    assert "AIOS_IMAGE_TAG (build_time)" in res.stdout
    row = next(line for line in res.stdout.splitlines() if "audit_store" in line)
    assert "sqlite:////tmp/x.db" in row and "flag" in row
    assert "AIOS_POLICY_BUDGT_MS" in _show()["unknown_variables"]


def test_every_env_var_reaches_its_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    """The documented precedence, variable by variable: each AIOS_* setting variable sets exactly its field."""
    samples = {"profile": "local", "verify_workers": "1", "policy_budget_ms": "75", "dist_timeout_s": "30",
               "otel_exporter": "console", "approvals_backend": "local", "fast_threshold_floor": "0.85",
               "strong_threshold_floor": "0.75"}  # fmt: skip
    for var, field in ENV_VARS.items():
        value = samples.get(field, f"sample-{field}")
        monkeypatch.setenv(var, value)
        s = load_settings()
        assert s.sources()[field] == f"env {var}", var
        got = getattr(s, field)
        assert str(got).endswith(value.removeprefix("./")) or float(got) == float(value), (var, got)
        monkeypatch.delenv(var)
    assert load_settings({"policy_budget_ms": 9.0}).sources()["policy_budget_ms"] == "flag"


def test_an_editable_install_finds_the_checkout_config_from_any_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run from a folder with no config/ (the suite's cwd is the test's tmp_path) and no AIOS_CONFIG_DIR, the pack
    reads the source checkout's config/, not a config/ beside the distribution (``plugins/config``, which does not
    exist: every command then failed with "profile 'local' not found")."""
    monkeypatch.delenv("AIOS_CONFIG_DIR")
    assert not (Path.cwd() / "config").exists()
    doc = _show()
    repo = Path(__file__).resolve().parents[2]
    assert doc["settings"]["config_dir"] == str(repo / "config")
    assert doc["sources"]["config_dir"] == "default"
    assert doc["sources"]["approval_timeout_s"] == f"profile {repo / 'config' / 'profiles' / 'local.yaml'}"


def test_an_installed_package_without_a_checkout_names_the_folder_it_looked_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An installed wheel has no checkout above it: the error names ./config/profiles (the folder a user can create)
    and what to set instead, with no traceback."""
    from flytekitplugins.aios_core import settings

    monkeypatch.delenv("AIOS_CONFIG_DIR")
    monkeypatch.setattr(settings, "_CHECKOUT", tmp_path / "site-packages")
    res = CliRunner().invoke(cli, ["config", "show", "--json"])
    assert res.exit_code == 2 and isinstance(res.exception, SystemExit), res.output  # a usage error, not a crash
    assert f"expected {Path.cwd() / 'config' / 'profiles' / 'local.yaml'}" in res.output
    assert "AIOS_CONFIG_DIR" in res.output and "Traceback" not in res.output


def test_the_settings_module_imports_where_the_pack_lies_near_the_root(monkeypatch: pytest.MonkeyPatch) -> None:
    """Code copied to an image's root (``/root/flytekitplugins/aios_core/settings.py``) has fewer than five folders
    above it: looking for a checkout there must find none, not fail the import with an IndexError."""
    import sys
    import types

    from flytekitplugins.aios_core import settings

    fake = "/root/flytekitplugins/aios_core/settings.py"
    probe = types.ModuleType("aios_settings_at_root")
    probe.__file__ = fake
    monkeypatch.setitem(sys.modules, probe.__name__, probe)  # pydantic resolves the models' annotations through it
    exec(compile(Path(settings.__file__).read_text(encoding="utf-8"), fake, "exec"), probe.__dict__)
    assert probe._CHECKOUT is None
    monkeypatch.delenv("AIOS_CONFIG_DIR")
    assert probe.default_config_dir() == Path.cwd().resolve() / "config"  # where the error then says it looked
    assert settings._checkout_of(Path(settings.__file__).resolve()) == Path(__file__).resolve().parents[2]


def test_an_invalid_setting_is_named_with_its_value_and_its_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The error used to be pydantic's block (field, then reason, then a URL), and named the profile file and "AIOS_*
    env" together: now each bad setting, the value given and the one place it came from."""
    config = tmp_path / "config"
    (config / "profiles").mkdir(parents=True)
    (config / "profiles" / "local.yaml").write_text("approval_timeout_s: soon\n")
    monkeypatch.setenv("AIOS_CONFIG_DIR", str(config))
    monkeypatch.setenv("AIOS_VERIFY_WORKERS", "three")
    monkeypatch.setenv("AIOS_POLICY_BUDGET_MS", "-1")
    res = CliRunner().invoke(cli, ["config", "show"])
    assert res.exit_code == 2, res.output
    line = res.output.strip()
    assert line.count("\n") == 0 and line.startswith("error: invalid settings for profile 'local': "), line
    assert "verify_workers = 'three' (from env AIOS_VERIFY_WORKERS): Input should be a valid integer" in line
    assert "policy_budget_ms = '-1' (from env AIOS_POLICY_BUDGET_MS): Input should be greater than 0" in line
    want = f"approval_timeout_s = 'soon' (from profile {config / 'profiles' / 'local.yaml'}): Input should be a valid"
    assert want in line and "errors.pydantic.dev" not in line


@pytest.mark.parametrize(
    ("where", "field", "value", "want"),
    [
        # an approval request opened already timed out (-5), or ended in "cannot convert float NaN to integer"
        ("profile", "approval_timeout_s", "-5", "Input should be greater than 0"),
        ("profile", "approval_timeout_s", ".nan", "Input should be a finite number"),
        ("profile", "approval_timeout_s", ".inf", "Input should be a finite number"),
        # 1e12 s overflowed the request's expiry (past year 9999) when a request was opened
        ("profile", "approval_timeout_s", "1.0e+12", "Input should be less than or equal to 31622400"),
        # an infinite budget switched the fail-closed time limit off; an infinite rendezvous overflowed a timedelta
        ("env", "policy_budget_ms", "inf", "Input should be a finite number"),
        ("env", "dist_timeout_s", "inf", "Input should be a finite number"),
    ],
)
def test_a_duration_is_a_finite_positive_number(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str, field: str, value: str, want: str
) -> None:
    config = tmp_path / "config"
    (config / "profiles").mkdir(parents=True)
    (config / "profiles" / "local.yaml").write_text(f"{field}: {value}\n" if where == "profile" else "")
    monkeypatch.setenv("AIOS_CONFIG_DIR", str(config))
    if where == "env":
        monkeypatch.setenv(f"AIOS_{field.upper()}", value)
    res = CliRunner().invoke(cli, ["config", "show"])
    assert res.exit_code == 2, res.output
    assert f"{field} = " in res.output and want in res.output, res.output
