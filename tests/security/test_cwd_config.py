"""A ``./config`` or ``./openlineage.yml`` another local user put in the current folder is never used.

Review R9 (F5) reproduced it: settings came from ``./config/profiles/<profile>.yaml`` of the current folder before
anything else, whoever owned it. Another local user who could write a folder the pack's user runs ``aios`` or a task
from (``/tmp``, a shared project folder) planted a copy of the pack's config with one policy changed and a profile
naming their own approval and checkpoint keys, and ``aios policy eval`` of a 95,000 EUR invoice said ``allow``
instead of ``require_approval``. openlineage-python reads ``./openlineage.yml`` the same way: from such a folder every
lineage event of the pack's tasks went to the transport that user named. Now either is used only where it (and the
config's ``profiles/`` and profile file) is this process's user's or root's and no one else may write it; otherwise
the command stops with one error naming the folder and what to do, and lineage emission is off with a warning.
``AIOS_CONFIG_DIR``, ``OPENLINEAGE_CONFIG`` and the source checkout's config/ are taken as they are.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from flytekitplugins.aios_core.cli import cli
from flytekitplugins.aios_core.errors import ConfigError
from flytekitplugins.aios_core.settings import load_settings
from tests.audit import governed_tasks as gt

REPO = Path(__file__).resolve().parents[2]
NOBODY = 65534
INVOICE = {
    "principal": "service:document-pipeline",
    "action": "act_on_document",
    "resource": {"type": "Document", "id": "sha256:0f3c9a"},
    "context": {
        "amount": 95000.0,
        "currency": "EUR",
        "data_class": "internal",
        "doc_type": "invoice",
        "confidence": 0.93,
    },
}


def _as_nobody(path: Path) -> None:
    """Make ``path`` and everything under it another user's (what a user who planted it leaves behind)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to make files owned by another user")
    for root, dirs, files in os.walk(path):
        for name in [*dirs, *files]:
            os.lchown(Path(root) / name, NOBODY, NOBODY)
    os.lchown(path, NOBODY, NOBODY)


