"""The security settings, read once per process (tests call `reset()` after changing them)."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from django.conf import settings

from security.client_ip import ClientIp, parse_networks


@dataclass(frozen=True)
class SecuritySettings:
    client_ip: ClientIp
    login_failures: int  # more than this many ...
    login_window: float  # ... in this many seconds blocks the address
    block_seconds: int
    rate_limit: int  # requests per rate_period per address
    rate_period: float
    exempt_prefixes: tuple[str, ...]  # never limited nor blocked: probes and scrapes
    limited_prefixes: tuple[str, ...]  # what the rate limit counts (the API)
    login_paths: tuple[str, ...]
    burst_limit: int  # 401s or 404s per minute from one address that make a scan
    stuffing_limit: int  # usernames per address, or addresses per username, in login_window


@functools.cache
def current() -> SecuritySettings:
    return SecuritySettings(
        client_ip=ClientIp(parse_networks(settings.TRUSTED_PROXIES)),
        login_failures=settings.SECURITY_LOGIN_FAILURES,
        login_window=settings.SECURITY_LOGIN_WINDOW_SECONDS,
        block_seconds=int(settings.SECURITY_BLOCK_SECONDS),
        rate_limit=settings.SECURITY_RATE_LIMIT,
        rate_period=settings.SECURITY_RATE_PERIOD_SECONDS,
        exempt_prefixes=tuple(settings.SECURITY_EXEMPT_PREFIXES),
        limited_prefixes=tuple(settings.SECURITY_RATE_LIMITED_PREFIXES),
        login_paths=tuple(settings.SECURITY_LOGIN_PATHS),
        burst_limit=settings.SECURITY_BURST_LIMIT,
        stuffing_limit=settings.SECURITY_STUFFING_LIMIT,
    )


def reset() -> None:
    current.cache_clear()
    from security import middleware

    middleware.reset()
