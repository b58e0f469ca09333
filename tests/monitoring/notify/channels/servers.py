"""Real local servers the channel tests send to: an HTTP receiver that records every request
and answers what the test says (Slack, the SMS API, webhooks), and an SMTP server (aiosmtpd)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from tests.faults import closed_port


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    body: bytes
    status: int = 200  # what the receiver answered (a 5xx: not delivered)
    at: float = field(default_factory=time.time)  # wall clock on arrival (latency tests)


class HttpReceiver(ThreadingHTTPServer):
    """Records requests on 127.0.0.1 and answers `status` with `reply` (changeable any time);
    while `hold` is clear, a request is recorded and then kept open (a sender killed meanwhile
    never learns it arrived)."""

    daemon_threads = True
    # A burst of notifications opens many connections at once: Python's default listen backlog
    # of 5 drops the rest's SYNs, which the kernel resends after 1, 3, 7… s (a burst of 40 took
    # over 30 s on a loaded machine).
    request_queue_size = 1024

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[Received] = []
        self.status = 200
        self.reply = b"ok"
        self.hold = threading.Event()
        self.hold.set()
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def close(self) -> None:
        self.hold.set()
        self.shutdown()
        self.server_close()
        self._thread.join()


class _Handler(BaseHTTPRequestHandler):
    server: HttpReceiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        status = self.server.status
        headers = {k.lower(): v for k, v in self.headers.items()}
        self.server.requests.append(Received("POST", self.path, headers, body, status))
        self.server.hold.wait(120)
        try:
            self.send_response(status)
            self.send_header("Content-Length", str(len(self.server.reply)))
            self.end_headers()
            self.wfile.write(self.server.reply)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the sender is gone (killed while the request was held)

    def log_message(self, *args) -> None:
        pass


class SmtpServer:
    """aiosmtpd on 127.0.0.1: keeps every message; `rcpt_reply`/`data_reply` make it refuse.
    `port`: listen there (a server started again where a stopped one was)."""

    def __init__(self, login: tuple[str, str] | None = None, port: int | None = None) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []  # (mail from, rcpt tos, data)
        self.arrivals: list[float] = []  # wall clock of each message's end of DATA, in order
        self.rcpt_reply: str | None = None
        self.data_reply: str | None = None
        self.login = login  # (user, password) required with AUTH (plain text: a test server)
        auth = {}
        if login:
            auth = {"auth_required": True, "auth_require_tls": False, "authenticator": self._auth}
        # aiosmtpd's Controller connects to its own port once started: it needs a real number.
        self.controller = Controller(self, hostname="127.0.0.1", port=port or closed_port(), **auth)
        self.controller.start()
        self.port = self.controller.port

    def _auth(self, server, session, envelope, mechanism, data) -> AuthResult:
        ok = (data.login.decode(), data.password.decode()) == self.login
        return AuthResult(success=ok, handled=False)  # aiosmtpd answers 235 or 535

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.data_reply:
            return self.data_reply
        self.arrivals.append(time.time())
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 OK"

    def close(self) -> None:
        self.controller.stop()