@pytest.fixture
def shared(aios_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder anyone may write (mode 1777, like /tmp) holding a copy of the pack's config whose payment sign-off
    policies no longer apply (the reviewer's), the current folder of the test, with no AIOS_CONFIG_DIR."""
    folder = tmp_path / "shared"
    folder.mkdir()
    folder.chmod(0o1777)
    config = folder / "config"
    shutil.copytree(REPO / "config", config)
    for name in ("require_approval.cedar", "documents.cedar"):
        policy = config / "policies" / name
        text = policy.read_text(encoding="utf-8")
        for limit in ('decimal("10000.0")', 'decimal("50000.0")'):
            text = text.replace(limit, 'decimal("99999999.0")')
        policy.write_text(text, encoding="utf-8")
    for d in [config, *(p for p in config.rglob("*") if p.is_dir())]:
        d.chmod(0o755)
    for f in (p for p in config.rglob("*") if p.is_file()):
        f.chmod(0o644)
    monkeypatch.delenv("AIOS_CONFIG_DIR")
    monkeypatch.chdir(folder)
    return folder


def _eval() -> tuple[int, str]:
    request = Path.cwd().parent / "request.json"
    request.write_text(json.dumps(INVOICE), encoding="utf-8")
    res = CliRunner().invoke(cli, ["policy", "eval", "--request", str(request)])
    return res.exit_code, res.output


def test_a_planted_config_decides_nothing(shared: Path) -> None:
    """The reviewer's run: the same command from the shared folder said ``allow``; now it refuses, naming the folder
    and what to do, and reads nothing from it."""
    _as_nobody(shared / "config")
    code, out = _eval()
    assert code == 2, out
    assert out.startswith(f"error: refusing the config folder {shared / 'config'} of the current folder: "), out
    assert f"owned by uid {NOBODY}" in out and "AIOS_CONFIG_DIR" in out and "another folder" in out
    assert "allow" not in out and "Traceback" not in out
    with pytest.raises(ConfigError, match="refusing the config folder"):  # a task resolves its settings the same way
        load_settings()


def test_own_config_in_the_current_folder_is_used(shared: Path) -> None:
    """This process's user's own ``./config``, closed to others, is still read (here: its changed policies)."""
    code, out = _eval()
    assert code == 0 and "allow" in out, out
    settings = load_settings()
    assert settings.config_dir == shared / "config" and settings.sources()["config_dir"] == "default"
    assert settings.sources()["policy_dir"] == f"profile {shared / 'config' / 'profiles' / 'local.yaml'}"


def _owned_by_nobody(rel: str) -> Callable[[Path], None]:
    def plant(config: Path) -> None:
        _as_nobody(config / rel) if rel else _as_nobody(config)

    return plant


def _mode(rel: str, mode: int) -> Callable[[Path], None]:
    def plant(config: Path) -> None:
        (config / rel).chmod(mode)

    return plant


def _foreign_link(config: Path) -> None:
    """``./config`` a link another user made, to a config folder that is this user's own."""
    own = config.parent.parent / "own-config"
    config.rename(own)
    config.symlink_to(own)
    _owned_by_nobody("")(config)  # the link only (lchown)


def _link_to_foreign(config: Path) -> None:
    """``./config`` this user's link, to a folder another user owns."""
    foreign = config.parent.parent / "foreign-config"
    config.rename(foreign)
    _as_nobody(foreign)
    config.symlink_to(foreign)


@pytest.mark.parametrize(
    ("plant", "problem"),
    [
        (_owned_by_nobody(""), "{config} is owned by uid 65534"),
        (_owned_by_nobody("profiles"), "{config}/profiles is owned by uid 65534"),
        (_owned_by_nobody("profiles/local.yaml"), "{config}/profiles/local.yaml is owned by uid 65534"),
        (_mode("", 0o775), "{config} may be written by its group or others (mode 0775)"),
        (_mode("profiles", 0o1777), "{config}/profiles may be written by its group or others (mode 1777)"),
        (_mode("profiles/local.yaml", 0o646), "local.yaml may be written by its group or others (mode 0646)"),
        (_foreign_link, "{config} is a symbolic link owned by uid 65534"),
        (_link_to_foreign, "{config} is owned by uid 65534"),
    ],
    ids=["folder", "profiles", "profile", "folder-0775", "profiles-1777", "profile-0646", "link", "link-to-foreign"],
)
def test_each_way_another_user_could_have_written_it_is_refused(
    shared: Path, plant: Callable[[Path], None], problem: str
) -> None:
    config = shared / "config"
    plant(config)
    with pytest.raises(ConfigError) as e:
        load_settings()
    assert problem.format(config=config) in str(e.value), str(e.value)
    assert str(e.value).startswith(f"refusing the config folder {config} of the current folder: ")


def test_aios_config_dir_is_taken_as_given(shared: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An explicit choice is the caller's: a config folder named by AIOS_CONFIG_DIR is read whoever owns it (as
    OPENLINEAGE_CONFIG, KUBECONFIG...); whoever sets a process's environment already chooses what it runs."""
    config = shared / "config"
    _as_nobody(config)
    monkeypatch.setenv("AIOS_CONFIG_DIR", str(config))
    assert load_settings().sources()["config_dir"] == "env AIOS_CONFIG_DIR"
    assert load_settings({"config_dir": str(config)}).config_dir == config


def test_the_checkout_config_is_taken_as_the_code_is(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The source checkout's config/ lies in the same tree as the code being run: it is read as it is, from any
    folder and from the checkout itself (a clone made under umask 002 has group-writable folders)."""
    from flytekitplugins.aios_core import settings

    checkout = tmp_path / "checkout"
    (checkout / "plugins" / "flyte-aios-core").mkdir(parents=True)
    shutil.copytree(REPO / "config" / "profiles", checkout / "config" / "profiles")
    (checkout / "config").chmod(0o775)
    monkeypatch.setattr(settings, "_CHECKOUT", checkout)
    monkeypatch.delenv("AIOS_CONFIG_DIR")
    monkeypatch.chdir(tmp_path)  # no ./config here
    assert load_settings().config_dir == checkout / "config"
    monkeypatch.chdir(checkout)  # ./config is the checkout's
    assert load_settings().config_dir == checkout / "config"


def test_a_planted_pipe_does_not_block_the_read(tmp_path: Path) -> None:
    from flytekitplugins.aios_core.settings import read_local_text

    pipe = tmp_path / "local.yaml"
    os.mkfifo(pipe, 0o600)
    with pytest.raises(ConfigError, match="is not a regular file"):
        read_local_text(pipe, "profile file")


# -- openlineage.yml -------------------------------------------------------------------------------------------------
TASK = "tests.audit.governed_tasks.tokenize"


@pytest.fixture
def planted_lineage(aios_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A shared current folder (1777) holding an ``openlineage.yml`` that sends events to a file transport there."""
    folder = tmp_path / "shared"
    folder.mkdir()
    folder.chmod(0o1777)
    stolen = folder / "stolen.jsonl"
    config = folder / "openlineage.yml"
    config.write_text(f"transport:\n  type: file\n  log_file_path: {stolen}\n  append: true\n", encoding="utf-8")
    config.chmod(0o644)
    monkeypatch.chdir(folder)
    return config, stolen


def _run_task() -> None:
    from flytekitplugins.aios_audit.emit import flush

    assert gt.tokenize(text="a b") == ["a", "b"]
    flush()


def test_a_planted_openlineage_yml_gets_no_event(
    aios_env: Path, planted_lineage: tuple[Path, Path], caplog: pytest.LogCaptureFixture
) -> None:
    config, stolen = planted_lineage
    _as_nobody(config)
    with caplog.at_level(logging.WARNING):
        _run_task()  # the task runs; its records are in the audit log (aios lineage rebuilds lineage from it)
    assert not stolen.exists() or stolen.read_text() == ""
    assert not (aios_env / "lineage").exists()  # nor sent where lineage_url says behind the user's back
    warned = [r.getMessage() for r in caplog.records if "OpenLineage emission disabled" in r.getMessage()]
    assert warned and f"refusing the current folder's openlineage.yml: {config} is owned by uid 65534" in warned[0]
    assert "OPENLINEAGE_CONFIG" in warned[0]


def test_a_group_writable_openlineage_yml_is_refused(planted_lineage: tuple[Path, Path]) -> None:
    from flytekitplugins.aios_audit.emit import _make_client

    config, _ = planted_lineage
    config.chmod(0o664)
    with pytest.raises(ConfigError, match=r"may be written by its group or others \(mode 0664\)"):
        _make_client("none")


def test_own_openlineage_yml_is_used(planted_lineage: tuple[Path, Path]) -> None:
    _, out = planted_lineage
    _run_task()
    events = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
    assert [e["eventType"] for e in events if e["job"]["name"] == TASK] == ["START", "COMPLETE"]


def test_openlineage_config_is_taken_as_given(
    planted_lineage: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """OPENLINEAGE_CONFIG names the file explicitly: read whoever owns it (the current folder's is then not read)."""
    config, out = planted_lineage
    _as_nobody(config)
    monkeypatch.setenv("OPENLINEAGE_CONFIG", str(config))
    _run_task()
    assert [json.loads(line)["eventType"] for line in out.read_text().splitlines()][-1] == "COMPLETE"


def test_the_file_read_is_checked_not_only_its_name(
    planted_lineage: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where the name passed the lookup and the file was swapped before openlineage-python read it (a folder others
    may write without the sticky bit), the file opened is checked again."""
    from flytekitplugins.aios_audit import emit

    config, _ = planted_lineage
    _as_nobody(config)
    monkeypatch.setattr(emit, "lineage_config_file", lambda: str(config))  # the lookup saw the user's own file
    with pytest.raises(ConfigError, match="is owned by uid 65534"):
        emit._make_client("none")
