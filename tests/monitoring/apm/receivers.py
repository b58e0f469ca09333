"""Real local HTTP servers standing in for the APM vendors: a Sentry envelope endpoint and an
OTLP/HTTP traces endpoint. Each decodes what arrives the way the vendor would, and keeps it."""

from __future__ import annotations

import gzip
import json
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Receiver:
    """A server on a free port in a thread; `handle(path, headers, body)` gives the status."""

    def __init__(self) -> None:
        receiver = self
        self.lock = threading.Lock()
        self.raw: list[bytes] = []  # every body as received, decompressed

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                encoding = self.headers.get("Content-Encoding", "")
                if encoding == "gzip":
                    body = gzip.decompress(body)
                elif encoding == "deflate":
                    body = zlib.decompress(body)
                status = receiver.handle(self.path, self.headers, body)
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def wait_for(self, condition, timeout: float = 30.0):
        """The first truthy `condition()`, polled until `timeout`; None if it never came."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                found = condition()
            if found:
                return found
            time.sleep(0.05)
        return None


def parse_envelope(body: bytes) -> tuple[dict, list[tuple[dict, bytes]]]:
    """Sentry's envelope format: a header line, then items, each a header line and a payload of
    the header's `length` bytes (or up to the next newline without one)."""
    header_line, _, rest = body.partition(b"\n")
    items = []
    while rest.strip():
        item_line, _, rest = rest.partition(b"\n")
        item_header = json.loads(item_line)
        length = item_header.get("length")
        if length is None:
            payload, _, rest = rest.partition(b"\n")
        else:
            payload, rest = rest[:length], rest[length + 1 :]
        items.append((item_header, payload))
    return json.loads(header_line), items


class SentryReceiver(_Receiver):
    """POST /api/<project>/envelope/: the events (type `event`) it carried, as dicts."""

    def __init__(self, project: str = "42") -> None:
        super().__init__()
        self.project = project
        self.events: list[dict] = []
        self.dsn = f"http://publickey@127.0.0.1:{self.port}/{project}"

    def handle(self, path: str, headers, body: bytes) -> int:
        if path != f"/api/{self.project}/envelope/":
            return 404
        _, items = parse_envelope(body)
        with self.lock:
            self.raw.append(body)
            for item_header, payload in items:
                if item_header.get("type") == "event":
                    self.events.append(json.loads(payload))
        return 200


class OtlpReceiver(_Receiver):
    """POST /v1/traces (protobuf): every span, flattened to a dict with hex ids."""

    def __init__(self) -> None:
        super().__init__()
        self.spans: list[dict] = []
        self.endpoint = f"http://127.0.0.1:{self.port}"

    def handle(self, path: str, headers, body: bytes) -> int:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
        )

        if path != "/v1/traces" or headers.get("Content-Type") != "application/x-protobuf":
            return 404
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        spans = []
        for resource_spans in request.resource_spans:
            resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    spans.append(
                        {
                            "trace_id": span.trace_id.hex(),
                            "span_id": span.span_id.hex(),
                            "parent_span_id": span.parent_span_id.hex(),
                            "name": span.name,
                            "kind": span.kind,
                            "scope": scope_spans.scope.name,
                            "attributes": {a.key: _value(a.value) for a in span.attributes},
                            "resource": resource,
                        }
                    )
        with self.lock:
            self.raw.append(body)
            self.spans.extend(spans)
        return 200


def _value(any_value):
    kind = any_value.WhichOneof("value")
    return None if kind is None else getattr(any_value, kind)
