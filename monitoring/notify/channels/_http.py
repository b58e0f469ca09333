"""One HTTP request, its failure classified as Alertmanager's ``Retrier`` does.

2xx is delivered; 5xx and 429 are worth retrying (the receiver is down or throttling); any other
status is the request's fault (bad URL, bad credentials, refused payload) and retrying would
only repeat it; no answer at all (refused, reset, timed out) is worth retrying.
"""

from __future__ import annotations

import httpx

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
