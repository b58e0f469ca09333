"""One HTTP POST, its failure classified as Alertmanager's ``Retrier`` does.

2xx is delivered; 5xx and 429 are worth retrying (the receiver is down or throttling); any other
status is the request's fault (bad URL, bad credentials, refused payload) and retrying would
only repeat it; no answer at all (refused, reset, timed out) is worth retrying.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import io
import logging
import select
import socket
import ssl
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pycurl

from monitoring.notify.notification import Delivery

logger = logging.getLogger(__name__)

Done = Callable[[Delivery], None]

# Kept-alive connections the multi handle keeps (libcurl's default: 4 per transfer added).
_KEPT_CONNECTIONS = 256

# How much of a refusal's body a Delivery reason quotes (receivers explain themselves there).
_BODY_QUOTE = 200

# libcurl's failures, named as the reasons have named them so far (operators read them in
# NotificationChannelDown's description and the logs).
_CONNECT_FAILED = {pycurl.E_COULDNT_CONNECT, pycurl.E_COULDNT_RESOLVE_HOST}
_DROPPED = {
    pycurl.E_GOT_NOTHING: "RemoteDisconnected",
    pycurl.E_SEND_ERROR: "ConnectionResetError",
    pycurl.E_RECV_ERROR: "ConnectionResetError",
}


def classify_status(status: int, body: str, what: str) -> Delivery:
    if 200 <= status < 300:
        return Delivery.ok()
    reason = f"{what}: HTTP {status}"
    detail = " ".join(body.split())[:_BODY_QUOTE]
    if detail:
        reason += f": {detail}"
    if status >= 500 or status == 429:
        return Delivery.retryable(reason)
    return Delivery.permanent(reason)


@dataclass(slots=True)
class _Request:
    done: Done
    what: str
    url: str = ""
    headers: list[str] = field(default_factory=list)
    body: bytes = b""
    answer: Delivery | None = None  # known before sending (a bad URL or header)
    response: io.BytesIO = field(default_factory=io.BytesIO)


def _answer(request: _Request, delivery: Delivery) -> None:
    try:
        request.done(delivery)
    except Exception:  # the caller's bug must not stop the client's thread
        logger.exception("%s: handling an outcome failed", request.what)


def wait_for_outcome(start: Callable[[Done], None]) -> Delivery:
    """Start an asynchronous send (`start(done)`) and wait for its outcome."""
    answered = threading.Event()
    outcome: list[Delivery] = []

    def done(delivery: Delivery) -> None:
        outcome.append(delivery)
        answered.set()

    start(done)
    answered.wait()
    return outcome[0]


def _ca_file() -> str | None:
    """The system's CA bundle (the pycurl wheel's own libcurl may look elsewhere)."""
    paths = ssl.get_default_verify_paths()
    for candidate in (paths.cafile, paths.openssl_cafile):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


class HttpClient:
    """POSTs over persistent HTTP/1.1 connections, many at once, through libcurl's multi
    interface (pycurl), driven by one thread of the client's own, as Alertmanager's Go client
    keeps its connections.

    libcurl rather than a pure-Python client for its cost (a notification's exchange is
    ~0.08 ms of this interpreter's time against urllib3's ~0.32 ms), and its multi interface
    so that many requests are in flight without a thread each: a thread per send takes the
    interpreter from the notifier's flush at every wake-up, while the multi interface's thread
    sleeps in `select` and runs only to start transfers and hand back their outcomes
    (docs/benchmarks.md, "Notifier: delivery latency beside a real Alertmanager").

    `start_post` queues a request and returns; its `done` is called once with the classified
    `Delivery`, always from the client's thread (never inside `start_post`), so a caller may
    start its next request from `done`. `post` waits for one (tests, `monitor notify-test`).
    The thread starts with the first request; connections are kept alive in the multi
    handle's cache and reused by whichever request goes next to the same host.

    No proxies (not even from the environment) and no redirects, as the notifier's
    `http_config` refuses both (Alertmanager's own default); TLS with the system's
    certificates; TCP_NODELAY (libcurl's default). The pipeline's retry policy retries, from
    the classified `Delivery`. One exception, as Go's transport makes it for a request with
    an `Idempotency-Key` (every notification carries one): a request sent on a kept-alive
    connection that the server dropped before answering (closed past its idle timeout, racing
    the request) goes once more on a fresh connection — libcurl does exactly that itself, and
    never more than once. Timeouts are not resent: the receiver may still be working."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_ms = max(1, round(timeout_s * 1000))
        self._ca_file = _ca_file()
        self._lock = threading.Lock()
        # Under `_lock`: requests queued for the thread, the thread, its wake-up socket
        # pair, whether a wake-up byte is unread, and whether `close` asked it to end.
        self._queue: list[_Request] = []
        self._thread: threading.Thread | None = None
        self._wakeup: tuple[socket.socket, socket.socket] | None = None
        self._woken = False
        self._closing = False

    def start_post(
        self, url: str, body: bytes, headers: Mapping[str, str], what: str, done: Done
    ) -> None:
        """Queue a POST of `body` to `url`; `done(delivery)` follows, from the client's thread.
        `what` names the channel in reasons (never the URL: it holds secrets, a Slack
        webhook's path is its credential)."""
        request = _Request(done=done, what=what)
        parsed = _url_parse(url)
        if isinstance(parsed, str):
            request.answer = Delivery.permanent(f"{what}: {parsed}")
        else:
            request.url, authorization = parsed
            lines = [f"{name}: {value}" for name, value in headers.items()]
            if authorization and not any(n.lower() == "authorization" for n in headers):
                lines.append(f"Authorization: {authorization}")
            if any("\r" in line or "\n" in line for line in lines):
                request.answer = Delivery.permanent(
                    f"{what}: invalid header: a header holds a line break"
                )
            # No 100-continue round trip; no header we never sent.
            request.headers, request.body = [*lines, "Expect:", "Accept:"], body
        self._queue_request(request)

    def answer(self, delivery: Delivery, done: Done) -> None:
        """Hand an outcome known without sending to `done`, from the client's thread as any
        other (a caller never sees `done` run inside its own call)."""
        self._queue_request(_Request(done=done, what="", answer=delivery))

    def _queue_request(self, request: _Request) -> None:
        with self._lock:
            self._queue.append(request)
            if self._thread is None:
                self._closing, self._woken = False, False
                self._wakeup = socket.socketpair()
                for end in self._wakeup:
                    end.setblocking(False)
                self._thread = threading.Thread(target=self._run, name="notify-http", daemon=True)
                self._thread.start()
            else:
                self._wake_locked()

    def post(self, url: str, body: bytes, headers: Mapping[str, str], what: str) -> Delivery:
        """POST and wait for the outcome."""
        return wait_for_outcome(lambda done: self.start_post(url, body, headers, what, done))

    def close(self) -> None:
        """Close the connections once the requests in flight are answered (or time out): the
        thread ends then. The client can still be used: a later request starts it again."""
        with self._lock:
            self._closing = True
            if self._thread is not None:
                self._wake_locked()

    def _wake_locked(self) -> None:
        if not self._woken and self._wakeup is not None:
            self._woken = True
            with contextlib.suppress(OSError):  # full (a byte is unread) or just closed
                self._wakeup[1].send(b"\0")

    def _run(self) -> None:
        multi = pycurl.CurlMulti()
        multi.setopt(pycurl.M_MAXCONNECTS, _KEPT_CONNECTIONS)
        idle: list[pycurl.Curl] = []  # handles to reuse (their options set once)
        active: dict[pycurl.Curl, _Request] = {}
        try:
            self._serve(multi, idle, active)
        except Exception as exc:  # a libcurl or client bug: every request still gets its answer
            logger.exception("the notifier's HTTP client failed")
            with self._lock:
                stranded, self._queue = [*active.values(), *self._queue], []
                self._thread, self._wakeup = None, None
            for request in stranded:
                _answer(request, Delivery.retryable(f"{request.what}: client failed: {exc}"))
        finally:
            for curl in [*active, *idle]:
                with contextlib.suppress(pycurl.error):
                    multi.remove_handle(curl)
                curl.close()
            multi.close()

    def _serve(
        self, multi: pycurl.CurlMulti, idle: list[pycurl.Curl], active: dict[pycurl.Curl, _Request]
    ) -> None:
        """Start what is queued, hand back what has finished, sleep until a socket, a timeout
        or a new request needs the thread; until closed with nothing in flight."""
        with self._lock:
            assert self._wakeup is not None
            wakeup = self._wakeup
        try:
            while True:
                with self._lock:
                    queued, self._queue = self._queue, []
                    if not queued and not active and self._closing:
                        self._thread, self._wakeup = None, None
                        return
                    self._woken = False
                    with contextlib.suppress(BlockingIOError):
                        wakeup[0].recv(64)
                for request in queued:
                    if request.answer is not None:
                        _answer(request, request.answer)
                        continue
                    curl = idle.pop() if idle else self._new_handle()
                    curl.setopt(pycurl.URL, request.url)
                    curl.setopt(pycurl.POSTFIELDS, request.body)
                    curl.setopt(pycurl.HTTPHEADER, request.headers)
                    curl.setopt(pycurl.WRITEDATA, request.response)
                    multi.add_handle(curl)
                    active[curl] = request
                while multi.perform()[0] == pycurl.E_CALL_MULTI_PERFORM:
                    pass
                self._finish(multi, idle, active)
                reading, writing, failing = multi.fdset()
                timeout_ms = multi.timeout()
                wait_s = 1.0 if timeout_ms < 0 else min(1.0, timeout_ms / 1000)
                if active and not (reading or writing or failing):
                    wait_s = min(wait_s, 0.01)  # libcurl busy without a socket (resolving)
                select.select([*reading, wakeup[0]], writing, failing, wait_s)
        finally:
            for end in wakeup:
                end.close()

    @staticmethod
    def _finish(
        multi: pycurl.CurlMulti, idle: list[pycurl.Curl], active: dict[pycurl.Curl, _Request]
    ) -> None:
        """Hand back every finished transfer's outcome; its handle waits for the next."""
        while True:
            left, succeeded, failed = multi.info_read()
            for curl, code, message in [(c, None, "") for c in succeeded] + failed:
                multi.remove_handle(curl)
                request = active.pop(curl)
                if code is None:
                    status = curl.getinfo(pycurl.RESPONSE_CODE)
                    body = request.response.getvalue().decode(errors="replace")
                    delivery = classify_status(status, body, request.what)
                else:
                    delivery = _failure(curl, code, message, request.what)
                curl.setopt(pycurl.WRITEDATA, io.BytesIO())  # drop the answer's buffer
                idle.append(curl)
                _answer(request, delivery)
            if not left:
                return

    def _new_handle(self) -> pycurl.Curl:
        curl = pycurl.Curl()
        curl.setopt(pycurl.NOSIGNAL, 1)  # threads: no SIGALRM for timeouts
        curl.setopt(pycurl.PROXY, "")  # none, even from http_proxy in the environment
        curl.setopt(pycurl.FOLLOWLOCATION, 0)
        curl.setopt(pycurl.USERAGENT, "pasargad-notifier")  # not libcurl's versions
        curl.setopt(pycurl.PROTOCOLS, pycurl.PROTO_HTTP | pycurl.PROTO_HTTPS)
        curl.setopt(pycurl.CONNECTTIMEOUT_MS, self.timeout_ms)
        curl.setopt(pycurl.TIMEOUT_MS, self.timeout_ms)  # the whole exchange, as Go's Timeout
        if self._ca_file:
            curl.setopt(pycurl.CAINFO, self._ca_file)
        return curl


def _failure(curl: pycurl.Curl, code: int, message: str, what: str) -> Delivery:
    if code in _CONNECT_FAILED:
        return Delivery.retryable(f"{what}: ConnectError: {message}")
    if code == pycurl.E_OPERATION_TIMEDOUT:
        connected = curl.getinfo(pycurl.CONNECT_TIME) > 0
        return Delivery.retryable(
            f"{what}: timed out ({'Read' if connected else 'Connect'}Timeout)"
        )
    if code in _DROPPED:
        return Delivery.retryable(f"{what}: {_DROPPED[code]}: {message}")
    return Delivery.retryable(f"{what}: curl error {code}: {message}")


@functools.lru_cache(maxsize=256)
def _url_parse(url: str) -> tuple[str, str] | str:
    """The URL without its user info, and the Basic authorization that user info makes, or
    what is wrong with the URL (parsed once per URL: it is the same every send)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "not an http(s) URL"
    try:
        parts.port  # noqa: B018 (raises on a bad one)
    except ValueError:
        return "invalid port in the URL"
    authorization = ""
    if parts.username is not None:
        user = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        authorization = "Basic " + base64.b64encode(user.encode()).decode()
    netloc = parts.netloc.rpartition("@")[2]
    target = parts._replace(netloc=netloc, fragment="").geturl()
    if not parts.path:
        target = parts._replace(netloc=netloc, path="/", fragment="").geturl()
    return target, authorization
