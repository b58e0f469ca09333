"""A real HTTP(S) server whose answer a test flips, counting the requests it gets."""

from __future__ import annotations

import ssl
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class Site:
    def __init__(self, *, certfile: Path | None = None, keyfile: Path | None = None):
        self.status = 200
        self.body = b"<h1>Pasargad Prints</h1>"
        self.content_type = "text/html"
        self.delay_s = 0.0
        self.headers: dict[str, str] = {}
        self.requests: list[tuple[str, str, dict, bytes]] = []
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self):
                status = site.status  # read before the request is counted (tests count them)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                site.requests.append((self.command, self.path, dict(self.headers), body))
                if site.delay_s:
                    time.sleep(site.delay_s)
                self.send_response(status)
                self.send_header("Content-Type", site.content_type)
                self.send_header("Content-Length", str(len(site.body)))
                for name, value in site.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(site.body)

            do_GET = do_POST = do_HEAD = _answer

            def log_message(self, *args):
                pass

        class Server(ThreadingHTTPServer):
            def handle_error(self, request, client_address):
                pass  # a probe that timed out or refused our certificate hung up: expected

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.scheme = "http"
        if certfile is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(certfile, keyfile)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
            self.scheme = "https"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def self_signed(directory: Path, days: int) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 valid for `days`, made by the openssl command."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            str(days),
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    return cert, key
