"""A Celery worker host's own metrics endpoint: its pool's task counters and runtimes, merged
over the pool processes (the multiprocess directory), its system figures, and, on the host
holding the shop-wide lease, the queue lengths and workers online (docs/scale.md).

Started in the worker's main process when `CELERY_METRICS_LISTEN` (`host:port`) is set, once
the pool is up; same bearer token as the app's endpoint (`MONITORING_TOKEN`; none set: every
request is refused). Served on `/metrics` and on the app's path, so one scrape job fits both.
"""

from __future__ import annotations

import logging
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from monitoring.auth import CHALLENGE, authorization_has_token
from monitoring.metrics import CONTENT_TYPE, exposition

logger = logging.getLogger(__name__)

PATHS = {"/metrics", "/api/monitoring/prometheus/"}
LISTEN_ENV = "CELERY_METRICS_LISTEN"

_server: ThreadingHTTPServer | None = None


class _Handler(BaseHTTPRequestHandler):
    server_version = "pasargad-worker-metrics"

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        if self.path.split("?", 1)[0] not in PATHS:
            self._answer(404, b'{"detail": "Not found."}', "application/json")
        elif not authorization_has_token(self.headers.get("Authorization", "")):
            self._answer(401, b'{"detail": "The monitoring bearer token is required."}',
                         "application/json", challenge=True)  # fmt: skip
        else:
            self._answer(200, exposition(), CONTENT_TYPE)

    def _answer(self, status: int, body: bytes, kind: str, *, challenge: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        if challenge:
            self.send_header("WWW-Authenticate", CHALLENGE)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:  # noqa: A002
        logger.debug("worker metrics: " + format, *args)


def parse_listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"{LISTEN_ENV}={value!r}: expected host:port, e.g. 0.0.0.0:9808")
    return host.strip("[]") or "0.0.0.0", int(port)


def start(listen: str) -> ThreadingHTTPServer:
    """Serve in a daemon thread of this (the worker's main) process."""
    global _server
    _server = ThreadingHTTPServer(parse_listen(listen), _Handler)
    _server.daemon_threads = True
    threading.Thread(target=_server.serve_forever, name="worker-metrics", daemon=True).start()
    logger.info("worker metrics endpoint on %s", listen)
    return _server


def start_from_environment(**_) -> None:
    """`worker_ready` receiver: the pool has forked, so no pool process runs the server."""
    listen = os.environ.get(LISTEN_ENV, "")
    if listen and _server is None:
        start(listen)


def close_in_pool_process(**_) -> None:
    """`worker_process_init` receiver: a pool process forked later (a recycled child) holds a
    copy of the listening socket; close it, so only the main process has the port."""
    if _server is not None:
        _server.socket.close()
