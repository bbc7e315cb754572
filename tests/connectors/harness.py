"""Real servers for connector tests: `pyflyte serve connector` as a subprocess and a scriptable webhook.

Both listen on free loopback ports; everything is bounded in time (start-up waits, request timeouts).
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import grpc

REPO = Path(__file__).resolve().parents[2]
SOR_MODULE = "flytekitplugins.aios_connectors.system_of_record"
HAS_SOR = importlib.util.find_spec(SOR_MODULE) is not None
# the runbook's command names no module: the connectors distribution registers them through its `flytekit.plugins`
# entry point, which `import flytekit` loads in the server process
SERVE_MODULES: tuple[str, ...] = ()


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (bind to 0, read it, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Hook:
    """A webhook receiver whose behaviour the test sets: ``ok``, ``fail`` (HTTP 500), ``sleep``, ``flaky``."""

    mode: str = "ok"
    sleep_s: float = 3.0
    fail_first: int = 2
    received: list[dict[str, Any]] = field(default_factory=list)
    port: int = 0
    ticket_url: str = ""
    """The ``url`` the receiver answers (default: its own ticket page, ``/tickets/<n>``)."""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/T0KEN-in-path"

    def reset(self, mode: str = "ok", **kw: Any) -> None:
        self.mode, self.received, self.ticket_url = mode, [], ""
        for k, v in kw.items():
            setattr(self, k, v)


def _handler(hook: Hook) -> type[BaseHTTPRequestHandler]:
    class H(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # keep test output quiet
            return

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            hook.received.append({"headers": dict(self.headers), "body": body, "path": self.path})
            n = len(hook.received)
            if hook.mode == "sleep":
                time.sleep(hook.sleep_s)
            if hook.mode == "fail" or (hook.mode == "flaky" and n <= hook.fail_first):
                self._send(500, {"error": "boom"})
            else:
                url = hook.ticket_url or f"http://127.0.0.1:{hook.port}/tickets/{n}"
                self._send(200, {"id": f"TICKET-{n}", "url": url})

        def _send(self, status: int, data: dict[str, Any]) -> None:
            raw = json.dumps(data).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout test)

    return H


@contextmanager
def webhook_server() -> Iterator[Hook]:
    """A threaded HTTP server on 127.0.0.1 recording every POST."""
    hook = Hook()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(hook))
    server.daemon_threads = True
    hook.port = server.server_address[1]
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        yield hook
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class ConnectorServer:
    """A running `pyflyte serve connector` and where its output goes."""

    port: int
    metrics_port: int
    log_path: Path
    proc: subprocess.Popen[bytes]

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")


def _wait_ready(server: ConnectorServer, deadline_s: float) -> None:
    from flyteidl.admin import agent_pb2
    from flyteidl.service import agent_pb2_grpc

    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if server.proc.poll() is not None:
            raise RuntimeError(f"connector server exited early:\n{server.log_text()[-3000:]}")
        with grpc.insecure_channel(server.target) as ch:
            try:
                agent_pb2_grpc.AgentMetadataServiceStub(ch).ListAgents(agent_pb2.ListAgentsRequest(), timeout=1)
                return
            except grpc.RpcError:
                time.sleep(0.3)
    raise TimeoutError(f"connector server not ready after {deadline_s}s:\n{server.log_text()[-3000:]}")


@contextmanager
def connector_server(
    env: dict[str, str], log_dir: Path, modules: tuple[str, ...] = SERVE_MODULES, ready_s: float = 60
) -> Iterator[ConnectorServer]:
    """Start ``pyflyte serve connector --port P --prometheus_port Q [--modules ...]``; stop it afterwards.

    Unless ``env`` says otherwise, the service reads file inputs from the test session's base temporary folder
    (``tests/conftest.py`` puts the session's and every test's flytekit output folder under it: the shared volume of
    a sandbox) and its system of record writes to the tables the tests name (their prefixes), as an operator
    configures them (``AIOS_CONNECTOR_INPUT_DIRS``, ``AIOS_SYSTEM_OF_RECORD_TABLES``)."""
    raw = str(Path(tempfile.gettempdir()).parent)
    tables = "document_actions,test_actions,grpc_*,replay_*,amount_*,fetch_*"
    env = {"AIOS_CONNECTOR_INPUT_DIRS": raw, "AIOS_SYSTEM_OF_RECORD_TABLES": tables, **env}
    port, metrics = free_port(), free_port()
    pyflyte = str(Path(sys.executable).parent / "pyflyte")
    cmd = [pyflyte, "serve", "connector", "--port", str(port), "--prometheus_port", str(metrics), "--worker", "4"]
    for m in modules:
        cmd += ["--modules", m]
    log_path = log_dir / f"connector-{port}.log"
    with log_path.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=REPO, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT)
    server = ConnectorServer(port, metrics, log_path, proc)
    try:
        _wait_ready(server, ready_s)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
