"""Import roots: the Flyte project (tasks/, workflows/) resolves from the repository, library code from the
namespaced root `flytekitplugins.aios_*`, and no bare `plugins`/`connectors`/`tasks` package is installed."""

from __future__ import annotations

import importlib
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from tests.foundation.packaging import REPO

LIBRARIES = ["aios_core", "aios_audit", "aios_policy", "aios_approvals", "aios_catalog", "aios_connectors"]


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


def test_the_wheel_holds_only_the_namespaced_libraries(tmp_path: Path) -> None:
    # built from a copy: setuptools writes build/ and *.egg-info next to the sources it builds
    src = tmp_path / "src"
    skip = shutil.ignore_patterns("__pycache__", "*.egg-info", "build", ".aios", ".mypy_cache")
    for name in ("plugins", "connectors"):
        shutil.copytree(REPO / name, src / name, ignore=skip)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, src / name)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(src),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("flyte_aios-*.whl")
    tops = {n.split("/")[0] for n in zipfile.ZipFile(wheel).namelist()}
    tops = {t for t in tops if not t.endswith(".dist-info")}
    assert tops == {"flytekitplugins"}, tops
    names = zipfile.ZipFile(wheel).namelist()
    assert not any(n.startswith("flytekitplugins/__init__") for n in names), "namespace package must not ship __init__"
    for lib in ("aios_core", "aios_audit"):
        assert f"flytekitplugins/{lib}/__init__.py" in names
