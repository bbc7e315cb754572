"""The core names the distribution to install when a part of the pack that lives in another one is missing."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from flytekitplugins.aios_core.errors import ConfigError
from flytekitplugins.aios_core.extras import PluginMissing, flytekit_plugin, lazy_exports


def test_a_missing_plugin_module_names_the_distribution() -> None:
    with pytest.raises(PluginMissing, match=r"policy gates need.*pip install flytekitplugins-aios") as info:
        flytekit_plugin("no_such_module", needed_for="policy gates")
    assert isinstance(info.value, ConfigError) and isinstance(info.value, ImportError)


def test_a_missing_third_party_module_inside_the_plugin_is_not_disguised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The plugin is there but one of its own imports fails: that error stands, it is not 'install the plugin'."""
    import flytekitplugins.aios as plugin

    (tmp_path / "broken_for_test.py").write_text("import aios_no_such_library_xyz\n")
    monkeypatch.setattr(plugin, "__path__", [*plugin.__path__, str(tmp_path)])
    monkeypatch.delitem(sys.modules, "flytekitplugins.aios.broken_for_test", raising=False)
    with pytest.raises(ModuleNotFoundError) as info:
        flytekit_plugin("broken_for_test", needed_for="x")
    assert not isinstance(info.value, PluginMissing)
    assert info.value.name == "aios_no_such_library_xyz"


def test_lazy_exports_resolve_on_first_access_and_refuse_unknown_names() -> None:
    from flytekitplugins.aios.audited import audited
    from flytekitplugins.aios_audit import audited as reexported

    assert reexported is audited
    getattr_ = lazy_exports("pkg", {"dumps": "json", "audited": "flytekitplugins.aios.audited"})
    assert getattr_("dumps") is __import__("json").dumps
    assert getattr_("audited") is audited
    with pytest.raises(AttributeError, match="module 'pkg' has no attribute 'nope'"):
        getattr_("nope")


def test_an_import_error_without_a_module_name_is_not_taken_for_a_missing_plugin(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from flytekitplugins.aios_core import extras

    def fail(name: str) -> None:
        raise ModuleNotFoundError("raised by hand, no module name")

    monkeypatch.setattr(extras.importlib, "import_module", fail)
    with pytest.raises(ModuleNotFoundError) as info:
        flytekit_plugin("audited", needed_for="x")
    assert not isinstance(info.value, PluginMissing)


def test_alias_modules_forward_public_names_only() -> None:
    from flytekitplugins.aios.approval_gate import verify_approvals
    from flytekitplugins.aios_approvals import gate

    assert gate.verify_approvals is verify_approvals
    with pytest.raises(AttributeError):
        gate.__wrapped__
