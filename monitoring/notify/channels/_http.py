"""One HTTP request, its failure classified as Alertmanager's ``Retrier`` does.

2xx is delivered; 5xx and 429 are worth retrying (the receiver is down or throttling); any other
status is the request's fault (bad URL, bad credentials, refused payload) and retrying would
only repeat it; no answer at all (refused, reset, timed out) is worth retrying.
"""

from __future__ import annotations

import base64
import functools
import ssl
import threading
from collections.abc import Mapping
from urllib.parse import unquote, urlsplit

import httpx

from monitoring.notify.channels._http11 import Closed, Connection, ProtocolError
from monitoring.notify.notification import Delivery

# How much of a refusal's body a Delivery reason quotes (receivers explain themselves there).
_BODY_QUOTE = 200


def http_client(
    transport: httpx.BaseTransport | None,
    timeout_s: float,
    auth: tuple[str, str] | None = None,
) -> httpx.Client:
    return httpx.Client(transport=transport, timeout=timeout_s, auth=auth)


def http_send(client: httpx.Client, request: httpx.Request, what: str) -> Delivery:
    """Send `request`; `what` names the channel in reasons (never the URL: it holds secrets,
    a Slack webhook's path is its credential)."""
    try:
        response = client.send(request)
    except httpx.TimeoutException as exc:
        return Delivery.retryable(f"{what}: timed out ({type(exc).__name__})")
    except httpx.TransportError as exc:
        return Delivery.retryable(f"{what}: {type(exc).__name__}: {exc}")
    return classify_status(response.status_code, response.text, what)


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


class HttpPool:
    """POSTs over persistent HTTP/1.1 connections, kept per host, as Alertmanager's Go client
    keeps its own. A minimal client (`_http11.Connection`) rather than httpx: a notification
    costs a few hundred microseconds of CPU end to end, and httpx's per-request machinery
    cost ~1 ms a request (http.client's header parsing through the email package, ~0.3 ms).

    No proxies and no redirects, as the notifier's `http_config` refuses both (Alertmanager's
    own default); TLS with the system's certificates. Thread-safe: a connection serves one
    request at a time, an idle one is reused by the next. A reused connection the server
    closed meanwhile (its keep-alive timeout) fails before any answer: the request is sent
    again once on a fresh connection, as Go's transport does for a request with an
    `Idempotency-Key` (every notification carries one)."""

    def __init__(self, timeout_s: float, *, max_idle: int = 32) -> None:
        self.timeout_s = timeout_s
        self.max_idle = max_idle  # per host: the deliverer sends at most 8 at once anyway
        self._idle: dict[tuple[str, str, int], list[Connection]] = {}
        self._lock = threading.Lock()
        self._closed = False

    def _connection(self, key: tuple[str, str, int]) -> tuple[Connection, bool]:
        with self._lock:
            idle = self._idle.get(key)
            if idle:
                return idle.pop(), True
        scheme, host, port = key
        tls = _tls_context() if scheme == "https" else None
        return Connection(host, port, timeout_s=self.timeout_s, tls=tls), False

    def _release(self, key: tuple[str, str, int], conn: Connection) -> None:
        with self._lock:
            idle = self._idle.setdefault(key, [])
            if not self._closed and len(idle) < self.max_idle:
                idle.append(conn)
                return
        conn.close()

    def post(self, url: str, body: bytes, headers: Mapping[str, str], what: str) -> Delivery:
        """POST `body` to `url`; `what` names the channel in reasons (never the URL: it holds
        secrets, a Slack webhook's path is its credential)."""
        parsed = _url_parse(url)
        if isinstance(parsed, str):
            return Delivery.permanent(f"{what}: {parsed}")
        key, target, authorization = parsed
        headers = dict(headers)
        if authorization and "Authorization" not in headers:
            headers["Authorization"] = authorization
        for attempt in (1, 2):
            conn, reused = self._connection(key)
            if not reused:
                try:
                    conn.connect()
                except TimeoutError:
                    conn.close()
                    return Delivery.retryable(f"{what}: timed out (ConnectTimeout)")
                except OSError as exc:  # httpx's names, which the reasons have always used
                    conn.close()
                    return Delivery.retryable(f"{what}: ConnectError: {exc}")
            try:
                status, answer, keep = conn.post(target, body, headers)
            except _STALE as exc:
                conn.close()
                if reused and attempt == 1:
                    continue  # the server dropped the idle connection: once more, fresh
                return Delivery.retryable(f"{what}: {type(exc).__name__}: {exc}")
            except TimeoutError:
                conn.close()
                return Delivery.retryable(f"{what}: timed out (ReadTimeout)")
            except (OSError, ProtocolError) as exc:
                conn.close()
                return Delivery.retryable(f"{what}: {type(exc).__name__}: {exc}")
            except ValueError as exc:  # a header that cannot be sent (a newline in a value)
                conn.close()
                return Delivery.permanent(f"{what}: {exc}")
            if keep:
                self._release(key, conn)
            else:
                conn.close()
            return classify_status(status, answer.decode(errors="replace"), what)
        raise AssertionError("unreachable")

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, {}
        for conns in idle.values():
            for conn in conns:
                conn.close()


@functools.lru_cache(maxsize=256)
def _url_parse(url: str) -> tuple[tuple[str, str, int], str, str] | str:
    """(scheme, host, port), the request target and the Basic authorization of a URL's user
    info, or what is wrong with it (parsed once per URL: it is the same every send)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "not an http(s) URL"
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return "invalid port in the URL"
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    authorization = ""
    if parts.username is not None:
        user = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        authorization = "Basic " + base64.b64encode(user.encode()).decode()
    return (parts.scheme, parts.hostname, port), target, authorization


# Failures of a reused connection before any answer: the server closed it while idle.
_STALE = (Closed, ConnectionResetError, BrokenPipeError)


@functools.cache
def _tls_context() -> ssl.SSLContext:
    return ssl.create_default_context()
