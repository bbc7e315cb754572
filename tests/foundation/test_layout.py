"""Import roots: the Flyte project (tasks/, workflows/) resolves from the repository, library code from the
namespaced root `flytekitplugins.aios_*`, and no bare `plugins`/`connectors`/`tasks` package is installed."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

from tests.foundation.packaging import REPO

LIBRARIES = ["aios", "aios_core", "aios_audit", "aios_policy", "aios_approvals", "aios_catalog", "aios_connectors"]


def test_flyte_project_resolves_from_the_repository() -> None:
    for name in ("tasks", "workflows"):
        mod = importlib.import_module(name)
        assert Path(mod.__file__).resolve().parent == REPO / name


def test_library_code_resolves_from_the_namespaced_root() -> None:
    for lib in LIBRARIES:
        mod = importlib.import_module(f"flytekitplugins.{lib}")
        path = Path(mod.__file__).resolve()
        assert path.is_relative_to(REPO / "plugins") or path.is_relative_to(REPO / "connectors"), path
    # the flytekitplugins namespace is shared with flytekit's own plugins (kfpytorch), not shadowed
    import flytekitplugins.kfpytorch

    assert "site-packages" in Path(flytekitplugins.kfpytorch.__file__).as_posix()


def test_no_bare_top_level_package_is_importable_from_site_packages(tmp_path: Path) -> None:
    """Outside the repository, `plugins`, `connectors`, `tasks` and `workflows` do not import."""
    code = (
        "import importlib.util, sys\n"
        "bad=[n for n in ('plugins','connectors','tasks','workflows') if importlib.util.find_spec(n)]\n"
        "import flytekitplugins.aios_core\n"
        "print(','.join(bad))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == ""
