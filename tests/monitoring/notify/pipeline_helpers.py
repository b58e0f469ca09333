"""What the pipeline tests share: a small configuration, a clock the test moves, alerts."""

from __future__ import annotations

from dataclasses import replace

from monitoring.notify.config import Config, config_load
from monitoring.notify.notification import RESOLVED, NotifiedAlert

CONFIG = """
global:
  resolve_timeout: 5m
route:
  receiver: team
  group_by: [alertname]
  group_wait: 30s
  group_interval: 5m
  repeat_interval: 4h
  routes:
    - matchers: [severity="critical"]
      receiver: pager
      group_wait: 0s
      repeat_interval: 1h
      continue: true
    - receiver: team
inhibit_rules:
  - source_matchers: [severity="critical"]
    target_matchers: [severity="warning"]
    equal: [alertname, instance]
receivers:
  - name: team
    webhook_configs:
      - url: {team_url}/team
        send_resolved: true
  - name: pager
    webhook_configs:
      - url: {pager_url}/pager
        send_resolved: true
      - url: {pager_url}/pager-no-resolved
        send_resolved: false
"""


def config(team_url: str = "http://127.0.0.1:9", pager_url: str = "http://127.0.0.1:9") -> Config:
    text = CONFIG.replace("{team_url}", team_url).replace("{pager_url}", pager_url)
    return config_load("test-alertmanager.yml", env={}, text=text)


class Clock:
    """Unix milliseconds, moved by the test."""

    def __init__(self, now_ms: int = 1_796_421_600_000) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms

    def advance(self, seconds: float) -> None:
        self.now_ms += round(seconds * 1000)


def alert(name: str = "HighCpu", severity: str = "warning", instance: str = "web-1", **kw):
    labels = {"alertname": name, "severity": severity, "instance": instance, "team": "devops"}
    return NotifiedAlert(
        labels=labels,
        annotations={"summary": f"{name} on {instance}"},
        starts_at_ms=kw.pop("starts_at_ms", 1_796_421_600_000),
        **kw,
    )


def resolved(a: NotifiedAlert, at_ms: int) -> NotifiedAlert:
    return replace(a, status=RESOLVED, ends_at_ms=at_ms)
