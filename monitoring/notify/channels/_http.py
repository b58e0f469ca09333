"""One HTTP POST, its failure classified as Alertmanager's ``Retrier`` does.

2xx is delivered; 5xx and 429 are worth retrying (the receiver is down or throttling); any other
status is the request's fault (bad URL, bad credentials, refused payload) and retrying would
only repeat it; no answer at all (refused, reset, timed out) is worth retrying.
"""

from __future__ import annotations

import base64
import functools
import io
import ssl
import threading
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pycurl

from monitoring.notify.notification import Delivery

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


def _ca_file() -> str | None:
    """The system's CA bundle (the pycurl wheel's own libcurl may look elsewhere)."""
    paths = ssl.get_default_verify_paths()
    for candidate in (paths.cafile, paths.openssl_cafile):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


class HttpPool:
    """POSTs over persistent HTTP/1.1 connections, through libcurl (pycurl), as
    Alertmanager's Go client keeps its own.

    libcurl rather than a pure-Python client for its cost: a notification's HTTP exchange is
    ~0.08 ms of this interpreter's time against urllib3's ~0.32 ms (2,000 POSTs to a local
    receiver), and the exchange itself runs without the GIL, beside the next alert's routing
    (docs/benchmarks.md, "Notifier: delivery latency beside a real Alertmanager").

    Idle libcurl handles, each with its kept-alive connections, wait in a stack: a send takes
    the one used last (its connection is the likeliest still open) or makes one, and gives it
    back. A handle is used by one thread at a time (libcurl's rule; its connection cache is
    not to be shared between threads either), so there are as many as sends ever ran at
    once: the deliverer sends at most 8 at once to an integration.

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
        self._lock = threading.Lock()
        self._idle: list[pycurl.Curl] = []  # last used on top
        self._generation = 0  # bumped by `close`: a handle out at the time is not kept
        self._ca_file = _ca_file()

    def _take(self) -> tuple[int, pycurl.Curl]:
        with self._lock:
            generation = self._generation
            if self._idle:
                return generation, self._idle.pop()
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
        return generation, curl

    def _give_back(self, generation: int, curl: pycurl.Curl) -> None:
        with self._lock:
            if generation == self._generation:
                self._idle.append(curl)
                return
        curl.close()  # taken before a `close`: its connections go too

    def post(self, url: str, body: bytes, headers: Mapping[str, str], what: str) -> Delivery:
        """POST `body` to `url`; `what` names the channel in reasons (never the URL: it holds
        secrets, a Slack webhook's path is its credential)."""
        parsed = _url_parse(url)
        if isinstance(parsed, str):
            return Delivery.permanent(f"{what}: {parsed}")
        target, authorization = parsed
        lines = [f"{name}: {value}" for name, value in headers.items()]
        if authorization and not any(n.lower() == "authorization" for n in headers):
            lines.append(f"Authorization: {authorization}")
        if any("\r" in line or "\n" in line for line in lines):
            return Delivery.permanent(f"{what}: invalid header: a header holds a line break")
        lines += ["Expect:", "Accept:"]  # no 100-continue round trip; no header we never sent
        generation, curl = self._take()
        answer = io.BytesIO()
        try:
            curl.setopt(pycurl.URL, target)
            curl.setopt(pycurl.POSTFIELDS, body)
            curl.setopt(pycurl.HTTPHEADER, lines)
            curl.setopt(pycurl.WRITEDATA, answer)
            try:
                curl.perform()
            except pycurl.error as exc:
                return _failure(curl, exc, what)
            status = curl.getinfo(pycurl.RESPONSE_CODE)
        finally:
            curl.setopt(pycurl.WRITEDATA, io.BytesIO())  # drop the answer's buffer
            self._give_back(generation, curl)
        return classify_status(status, answer.getvalue().decode(errors="replace"), what)

    def close(self) -> None:
        """Close every idle connection; a handle in the middle of a send is closed when that
        send gives it back (not under it). The pool can still be used: it opens new ones."""
        with self._lock:
            self._generation += 1
            idle, self._idle = self._idle, []
        for curl in idle:
            curl.close()


def _failure(curl: pycurl.Curl, exc: pycurl.error, what: str) -> Delivery:
    code, message = exc.args[0], exc.args[1] if len(exc.args) > 1 else ""
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
