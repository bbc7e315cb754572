"""The `aios` console script skips pydantic's plugin discovery for its own process, and only there."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

PROBE = """
import os, sys
sys.argv = ["aios", "config", "show", "--json"]
from flytekitplugins.aios_core.entry import main
try:
    main()
except SystemExit as e:
    assert not e.code, e.code
import pydantic.plugin._loader as loader
print("SCANNED" if loader._plugins is not None else "NOT-SCANNED", repr(os.environ.get("PYDANTIC_DISABLE_PLUGINS")))
"""


def _run(code: str, **env: str) -> str:
    base = {k: v for k, v in os.environ.items() if k != "PYDANTIC_DISABLE_PLUGINS"}
    out = subprocess.run([sys.executable, "-c", code], env={**base, **env}, capture_output=True, text=True, check=True)
    return out.stdout.strip().splitlines()[-1]


def test_importing_the_core_builds_no_pydantic_model() -> None:
    """The entry point must run before the first model: the package's names are imported on first use."""
    code = "import sys, flytekitplugins.aios_core as c; print('pydantic' in sys.modules, c.digest_value({'a': 1})[:7])"
    assert _run(code) == "False sha256:"


@pytest.mark.parametrize(("given", "want"), [(None, "NOT-SCANNED '__all__'"), ("", "SCANNED ''")])
def test_the_command_skips_plugin_discovery_unless_told(given: str | None, want: str) -> None:
    env = {} if given is None else {"PYDANTIC_DISABLE_PLUGINS": given}
    assert _run(PROBE, **env) == want


def test_a_library_import_leaves_the_environment_alone() -> None:
    code = "import os, flytekitplugins.aios_core.cli; print(os.environ.get('PYDANTIC_DISABLE_PLUGINS', 'unset'))"
    assert _run(code) == "unset"
