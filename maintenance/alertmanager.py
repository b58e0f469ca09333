"""A small client of the Alertmanager API v2 (the monitor's embedded notifier or a real
Alertmanager): what the maintenance procedure and `manage.py maintenance windows` use."""

from __future__ import annotations

import os
from datetime import UTC, datetime

import httpx
import yaml

from monitoring.notify.config import Config, config_load


class AlertmanagerError(Exception):
    pass


def iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


def default_url() -> str:
    """ALERTMANAGER_URL, else the monitor's API (MONITOR_LISTEN, default 127.0.0.1:9091)."""
    return os.environ.get("ALERTMANAGER_URL") or (
        "http://" + (os.environ.get("MONITOR_LISTEN") or "127.0.0.1:9091")
    )


def default_token() -> str:
    return os.environ.get("MONITOR_TOKEN") or os.environ.get("MONITORING_TOKEN") or ""


class Alertmanager:
    def __init__(self, url: str, token: str = "", timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.client = httpx.Client(headers=headers, timeout=timeout)

    def _call(self, method: str, path: str, **kw):
        try:
            response = self.client.request(method, f"{self.url}/api/v2{path}", **kw)
        except httpx.HTTPError as exc:
            raise AlertmanagerError(f"{self.url}: {exc or type(exc).__name__}") from exc
        if response.status_code >= 400:
            raise AlertmanagerError(
                f"{method} {self.url}/api/v2{path}: {response.status_code} {response.text[:200]}"
            )
        return response.json() if response.content else None

    def post_alerts(self, alerts: list[dict]) -> None:
        self._call("POST", "/alerts", json=alerts)

    def alerts(self, **params) -> list[dict]:
        return self._call("GET", "/alerts", params=params)

    def silences(self) -> list[dict]:
        return self._call("GET", "/silences")

    def silence(self, silence_id: str) -> dict | None:
        try:
            return self._call("GET", f"/silence/{silence_id}")
        except AlertmanagerError as exc:
            if " 404 " in str(exc):
                return None
            raise

    def silence_create(self, body: dict) -> str:
        return self._call("POST", "/silences", json=body)["silenceID"]

    def silence_expire(self, silence_id: str, by: str) -> None:
        # `by`: the monitor records who in the silence's audit trail; Alertmanager ignores it.
        self._call("DELETE", f"/silence/{silence_id}", params={"by": by})

    def config(self) -> Config:
        """The routing and time intervals of the configuration it runs. Only those: a real
        Alertmanager shows its receivers with every default filled in and secrets as
        `<secret>`, which the notifier's loader (rightly) refuses, and the windows need none."""
        text = self._call("GET", "/status")["config"]["original"]
        doc = yaml.safe_load(text) or {}
        kept = {k: doc[k] for k in ("route", "time_intervals", "mute_time_intervals") if k in doc}
        kept["receivers"] = [{"name": r["name"]} for r in doc.get("receivers") or []]
        return config_load("alertmanager (from /api/v2/status)", env={}, text=yaml.safe_dump(kept))
