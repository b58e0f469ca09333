"""Where the dashboard's data comes from, and the calls the proxy makes.

Prometheus HTTP API: PROMETHEUS_URL (a real Prometheus; PROMETHEUS_TOKEN, if set, is sent as a
bearer) or else the embedded monitor at MONITOR_LISTEN with MONITOR_TOKEN. Alertmanager API v2:
ALERTMANAGER_URL (ALERTMANAGER_TOKEN) or else the monitor, which serves the same subset. The
token stays on the server: the browser talks to the staff-only views in dashboard.views.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass

import httpx

from monitoring.configfile import ConfigError
from monitoring.monitor.config import settings_from_env

__all__ = ["Upstream", "UpstreamError", "alertmanager", "prometheus", "retention_seconds"]

# A query the monitor cannot answer in this time is a 504, not a hung gunicorn worker.
TIMEOUT_S = 10.0


class UpstreamError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Upstream:
    base_url: str
    token: str

    def request(
        self, method: str, path: str, *, params: dict | None = None, json: object = None
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        try:
            return _client().request(
                method, self.base_url + path, params=params, json=json, headers=headers
            )
        except httpx.TimeoutException as exc:
            raise UpstreamError(504, f"{self.base_url} did not answer in time: {exc}") from exc
        except httpx.HTTPError as exc:
            raise UpstreamError(502, f"{self.base_url} unreachable: {exc}") from exc


_local = threading.local()


def _client() -> httpx.Client:
    # One keep-alive client per thread (gunicorn's threads): no TCP handshake per query.
    client = getattr(_local, "client", None)
    if client is None:
        client = _local.client = httpx.Client(timeout=TIMEOUT_S)
    return client


def _monitor() -> Upstream:
    try:
        monitor = settings_from_env()
    except ConfigError as exc:
        raise UpstreamError(503, f"monitor settings unusable: {exc}") from exc
    host = monitor.listen_host
    if host in ("0.0.0.0", "::"):  # a wildcard bind is reached on loopback
        host = "127.0.0.1"
    host = f"[{host}]" if ":" in host else host
    return Upstream(f"http://{host}:{monitor.listen_port}", monitor.api_token)


def prometheus() -> Upstream:
    url = os.environ.get("PROMETHEUS_URL", "").rstrip("/")
    return Upstream(url, os.environ.get("PROMETHEUS_TOKEN", "")) if url else _monitor()


def alertmanager() -> Upstream:
    url = os.environ.get("ALERTMANAGER_URL", "").rstrip("/")
    return Upstream(url, os.environ.get("ALERTMANAGER_TOKEN", "")) if url else _monitor()


def retention_seconds() -> int:
    """The longest range the range selector offers: the monitor's MONITOR_RETENTION, or
    DASHBOARD_MAX_RANGE (seconds, default 15 days: Prometheus' default retention) at scale."""
    if os.environ.get("PROMETHEUS_URL"):
        return int(os.environ.get("DASHBOARD_MAX_RANGE", "") or 15 * 86400)
    try:
        return settings_from_env().retention_ms // 1000
    except ConfigError:
        return 6 * 3600
