"""Secret references and key files: env:VAR resolution fails closed, key files are 0600 and first-writer-wins."""

from __future__ import annotations

import multiprocessing
import stat
from pathlib import Path

import pytest

from flytekitplugins.aios_core.errors import ConfigError
from flytekitplugins.aios_core.keys import ed25519_pem, resolve_env_ref


def test_env_refs_resolve_or_name_the_missing_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_env_ref("sqlite:///x.db", what="store", fix="set it") == "sqlite:///x.db"
    monkeypatch.setenv("AIOS_TEST_REF", "postgresql://db/aios")
    assert resolve_env_ref("env:AIOS_TEST_REF", what="store", fix="set it") == "postgresql://db/aios"
    monkeypatch.setenv("AIOS_TEST_REF", "")
    with pytest.raises(ConfigError, match=r"store comes from \$AIOS_TEST_REF, which is not set: mount it"):
        resolve_env_ref("env:AIOS_TEST_REF", what="store", fix="mount it")


def _read(path: str, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    out.put(ed25519_pem(f"file:{path}", what="key"))


def test_key_file_is_private_and_concurrent_creators_agree(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "k.pem"
    assert ed25519_pem(f"file:{path}", what="key", generate=False) is None
    ctx = multiprocessing.get_context("fork")
    q: multiprocessing.Queue = ctx.Queue()  # type: ignore[type-arg]
    procs = [ctx.Process(target=_read, args=(str(path), q)) for _ in range(4)]
    for p in procs:
        p.start()
    pems = {q.get(timeout=30) for _ in procs}
    for p in procs:
        p.join()
    assert len(pems) == 1, "every process must end up with the same key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert b"PRIVATE KEY" in pems.pop()
    assert [p.name for p in path.parent.iterdir()] == ["k.pem"]  # no temporary files left behind
