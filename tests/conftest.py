"""Shared test set-up: every test gets its own state dir, audit DB, temp dir, HOME, cwd and flytekit sandbox.

The session runs under a temp root in pytest's basetemp (``TMPDIR``, set before flytekit is imported, so flytekit's
process-wide ``flyte-*`` folders land there too); :class:`tests.hermetic.RepoGuard` fails the run when a test
leaves files in the checkout. Process-wide caches of the pack are cleared after every test.

Tests that need PostgreSQL use the real server named by ``AIOS_TEST_PG_URL``
(default ``postgresql://postgres@127.0.0.1:5432/test``); they are skipped only when ``CI`` is unset and
no server answers. In CI a missing server fails them.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.hermetic import RepoGuard  # noqa: E402  (after the sys.path entry it needs)

os.environ.setdefault("FLYTE_LOCAL_CACHE_ENABLED", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

PG_URL = os.environ.get("AIOS_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")

# variables that would point a test at state outside its tmp_path (set by the caller's shell or a Flyte pod)
_OUTSIDE_VARS = ("AIOS_PROFILE", "AIOS_POLICY_DIR", "AIOS_PRINCIPAL", "AIOS_SIGNING_KEY", "AIOS_LINEAGE_URL")
_OUTSIDE_VARS += ("AIOS_RESULTS_DIR", "AIOS_SYSTEM_OF_RECORD_URL", "AIOS_CODE_VERSION", "AIOS_POLICY_ENGINE")
_OUTSIDE_VARS += ("FLYTECTL_CONFIG", "_FLYTECTL_CONFIG_PYFLYTE_OVERRIDE", "XDG_CONFIG_HOME", "XDG_CACHE_HOME")
_OUTSIDE_VARS += ("XDG_DATA_HOME", "XDG_STATE_HOME", "AIOS_DOCUMENT_MODELS_DIR", "AIOS_LAUNCHED_BY")
_OUTSIDE_PREFIXES = ("FLYTE_INTERNAL_", "_F_")


_SESSION_ENV = pytest.StashKey[dict[str, str | None]]()


@pytest.hookimpl(trylast=True)  # after pytest's tmpdir plugin has set up this session's basetemp
def pytest_configure(config: pytest.Config) -> None:
    """Run the session under a temp root in pytest's basetemp and guard the checkout against writes."""
    root = config._tmp_path_factory.mktemp("session", numbered=False)  # type: ignore[attr-defined]
    for name in ("home", "mpl", "hypothesis"):
        (root / name).mkdir()
    env = {"TMPDIR": str(root), "HOME": str(root / "home"), "MPLCONFIGDIR": str(root / "mpl")}
    config.stash[_SESSION_ENV] = {k: os.environ.get(k) for k in env}
    # before flytekit is imported (by the test modules): its flyte-* folders follow TMPDIR
    os.environ.update(env)
    tempfile.tempdir = str(root)
    try:  # hypothesis keeps its example database and constants cache under the cwd (the checkout) by default
        from hypothesis import settings
        from hypothesis.configuration import set_hypothesis_home_dir

        set_hypothesis_home_dir(root / "hypothesis")
        settings.register_profile("aios-hermetic", database=None)
        settings.load_profile("aios-hermetic")
    except ImportError:
        pass
    config.pluginmanager.register(RepoGuard(REPO), "aios-repo-guard")


def pytest_unconfigure(config: pytest.Config) -> None:
    """Restore the caller's environment (the temp root stays with pytest's last three basetemps)."""
    for key, val in config.stash.get(_SESSION_ENV, {}).items():
        if val is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = val
    tempfile.tempdir = None


@pytest.fixture(autouse=True)
def aios_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Isolated state per test: AIOS state dir, SQLite audit store, temp dir, HOME, cwd, flytekit sandbox."""
    state = tmp_path / "aios-state"
    tmp = tmp_path / "tmp"
    home = tmp_path / "home"
    for d in (state, tmp, home):
        d.mkdir()
    monkeypatch.setenv("AIOS_STATE_DIR", str(state))
    monkeypatch.setenv("AIOS_CONFIG_DIR", str(REPO / "config"))
    monkeypatch.setenv("AIOS_AUDIT_STORE", f"sqlite:///{state}/audit.db")
    monkeypatch.setenv("TMPDIR", str(tmp))
    monkeypatch.setenv("HOME", str(home))
    for var in [*_OUTSIDE_VARS, *(v for v in os.environ if v.startswith(_OUTSIDE_PREFIXES))]:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    monkeypatch.chdir(tmp_path)  # the default state dir is ./.aios: relative to the cwd
    _clear_process_caches()
    with _flyte_sandbox(tmp_path / "flyte"):
        yield state
    _clear_process_caches()


@contextlib.contextmanager
def _flyte_sandbox(root: Path) -> Iterator[None]:
    """flytekit's local sandbox and raw outputs under ``root`` (not its process-wide ``flyte-*`` folder)."""
    from flytekit.core.context_manager import FlyteContextManager
    from flytekit.core.data_persistence import FileAccessProvider

    fa = FileAccessProvider(local_sandbox_dir=str(root / "sandbox"), raw_output_prefix=str(root / "raw"))
    with FlyteContextManager.with_context(FlyteContextManager.current_context().with_file_access(fa)):
        yield


# what the pack (and fsspec's process-wide memory:// filesystem) keeps per process: (module, how to forget it)
_CACHES: tuple[tuple[str, Callable[[Any], None]], ...] = (
    ("flytekitplugins.aios_audit.api", lambda m: m.close_all()),  # flushes lineage, closes the open stores
    ("flytekitplugins.aios_core.settings", lambda m: m.reset_settings()),
    ("flytekitplugins.aios_policy.cedar_load", lambda m: m.clear_cache()),
    ("flytekitplugins.aios_policy.cedar_engine", lambda m: m.clear_verdicts()),
    ("flytekitplugins.aios_policy.record", lambda m: m._versions.clear()),
    ("flytekitplugins.aios_audit.recorder", lambda m: m._code_version.cache_clear()),
    ("flytekitplugins.aios_catalog.catalog", lambda m: m._catalogs.clear()),
    ("flytekitplugins.aios_connectors.system_of_record", lambda m: m._ready.clear()),
    ("fsspec.implementations.memory", lambda m: _empty_memory_fs(m.MemoryFileSystem)),
    ("tasks.documents.progress", lambda m: m.stop()),  # a reporter one test started (mode auto) shows another's stages
)


def _empty_memory_fs(fs: Any) -> None:
    fs.store.clear()
    fs.pseudo_dirs[:] = [""]


def _clear_process_caches() -> None:
    """Forget per-process state, in the modules already imported (a test may block imports)."""
    for name, forget in _CACHES:
        module = sys.modules.get(name)
        if module is not None:
            forget(module)


def _pg_available(url: str) -> bool:
    try:
        import psycopg

        with psycopg.connect(url, connect_timeout=3):
            return True
    except Exception:
        return False


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL schema on the real server; dropped afterwards."""
    if not _pg_available(PG_URL):
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is required in CI but {PG_URL} does not answer")
        pytest.skip(f"no PostgreSQL server at {PG_URL} (set AIOS_TEST_PG_URL)")
    import psycopg

    schema = f"aios_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in PG_URL else "?"
    yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
