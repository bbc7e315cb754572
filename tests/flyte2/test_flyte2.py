"""The Flyte 2 adapter's tests, run in their own environment (.venv-flyte2: flyte 2.x, no flytekit).

flytekit 1.16 and flyte 2.x do not share one environment here (pip would downgrade flytekit's rich-click), so
scripts/setup_flyte2.sh makes .venv-flyte2 (scripts/test.sh runs it after the main set-up) and this test runs
tests/flyte2/inner there. It is skipped only when that environment cannot be made because the package index is
unreachable, and never in CI (``CI`` set): there a missing environment fails.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
VENV = REPO / ".venv-flyte2"
INNER = "tests/flyte2/inner"


def _environment() -> None:
    """Make (or check) .venv-flyte2; skip only when the package index cannot be reached outside CI."""
    res = subprocess.run(
        ["bash", str(REPO / "scripts" / "setup_flyte2.sh")], cwd=REPO, capture_output=True, text=True, timeout=1200
    )
    if res.returncode == 3 and not os.environ.get("CI"):
        pytest.skip(f"the Flyte 2 environment could not be created: {res.stderr.strip()[-300:]}")
    assert res.returncode == 0, f"scripts/setup_flyte2.sh failed:\n{res.stdout[-2000:]}\n{res.stderr[-3000:]}"


@pytest.mark.slow
def test_flyte2_adapter_suite(tmp_path: Path) -> None:
    _environment()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIOS_", "VIRTUAL_ENV", "PYTHONPATH"))}
    env.update({"PYTHONDONTWRITEBYTECODE": "1", "TMPDIR": str(tmp_path), "HOME": str(tmp_path)})
    cmd = [str(VENV / "bin" / "pytest"), "-c", f"{INNER}/pytest.ini", "--rootdir", INNER, "--confcutdir", INNER]
    cmd += ["-q", "--basetemp", str(tmp_path / "inner"), INNER]
    res = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    tail = (res.stdout + res.stderr)[-6000:]
    assert res.returncode == 0, f"Flyte 2 adapter tests failed in {VENV}:\n{tail}"
    assert " passed" in res.stdout and " failed" not in res.stdout and "skipped" not in res.stdout, tail
