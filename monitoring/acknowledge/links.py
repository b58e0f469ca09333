"""The signed one-click acknowledgement link of every notification.

``ack_url(fingerprint)`` -> ``{ACK_BASE_URL}/ack/<fingerprint>.<expiry>.<signature>``: the
expiry is base-36 Unix seconds (``ACK_LINK_MAX_AGE``, 24 h by default), the signature 16
URL-safe characters of an HMAC-SHA256 keyed by the app's SECRET_KEY (Django's
``salted_hmac``). About 60 characters in all, so the same link fits an SMS.

Opening the link (GET) only shows a confirmation page with one button; the POST of that page
acknowledges. Link previewers (Slack's unfurler, mail scanners, SMS apps) only GET, so they
never acknowledge, and the person who clicked is one click from done. ``ack_token_check``
refuses a tampered, malformed or expired token (``LinkError``: the view answers 4xx).
"""

from __future__ import annotations

import base64
import hmac
import os
import re
import time

__all__ = ["LinkError", "ack_token", "ack_token_check", "ack_url"]

SALT = "monitoring.acknowledge.link"
DEFAULT_MAX_AGE_S = 24 * 3600
_TOKEN = re.compile(r"^([0-9a-f]{16})\.([0-9a-z]{1,10})\.([A-Za-z0-9_-]{16})$")


class LinkError(ValueError):
    """A link that does not acknowledge anything (the reason is shown)."""


def _signature(fingerprint: str, expiry: str) -> str:
    from django.utils.crypto import salted_hmac

    digest = salted_hmac(SALT, f"{fingerprint}.{expiry}", algorithm="sha256").digest()
    return base64.urlsafe_b64encode(digest[:12]).decode()


def _max_age_s() -> int:
    return int(float(os.environ.get("ACK_LINK_MAX_AGE", "") or DEFAULT_MAX_AGE_S))


def ack_token(fingerprint: str, *, now_s: float | None = None, max_age_s: int | None = None) -> str:
    now_s = time.time() if now_s is None else now_s
    expiry = _base36(int(now_s) + (_max_age_s() if max_age_s is None else max_age_s))
    return f"{fingerprint}.{expiry}.{_signature(fingerprint, expiry)}"


def ack_token_check(token: str, *, now_s: float | None = None) -> str:
    """The fingerprint the token was made for; LinkError when it is not a valid, live one."""
    match = _TOKEN.match(token)
    if match is None:
        raise LinkError("not an acknowledgement link")
    fingerprint, expiry, signature = match.groups()
    if not hmac.compare_digest(signature, _signature(fingerprint, expiry)):
        raise LinkError("the link's signature is not valid")
    if int(expiry, 36) < (time.time() if now_s is None else now_s):
        raise LinkError("the link has expired; acknowledge from the dashboard or the CLI")
    return fingerprint


def ack_url(fingerprint: str) -> str:
    """The link for a firing alert, or "" when no ACK_BASE_URL (or SITE_URL) is configured or
    Django is not (a message without the link rather than none)."""
    base = os.environ.get("ACK_BASE_URL", "") or os.environ.get("SITE_URL", "")
    if not base:
        return ""
    try:
        return f"{base.rstrip('/')}/ack/{ack_token(fingerprint)}"
    except Exception:  # ImproperlyConfigured: no SECRET_KEY in this process
        return ""


def _base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if not n:
            return out
