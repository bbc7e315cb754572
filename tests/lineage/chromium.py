"""Open a report in headless Chromium: its DOM after the scripts ran, its console errors, a screenshot."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is required in CI")
        pytest.skip("chromium not installed")
    return found


def _run(url: str, *extra: str) -> subprocess.CompletedProcess[str]:
    short = Path(tempfile.mkdtemp(prefix="aios-chr-", dir="/tmp"))  # its socket path must stay short
    cmd = [
        _chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--enable-logging=stderr", "--v=0",
        f"--user-data-dir={short / 'profile'}", "--virtual-time-budget=20000", *extra, url,
    ]  # fmt: skip
    try:
        return subprocess.run(
            cmd, capture_output=True, text=True, timeout=180, env={**os.environ, "TMPDIR": str(short)}
        )
    finally:
        shutil.rmtree(short, ignore_errors=True)


def console_errors(stderr: str) -> list[str]:
    """Console messages at error level and uncaught exceptions Chromium logged."""
    return [line for line in stderr.splitlines() if "Uncaught" in line or ("CONSOLE" in line and ":ERROR:" in line)]


def open_page(report: Path, fragment: str = "") -> tuple[str, list[str]]:
    """(DOM after load, console errors) of ``report`` opened with ``#fragment``."""
    out = _run(report.as_uri() + (f"#{fragment}" if fragment else ""), "--dump-dom")
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout, console_errors(out.stderr)


def screenshot(report: Path, dest: Path, fragment: str = "") -> Path:
    """A PNG of the page (kept under the test's tmp_path and copied to $AIOS_TEST_ARTIFACTS when set)."""
    out = _run(
        report.as_uri() + (f"#{fragment}" if fragment else ""), f"--screenshot={dest}", "--window-size=1400,2000"
    )
    assert out.returncode == 0 and dest.is_file(), out.stderr[-2000:]
    artifacts = os.environ.get("AIOS_TEST_ARTIFACTS")
    if artifacts:
        Path(artifacts).mkdir(parents=True, exist_ok=True)
        shutil.copy2(dest, Path(artifacts) / dest.name)
    return dest
