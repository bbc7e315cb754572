"""The hermeticity guard itself: it notices a test writing into the checkout, and fails that run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.hermetic import RepoGuard, changes, inventory

pytest_plugins = ["pytester"]

WRITER = """
from pathlib import Path

def test_writes_default_state(): {body}

def test_clean(tmp_path):
    (tmp_path / "fine.txt").write_text("x")
"""


def _checkout(root: Path) -> Path:
    for rel in ("tracked.py", "pkg/mod.py", ".venv/lib/site.py", ".data/in.csv"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("x")
    return root


def test_inventory_reports_created_modified_and_deleted_files(tmp_path: Path) -> None:
    root = _checkout(tmp_path / "repo")
    before = inventory(root, frozenset({"tracked.py"}))
    assert "tracked.py" not in before and ".venv/lib/site.py" not in before and "pkg/mod.py" in before
    (root / ".aios").mkdir()
    (root / ".aios" / "audit.db").write_bytes(b"sqlite")
    (root / "pkg" / "mod.py").write_text("changed")
    os.utime(root / "pkg" / "mod.py", ns=(1, 1))
    (root / ".data" / "in.csv").write_text("read-only use is fine; the guard skips .data")
    (root / "tracked.py").write_text("git reports changes of tracked files")
    assert changes(before, inventory(root, frozenset({"tracked.py"}))) == [
        "created  .aios",
        "created  .aios/audit.db",
        "modified pkg/mod.py",
    ]
    (root / "pkg" / "mod.py").unlink()
    assert "deleted  pkg/mod.py" in changes(before, inventory(root, frozenset({"tracked.py"})))


def test_quick_look_covers_the_state_dir_and_the_top_level(tmp_path: Path) -> None:
    root = _checkout(tmp_path / "repo")
    before = inventory(root, top_level_only=True)
    (root / "pkg" / "new.py").write_text("only the session's full inventory sees this")
    (root / ".aios" / "keys").mkdir(parents=True)
    (root / "flyte-package.tgz").write_bytes(b"")
    assert changes(before, inventory(root, top_level_only=True)) == [
        "created  .aios",
        "created  .aios/keys",
        "created  flyte-package.tgz",
    ]


@pytest.fixture(autouse=True)
def _keep_lazy_modules() -> None:
    """Import what the inner, in-process pytest run would import lazily (great_tables, through the plugins'
    entry points): pytester drops every module first imported inside it from sys.modules afterwards, and a later
    re-import made a second set of great_tables classes its own registry does not know ("Unsupported location
    type LocHeader" in the next test rendering a pandera Deck)."""
    import great_tables  # noqa: F401


@pytest.mark.parametrize("where", [".aios/audit.db", "results.csv"])
def test_a_test_writing_into_the_checkout_fails_the_run(pytester: pytest.Pytester, where: str) -> None:
    root = _checkout(pytester.path / "checkout")
    body = f"Path({str(root / where)!r}).parent.mkdir(exist_ok=True); Path({str(root / where)!r}).write_text('x')"
    pytester.makepyfile(test_writer=WRITER.format(body=body))
    result = pytester.runpytest("-p", "no:randomly", "-p", "no:cacheprovider", plugins=[RepoGuard(root)])
    result.assert_outcomes(passed=2, errors=1)  # the writer's teardown names it
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*test_writes_default_state wrote into the repository*", f"*created  {where}"])
    result.stdout.fnmatch_lines(["*hermeticity guard*", f"  created  {where}"])


def test_a_clean_run_passes_the_guard(pytester: pytest.Pytester) -> None:
    root = _checkout(pytester.path / "checkout")
    pytester.makepyfile(test_writer=WRITER.format(body="pass"))
    result = pytester.runpytest("-p", "no:randomly", "-p", "no:cacheprovider", plugins=[RepoGuard(root)])
    result.assert_outcomes(passed=2)
    assert result.ret == pytest.ExitCode.OK
    assert "hermeticity guard" not in result.stdout.str()
