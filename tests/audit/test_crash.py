"""Crash test: writers killed with SIGKILL at random moments never lose an acknowledged record or fork."""

from __future__ import annotations

import os
import random
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from flytekitplugins.aios_audit.stores import open_store
from flytekitplugins.aios_audit.verify import verify_store

WRITER = Path(__file__).with_name("crash_writer.py")
REPO = Path(__file__).resolve().parents[2]


def _spawn(url: str, name: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, str(WRITER), url, name], stdout=subprocess.PIPE, env=env)


def _read_acks(procs: list[subprocess.Popen[bytes]], seconds: float) -> dict[int, str]:
    """Collect acknowledgements until ``seconds`` pass; killing children at random moments meanwhile."""
    acks: dict[int, str] = {}
    buf = {p.pid: b"" for p in procs}
    deadline = time.monotonic() + 60
    kill_at: dict[int, float] = {}  # set at a child's first acknowledgement (imports can be slow under load)
    while procs and time.monotonic() < deadline:
        for p in list(procs):
            if time.monotonic() >= kill_at.get(p.pid, float("inf")) and p.poll() is None:
                p.send_signal(signal.SIGKILL)
        ready, _, _ = select.select([p.stdout for p in procs], [], [], 0.05)
        for p in procs[:]:
            assert p.stdout is not None
            if p.stdout in ready:
                chunk = os.read(p.stdout.fileno(), 65536)
                if not chunk:
                    procs.remove(p)
                    continue
                buf[p.pid] += chunk
                kill_at.setdefault(p.pid, time.monotonic() + random.uniform(0.2, seconds))
                *lines, buf[p.pid] = buf[p.pid].split(b"\n")
                for line in lines:
                    seq, rid = line.decode().split()
                    assert int(seq) not in acks, f"seq {seq} acknowledged twice: the chain forked"
                    acks[int(seq)] = rid
    return acks


def _crash_round(url: str, writers: int, seconds: float) -> None:
    random.seed(os.getpid())
    total: dict[int, str] = {}
    for round_ in range(2):  # second round: writers start on a log whose writers were killed mid-transaction
        procs = [_spawn(url, f"w{round_}{i}") for i in range(writers)]
        total.update(_read_acks(procs, seconds))
        for p in procs:
            p.wait(timeout=10)
    store = open_store(url)
    try:
        result = verify_store(store)
        assert result.ok, result.summary()
        assert len(total) > 20, "writers acknowledged too few records to make the test meaningful"
        assert result.size >= max(total)
        for seq, rid in total.items():
            rec = store.get(rid)
            assert rec is not None and rec.seq == seq, f"acknowledged record {seq} lost"
    finally:
        store.close()


@pytest.mark.slow
def test_sqlite_writers_killed_lose_nothing(aios_env: Path) -> None:
    _crash_round(f"sqlite:///{aios_env}/crash.db", writers=4, seconds=1.5)


@pytest.mark.slow
@pytest.mark.postgres
def test_postgres_writers_killed_lose_nothing(pg_url: str) -> None:
    _crash_round(pg_url, writers=4, seconds=1.5)
