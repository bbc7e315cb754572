"""A task process ends within the exit deadline whatever its lineage and OTLP backends do (review of 2026-12-06).

Each step of the exit flush had a bound of its own (60 s, 30 s twice, 5 s, then the OTel providers' shutdowns and
the exporters' retries): a backend that accepted connections and never answered held a one-task process 140 s after
its 0.3 s body, and every pod of a pipeline pays that one after the other. Now a queue that stalls
(``emit.EXIT_STALL_S`` without one event handled) leaves the other steps ``emit.EXIT_GRACE_S`` together; what is not
sent is dropped, said in a warning, and the audit log keeps it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from flytekitplugins.aios_audit import emit

CHILD = """
import sys, time
from flytekit import task
from flytekitplugins.aios_audit import audited

@task
@audited()
def one(n: int) -> int:
    return n + 1

assert one(n=1) == 2
print("RETURNED", time.monotonic(), flush=True)
"""


@pytest.fixture
def hung_backend() -> Iterator[str]:
    """A server that accepts every connection and never answers (a hung lineage and OTLP backend)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1024)
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                held.append(server.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    server.close()
    for c in held:
        c.close()


@pytest.mark.slow
def test_a_hung_backend_holds_a_task_process_no_longer_than_the_exit_deadline(
    tmp_path: Path, hung_backend: str
) -> None:
    (tmp_path / "child.py").write_text(CHILD)
    env = {
        **os.environ,
        "AIOS_STATE_DIR": str(tmp_path / "state"),
        "AIOS_AUDIT_STORE": f"sqlite:///{tmp_path}/state/audit.db",
        "OPENLINEAGE_URL": hung_backend,
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_METRICS_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_ENDPOINT": hung_backend,
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
    }
    proc = subprocess.Popen(
        [sys.executable, str(tmp_path / "child.py")],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        out, err = proc.communicate(timeout=EXIT_LIMIT + 120)
    except subprocess.TimeoutExpired:  # the code before the deadline: about 140 s
        proc.kill()
        out, err = proc.communicate()
    ended = time.monotonic()
    assert "RETURNED" in out, err[-2000:]
    returned = float(out.split("RETURNED", 1)[1].split()[0])
    held = ended - returned
    assert proc.returncode == 0, err[-2000:]
    assert held < EXIT_LIMIT, f"the process was held {held:.1f} s after its task returned"
    assert "still queued" in err or "dropped" in err, err[-2000:]  # what was not sent is said


EXIT_LIMIT = emit.EXIT_STALL_S + emit.EXIT_GRACE_S + 8.0  # and the interpreter's own exit, a loaded machine's slack
