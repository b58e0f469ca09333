"""One HTTP POST, its failure classified as Alertmanager's ``Retrier`` does.

2xx is delivered; 5xx and 429 are worth retrying (the receiver is down or throttling); any other
status is the request's fault (bad URL, bad credentials, refused payload) and retrying would
only repeat it; no answer at all (refused, reset, timed out) is worth retrying.
"""

from __future__ import annotations

import base64
import functools
from collections.abc import Mapping
from urllib.parse import unquote, urlsplit

import urllib3
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
)

from monitoring.notify.notification import Delivery

# How much of a refusal's body a Delivery reason quotes (receivers explain themselves there).
_BODY_QUOTE = 200


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
    """POSTs over persistent HTTP/1.1 connections kept per host (urllib3's pools, with
    TCP_NODELAY), as Alertmanager's Go client keeps its own.

    No proxies and no redirects, as the notifier's `http_config` refuses both (Alertmanager's
    own default); TLS with the system's certificates. urllib3 never retries here
    (`retries=False`): the pipeline's retry policy does, from the classified `Delivery`.
    One exception, as Go's transport makes it for a request with an `Idempotency-Key` (every
    notification carries one): a connection the server dropped before answering (an idle one
    past its keep-alive timeout) gets the request once more. urllib3 already replaces an idle
    connection it sees closed; this covers the close that races the request. Timeouts are
    not resent: the receiver may still be working on the first one."""

    def __init__(self, timeout_s: float, *, max_idle: int = 32) -> None:
        self.timeout_s = timeout_s
        # max_idle connections kept per host: the deliverer sends at most 8 at once anyway;
        # block=False opens more if needed and keeps only max_idle.
        self._manager = urllib3.PoolManager(
            maxsize=max_idle,
            block=False,
            timeout=urllib3.Timeout(connect=timeout_s, read=timeout_s),
            retries=False,
        )

    def post(self, url: str, body: bytes, headers: Mapping[str, str], what: str) -> Delivery:
        """POST `body` to `url`; `what` names the channel in reasons (never the URL: it holds
        secrets, a Slack webhook's path is its credential)."""
        parsed = _url_parse(url)
        if isinstance(parsed, str):
            return Delivery.permanent(f"{what}: {parsed}")
        (scheme, host, port), target, authorization = parsed
        headers = dict(headers)
        if authorization and "Authorization" not in headers:
            headers["Authorization"] = authorization
        pool = self._manager.connection_from_host(host, port, scheme)
        for attempt in (1, 2):
            try:
                response = pool.urlopen(
                    "POST",
                    target,
                    body=body,
                    headers=headers,
                    retries=False,
                    redirect=False,
                    assert_same_host=False,
                    preload_content=True,  # read whole: the connection goes back to the pool
                )
            except NewConnectionError as exc:  # before ConnectTimeoutError: its subclass
                return Delivery.retryable(f"{what}: ConnectError: {exc.__cause__ or exc}")
            except ConnectTimeoutError:
                return Delivery.retryable(f"{what}: timed out (ConnectTimeout)")
            except ReadTimeoutError:
                return Delivery.retryable(f"{what}: timed out (ReadTimeout)")
            except ProtocolError as exc:  # ("Connection aborted.", RemoteDisconnected(...))
                if attempt == 1:
                    continue  # dropped before any answer: once more, on a fresh connection
                cause = exc.args[1] if len(exc.args) > 1 else exc
                return Delivery.retryable(f"{what}: {type(cause).__name__}: {cause}")
            except (HTTPError, OSError) as exc:
                return Delivery.retryable(f"{what}: {type(exc).__name__}: {exc}")
            except ValueError as exc:  # http.client refuses a header with a newline in it
                return Delivery.permanent(f"{what}: invalid header: {exc}")
            return classify_status(response.status, response.data.decode(errors="replace"), what)
        raise AssertionError("unreachable")

    def close(self) -> None:
        self._manager.clear()


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
