"""Local protocol receivers started by the tests on 127.0.0.1: OpenLineage HTTP and OTLP/HTTP (protobuf)."""

from __future__ import annotations

import gzip
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest


class Receiver:
    """One HTTP server answering 200 to every POST and keeping (path, headers, decoded body)."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, dict[str, str], Any]] = []
        received = self.posts

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                received.append((self.path, dict(self.headers), _decode(self.path, body)))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def bodies(self, path: str) -> list[Any]:
        return [b for p, _, b in self.posts if p == path]

    def lineage(self) -> list[dict[str, Any]]:
        return self.bodies("/api/v1/lineage")

    def spans(self) -> list[tuple[dict[str, Any], Any]]:
        """(resource attributes, span) for every span received."""
        out = []
        for req in self.bodies("/v1/traces"):
            for rs in req.resource_spans:
                res = {a.key: a.value.string_value for a in rs.resource.attributes}
                out += [(res, s) for ss in rs.scope_spans for s in ss.spans]
        return out

    def metrics(self) -> dict[str, list[Any]]:
        """Metric name -> every data point received (histogram or sum)."""
        out: dict[str, list[Any]] = {}
        for req in self.bodies("/v1/metrics"):
            for rm in req.resource_metrics:
                for sm in rm.scope_metrics:
                    for m in sm.metrics:
                        kind = m.WhichOneof("data")
                        out.setdefault(m.name, []).extend(getattr(m, kind).data_points)
        return out


def _decode(path: str, body: bytes) -> Any:
    if path == "/v1/traces":
        req = ExportTraceServiceRequest()
        req.ParseFromString(body)
        return req
    if path == "/v1/metrics":
        req2 = ExportMetricsServiceRequest()
        req2.ParseFromString(body)
        return req2
    return json.loads(body)


def attrs(point_or_span: Any) -> dict[str, Any]:
    """Attributes of a span or data point as a plain dict."""
    out: dict[str, Any] = {}
    for a in point_or_span.attributes:
        v = a.value
        out[a.key] = getattr(v, v.WhichOneof("value")) if v.WhichOneof("value") else None
    return out
