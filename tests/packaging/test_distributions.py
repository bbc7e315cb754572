"""The pack as separable distributions (issue 18): what each wheel holds, what it pulls, and that a platform team
can install the governance core plus the flytekit plugin alone and gate a plain ``@task``.

``scripts/build_dists.sh`` builds every wheel; the slow test installs two of them into a fresh virtual environment
(packages from the index, as a user's pip would) and runs a policy-gated task there.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SPLIT_TASK = Path(__file__).with_name("split_task.py")

CORE_PACKAGES = {"aios_core", "aios_audit", "aios_policy", "aios_approvals", "aios_catalog"}
EXPECTED = {  # wheel name -> (source folder, packages under flytekitplugins/)
    "flyte_aios_core": ("plugins/flyte-aios-core", CORE_PACKAGES),
    "flytekitplugins_aios": ("plugins/flytekit-aios", {"aios"}),
    "flytekitplugins_aios_connectors": ("connectors/flytekit-aios-connectors", {"aios_connectors"}),
    "flyte_aios_flyte2": ("plugins/flyte-aios-flyte2", {"aios_flyte2"}),
    "flyte_aios": (".", set()),
}
HEAVY = {"torch", "transformers", "great-expectations", "flytekitplugins-kfpytorch", "pandas", "pandera"}


def _requirement_name(line: str) -> str:
    name = line.split(";")[0].strip()
    for sep in "<>=!~[ (":
        name = name.split(sep)[0]
    return name.lower().replace("_", "-")


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("dist")
    env = {**os.environ, "PYTHON": sys.executable, "TMPDIR": str(tmp_path_factory.mktemp("build"))}
    res = subprocess.run(
        ["bash", str(REPO / "scripts" / "build_dists.sh"), str(out)], env=env, capture_output=True, text=True
    )
    assert res.returncode == 0, res.stderr[-3000:]
    found = {p.name.split("-")[0]: p for p in out.glob("*.whl")}
    assert set(found) == set(EXPECTED), sorted(found)
    return found


def _metadata(wheel: Path) -> tuple[list[str], dict[str, list[str]], str]:
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        meta = next(n for n in names if n.endswith(".dist-info/METADATA"))
        msg = Parser().parsestr(z.read(meta).decode())
        eps = next((n for n in names if n.endswith(".dist-info/entry_points.txt")), None)
        entry_points = z.read(eps).decode() if eps else ""
    groups: dict[str, list[str]] = {}
    group = ""
    for line in entry_points.splitlines():
        if line.startswith("["):
            group = line.strip("[]")
        elif "=" in line:
            groups.setdefault(group, []).append(line.replace(" ", ""))
    return names, groups, "\n".join(msg.get_all("Requires-Dist") or [])


def test_each_wheel_holds_its_own_packages_and_every_source_file_ships_once(wheels: dict[str, Path]) -> None:
    shipped: dict[str, str] = {}
    for dist, (folder, packages) in EXPECTED.items():
        names, _, _ = _metadata(wheels[dist])
        files = [n for n in names if ".dist-info/" not in n]
        assert {n.split("/")[1] for n in files} == packages if packages else files == [], (dist, files[:5])
        assert all(n.startswith("flytekitplugins/") for n in files), dist
        assert "flytekitplugins/__init__.py" not in names, f"{dist}: the namespace package must not ship __init__"
        for n in files:
            assert n not in shipped, f"{n} is in both {shipped[n]} and {dist}"
            shipped[n] = dist
        # every Python file of the source folder is in the wheel: nothing is lost in the split
        src = REPO / folder / "flytekitplugins"
        if packages:
            sources = {p.relative_to(src.parent).as_posix() for p in src.rglob("*.py") if "__pycache__" not in p.parts}
            assert sources <= set(files), sorted(sources - set(files))[:5]


def test_the_core_pulls_no_flyte_and_no_ml_stack_and_the_plugins_register_by_entry_point(
    wheels: dict[str, Path],
) -> None:
    _, core_eps, core_requires = _metadata(wheels["flyte_aios_core"])
    core_deps = {_requirement_name(r) for r in core_requires.splitlines()}
    assert not core_deps & (HEAVY | {"flytekit", "flyte"}), core_deps
    assert core_eps["console_scripts"] == ["aios=flytekitplugins.aios_core.cli:main"]

    _, fk_eps, fk_requires = _metadata(wheels["flytekitplugins_aios"])
    base = {_requirement_name(r) for r in fk_requires.splitlines() if "extra ==" not in r}
    assert base == {"flyte-aios-core", "flytekit"}, base
    assert fk_eps["flytekit.plugins"] == ["aios=flytekitplugins.aios"]

    _, conn_eps, _ = _metadata(wheels["flytekitplugins_aios_connectors"])
    assert conn_eps["flytekit.plugins"] == ["aios_connectors=flytekitplugins.aios_connectors.registry"]

    _, _, f2_requires = _metadata(wheels["flyte_aios_flyte2"])
    assert {_requirement_name(r) for r in f2_requires.splitlines()} == {"flyte-aios-core", "flyte"}


def _index_reachable(python: Path) -> bool:
    probe = subprocess.run(
        [str(python), "-m", "pip", "download", "-q", "--no-deps", "-d", str(python.parent.parent / ".probe"), "six"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return probe.returncode == 0


@pytest.mark.slow
def test_core_plus_flytekit_plugin_alone_gate_a_plain_task(wheels: dict[str, Path], tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
         str(wheels["flyte_aios_core"]), str(wheels["flytekitplugins_aios"])],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    if install.returncode != 0 and not os.environ.get("CI") and not _index_reachable(python):
        pytest.skip("the package index is unreachable from this machine")
    assert install.returncode == 0, install.stderr[-3000:]

    listed = subprocess.run([str(python), "-m", "pip", "list", "--format=json"], capture_output=True, text=True)
    installed = {_requirement_name(p["name"]) for p in json.loads(listed.stdout)}
    assert {"flyte-aios-core", "flytekitplugins-aios", "flytekit"} <= installed
    assert not installed & HEAVY, sorted(installed & HEAVY)

    state = tmp_path / "state"
    state.mkdir()
    env = {
        "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(tmp_path),
        "TMPDIR": str(tmp_path),
        "AIOS_STATE_DIR": str(state),
        "AIOS_CONFIG_DIR": str(REPO / "config"),
        "AIOS_AUDIT_STORE": f"sqlite:///{state}/audit.db",
    }

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(list(args), cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)

    # every module of the governance core imports without loading flytekit, flyte or the ML stack
    core = run(str(python), str(SPLIT_TASK), "core")
    assert core.returncode == 0, core.stderr[-3000:]
    report = json.loads(core.stdout.strip().splitlines()[-1])
    assert report["loaded"] == [] and report["modules"] > 50, report

    # a pipeline principal may run governed tasks; a finance approver may not (config/policies/tasks.cedar)
    allowed = run(str(python), str(SPLIT_TASK), "run", "service:document-pipeline", "41")
    denied = run(str(python), str(SPLIT_TASK), "run", "user:bob", "1")
    assert allowed.returncode == 0 and denied.returncode == 0, (allowed.stderr[-2000:], denied.stderr[-2000:])
    ok, no = (json.loads(p.stdout.strip().splitlines()[-1]) for p in (allowed, denied))
    assert ok == {"task_type": "aios-policy-gate", "plugin_loaded": True, "result": 42, "ran": True}, ok
    assert no["ran"] is False and no["task_type"] == "aios-policy-gate", no
    assert "policy denied user:bob run_task on Task::split.increment" in no["denied"], no

    verify = run(str(venv / "bin" / "aios"), "audit", "verify", "--json")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    shown = run(str(venv / "bin" / "aios"), "audit", "show", "--json", "--limit", "10")
    records = [json.loads(line) for line in shown.stdout.splitlines() if line.strip()]
    decisions = [(r["event"]["kind"], r["event"]["actor"], r["event"]["status"]) for r in records]
    assert decisions == [
        ("policy_decision", "service:document-pipeline", "allow"),
        ("policy_decision", "user:bob", "deny"),
    ], decisions
    assert all(r["event"]["code_version"] == "flyte-aios-core==0.1.0" for r in records)
