"""The security middleware: the client address, blocked addresses, the rate limit, scans.

On every request but probes and scrapes (SECURITY_EXEMPT_PREFIXES):
1. `request.client_ip`: the address a client cannot forge (security/client_ip.py);
2. a blocked address gets 403 with the reason and Retry-After (login paths ask the database);
3. more than SECURITY_RATE_LIMIT API requests (SECURITY_RATE_LIMITED_PREFIXES) in
   SECURITY_RATE_PERIOD_SECONDS from one address get 429 with Retry-After (security/windows.py;
   Redis adds the other hosts' counts);
4. after the response, 401s and 404s are counted per address: more than SECURITY_BURST_LIMIT a
   minute is a scan (one event per address and minute).
Kept to plain attribute and dict work on the way in: its cost is on every request
(bench/bench_security_middleware.py).
"""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from security import config
from security.blocks import BLOCKS
from security.windows import SharedWindows

logger = logging.getLogger("security")

SCAN_PERIOD = 60.0
_windows: SharedWindows | None = None
_share = None


def windows() -> SharedWindows:
    global _windows, _share
    if _windows is None:
        _windows = SharedWindows(settings.SECURITY_COUNTER_FILE)
        if settings.REDIS_URL:
            from security.redis_share import RedisShare

            _share = RedisShare(settings.REDIS_URL, timeout=settings.REDIS_REQUEST_TIMEOUT)
    return _windows


def reset() -> None:
    global _windows, _share
    _windows = _share = None


def refused(status: int, reason: str, code: str, retry_after: int) -> JsonResponse:
    response = JsonResponse({"detail": reason, "code": code}, status=status)
    response["Retry-After"] = str(retry_after)
    return response


class SecurityMiddleware:
    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        conf = config.current()
        ip = conf.client_ip.resolve(request.META)
        request.client_ip = ip
        path = request.path
        if path.startswith(conf.exempt_prefixes):
            return self.get_response(request)
        wait = BLOCKS.retry_after(ip, authoritative=path in conf.login_paths)
        if wait:
            return refused(
                403,
                "Too many failed logins from your address: it is blocked for now.",
                "ip_blocked",
                wait,
            )
        wait = self._rate_limit(ip, conf) if path.startswith(conf.limited_prefixes) else 0
        if wait:
            return refused(
                429, "Too many requests from your address. Slow down.", "rate_limited", wait
            )
        response = self.get_response(request)
        status = response.status_code
        if status == 404 or status == 401:
            _count_scan(ip, status, conf.burst_limit)
        return response

    @staticmethod
    def _rate_limit(ip: str, conf: config.SecuritySettings) -> int:
        now = time.time()
        counter = windows()
        key = "rl:" + ip
        if _share is None:
            allowed, _, wait = counter.hit(key, conf.rate_limit, conf.rate_period, now)
            extra = 0
        else:
            window = int(now // conf.rate_period)
            extra = _share.others(key, window)
            allowed, _, wait = counter.hit(key, conf.rate_limit, conf.rate_period, now, extra)
            if allowed:
                _share.admitted(key, window, conf.rate_period)
        if allowed:
            return 0
        _rate_limited(ip, counter, key, conf)
        return wait


def _rate_limited(ip: str, counter: SharedWindows, key: str, conf) -> None:
    from security import events
    from security.metrics import RATE_LIMITED

    RATE_LIMITED.inc()
    # One event per address and period, not one per refused request: the first refusal claims
    # it (a shared counter, so across workers too).
    first, _, _ = counter.hit("rl-event:" + ip, 1, conf.rate_period, time.time())
    if first:
        events.record("rate_limited", ip=ip, detail={"limit": conf.rate_limit})


def _count_scan(ip: str, status: int, limit: int) -> None:
    counter = windows()
    kind = "scan_404" if status == 404 else "scan_401"
    now = time.time()
    allowed, seen, _ = counter.hit(f"{kind}:{ip}", limit, SCAN_PERIOD, now)
    if allowed:
        return
    first, _, _ = counter.hit(f"{kind}-event:{ip}", 1, SCAN_PERIOD, now)
    if first:
        from security import events

        events.record(kind, ip=ip, detail={"per_minute": limit, "seen": round(seen)})
