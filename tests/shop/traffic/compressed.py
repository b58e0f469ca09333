"""The shipped alert rules over the real app under simulated traffic, with time compressed.

What runs is real: the app under gunicorn (tests/gunicorn.py), the simulator
(shop.traffic.simulator) making real HTTP requests, the monitor's scraper reading the app's
/api/monitoring/prometheus/, and the rule files in deploy/prometheus as they are at run time,
evaluated by monitoring.rules. Only the clock is virtual: the simulator's pacer runs on a
`CompressedClock`, so a request slot due at virtual second s is taken as soon as the server
answers the previous one, and every 15 virtual seconds (the evaluation interval) the clock
stops for a scrape (at the job's scrape interval) and an evaluation of every group, stamped
with the virtual time. Counts per virtual minute are therefore those of the same traffic at
its nominal rate (5 requests/s); durations (query and request latency) stay real.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Sink

from monitoring.monitor.runtime import config_and_rules_load
from monitoring.monitor.scrape import Scraper
from monitoring.rules.engine import Engine
from monitoring.tsdb.store import SampleStore
from tests.gunicorn import ROOT, TOKEN, single_process
from tests.shop.test_celery_worker import free_port

BASE_MS = 1_800_000_000_000  # virtual second 0


def prometheus_dir(tmp: Path, app_address: str) -> Path:
    """The shipped configuration and rule files, scraping the app under test."""
    prom = tmp / "prometheus"
    shutil.copytree(ROOT / "deploy/prometheus", prom, ignore=shutil.ignore_patterns("tests"))
    config = (prom / "prometheus.yml").read_text()
    config = re.sub(r"localhost:\d+|127\.0\.0\.1:\d+", app_address, config)
    (prom / "prometheus.yml").write_text(config)
    return prom


@dataclass(frozen=True)
class Seen:
    t_s: float
    alertname: str
    state: str
    labels: tuple[tuple[str, str], ...]


@dataclass
class RuleRun:
    """Scrapes and evaluates the shipped rules at virtual times; remembers every active alert."""

    prom: Path
    seen: list[Seen] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.config, self.groups = config_and_rules_load(self.prom / "prometheus.yml")
        self.store = SampleStore(retention_seconds=24 * 3600)
        self.engine = Engine(self.store, subquery_step_ms=self.config.evaluation_interval_ms)
        self.t_ms = BASE_MS
        self.scraper = Scraper(
            self.store, self.config, clock=lambda: self.t_ms, default_token=TOKEN
        )
        self.eval_interval_s = self.config.evaluation_interval_ms / 1000
        self._next_scrape = {id(state): 0.0 for state in self.scraper.targets()}
        self.alert_names = {rule.name for group in self.groups for rule in group.alerting_rules()}

    def tick(self, t_s: float) -> None:
        self.t_ms = BASE_MS + round(t_s * 1000)
        for state in self.scraper.targets():
            if t_s >= self._next_scrape[id(state)]:
                self.scraper.scrape(state)
                self._next_scrape[id(state)] = t_s + state.job.interval_ms / 1000
        for group in self.groups:
            group.eval(self.t_ms, self.engine, self.store)
            for alert in group.active_alerts():
                labels = tuple(sorted(dict(alert.labels).items()))
                name = dict(labels)["alertname"]
                self.seen.append(Seen(t_s, name, alert.state, labels))

    def query(self, expr: str, t_s: float) -> list[tuple[dict, float]]:
        """An instant query at virtual second t_s (for measuring what the traffic did)."""
        result = self.engine.instant(expr, BASE_MS + round(t_s * 1000))
        return [(dict(sample.labels), sample.value) for sample in result.samples]

    def alerted(self, *, ignore: frozenset[str] = frozenset()) -> dict[str, set[str]]:
        """alertname -> the states it reached (pending, firing)."""
        reached: dict[str, set[str]] = {}
        for seen in self.seen:
            if seen.alertname not in ignore:
                reached.setdefault(seen.alertname, set()).add(str(seen.state))
        return reached

    def close(self) -> None:
        self.scraper.close()


class CompressedClock:
    """The simulator's clock and sleep: sleeping moves virtual time on instead of waiting,
    running `on_tick(t)` at every `tick_s` boundary crossed (before time passes it)."""

    def __init__(self, *, tick_s: float, on_tick: Callable[[float], None]) -> None:
        self.now = 0.0
        self.tick_s = tick_s
        self.on_tick = on_tick
        self.next_tick = tick_s  # the first scrape comes a little after the traffic starts
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            target = self.now + seconds
            while self.next_tick <= target:
                self.now = max(self.now, self.next_tick)
                self.on_tick(self.next_tick)
                self.next_tick += self.tick_s
            self.now = max(self.now, target)


def manage(env: dict[str, str], *args: str) -> str:
    """`manage.py ARGS` against the app's database; its standard output."""
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT, env=single_process(env), check=True, timeout=120,
        capture_output=True, text=True,
    )  # fmt: skip
    return done.stdout


STAFF_TOKEN = """
from django.contrib.auth.models import User
from rest_framework.authtoken.models import Token
user, _ = User.objects.get_or_create(username="simulator", defaults={"is_staff": True})
print(Token.objects.get_or_create(user=user)[0].key)
"""


def staff_token(env: dict[str, str]) -> str:
    return manage(env, "shell", "-c", STAFF_TOKEN).strip().splitlines()[-1]


class MailServer:
    """A real SMTP server that accepts the shop's emails (order confirmations, reorder
    notices), so sending them succeeds as it does in production."""

    def __enter__(self) -> MailServer:
        self.controller = Controller(Sink(), hostname="127.0.0.1", port=free_port())
        self.controller.start()
        self.env = {"EMAIL_HOST": "127.0.0.1", "EMAIL_PORT": str(self.controller.port)}
        return self

    def __exit__(self, *exc) -> None:
        self.controller.stop()
