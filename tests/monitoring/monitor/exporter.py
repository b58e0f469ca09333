"""A tiny real HTTP server exporting Prometheus text format, whose body tests change at will."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Exporter(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.body = ""
        self.status = 200
        self.delay_s = 0.0  # a slow or hung target; `release` ends the wait early
        self.release = threading.Event()
        self.requests: list[dict[str, str]] = []
        self._thread = threading.Thread(target=self.serve_forever, args=(0.05,), daemon=True)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"

    def __enter__(self) -> Exporter:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.release.set()
        self.shutdown()
        self.server_close()


class _Handler(BaseHTTPRequestHandler):
    server: Exporter

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self.server.requests.append({"path": self.path, **dict(self.headers.items())})
        if self.server.delay_s:
            self.server.release.wait(self.server.delay_s)
        body = self.server.body.encode()
        try:
            self.send_response(self.server.status)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the scraper gave up (timeout)

    def log_message(self, *args) -> None:
        pass
