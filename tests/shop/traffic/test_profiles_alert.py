"""Each traffic profile against the real app sets off the shipped alerts it targets, and only
those; the healthy profile sets off none.

The app runs under gunicorn as `make up` runs it (SQLite file, no Redis), with the test
settings' fast password hashing and a real SMTP server for its emails; the simulator drives it at its nominal 5 requests/s on a compressed clock while the
shipped rule files (deploy/prometheus, as they are when the test runs) are evaluated over the
app's scraped metrics (compressed.py explains the clock). Alerts about the host's resources
(CPU, memory, disk, load) are left out: they measure the machine the test shares, not the
traffic. Watchdog always fires by design.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

import pytest

from shop.traffic.profiles import HOST_ALERTS, PROFILES, mix_for, targets_of
from shop.traffic.simulator import Summary, TrafficSimulator
from tests.gunicorn import Gunicorn
from tests.shop.traffic.compressed import (
    CompressedClock,
    MailServer,
    RuleRun,
    manage,
    prometheus_dir,
    staff_token,
)

pytestmark = pytest.mark.slow

IGNORED = HOST_ALERTS | {"Watchdog"}
RATE = 5.0  # make simulate's rate


@dataclass
class Run:
    rules: RuleRun
    summary: Summary
    end_s: float

    def value(self, expr: str) -> float:
        """The single value of `expr` at the end of the run (0 when it has none)."""
        result = self.rules.query(expr, self.end_s)
        assert len(result) <= 1, result
        return result[0][1] if result else 0.0


def run_profile(tmp: Path, profile: str, *, minutes: float, seed: int = 1) -> Run:
    # The app reads its business metrics (stock...) and database statistics afresh for every
    # scrape: 30 virtual seconds pass in a few real ones.
    with (
        MailServer() as mail,
        Gunicorn(
            tmp,
            workers=2,
            MONITORING_BUSINESS_INTERVAL="0",
            MONITORING_COLLECTOR_INTERVAL="0",
            **mail.env,
        ) as app,
    ):
        manage(app.env, "load_demo_catalog")
        rules = RuleRun(prometheus_dir(tmp, app.base_url.removeprefix("http://")))
        clock = CompressedClock(tick_s=rules.eval_interval_s, on_tick=rules.tick)
        database = tmp / "db.sqlite3"
        simulator = TrafficSimulator(
            base_url=app.base_url,
            rate=RATE,
            duration=minutes * 60,
            max_requests=10**7,
            seed=seed,
            staff_token=staff_token(app.env),
            concurrency=4,
            mix=mix_for([profile]),
            database=("sqlite", lambda: sqlite3.connect(database, check_same_thread=False)),
            clock=clock,
            sleep=clock.sleep,
        )
        try:
            summary = simulator.run()
        finally:
            rules.close()
        return Run(rules=rules, summary=summary, end_s=clock.now)


def assert_alerts(run: Run, profile: str) -> None:
    expected = (targets_of([profile]) & run.rules.alert_names) - IGNORED
    reached = run.rules.alerted(ignore=IGNORED)
    assert set(reached) == expected, (reached, run.summary.lines())


def test_healthy_traffic_sets_off_no_alert(tmp_path):
    # 10 virtual minutes: every 5-minute window twice over, every `for` (5m at most) passed.
    run = run_profile(tmp_path, "healthy", minutes=10)
    requests = run.summary.requests

    # Payments: about 1.5 % declined (the alert is at 5 %), every one from the provider.
    paid = run.value("sum(payments_succeeded_total)")
    declined = run.value("sum(payments_failed_total)")
    assert paid >= 200, run.summary.lines()
    assert declined / (paid + declined) < 0.03
    # Failed logins: rare typos, at most 2 in any 5 minutes (the security rule: > 5).
    failed_logins = run.rules.query(
        'max_over_time(increase(user_logins_total{result="failure"}[5m])[7m:15s])', run.end_s
    )
    assert max((v for _, v in failed_logins), default=0) <= 2.5
    assert sum(n for (action, _), n in requests.items() if action == "login") >= 50
    # Stock: staff booked deliveries, and no product fell near the LowStock level (10).
    assert requests[("restock", "200")] >= 3, run.summary.lines()
    lowest = run.rules.query("min(min_over_time(product_stock_quantity[10m]))", run.end_s)
    assert lowest and lowest[0][1] > 20
    # Nothing failed on the server.
    assert not [k for k in requests if k[1].startswith(("5", "error"))], run.summary.lines()

    assert_alerts(run, "healthy")


FAULTS = {
    # profile: (an expression measuring the fault at the end, the least it must show)
    "payment-declines": (
        "100 * sum(increase(payments_failed_total[5m]))"
        " / (sum(increase(payments_failed_total[5m])) + sum(increase(payments_succeeded_total[5m])))",
        15,
    ),
    "brute-force": ('sum(increase(user_logins_total{result="failure"}[5m]))', 100),
    "stock-depletion": ("count(product_stock_quantity <= 10)", 1),
    "slow-database": ("sum(increase(database_slow_queries_total[5m]))", 60),
    "error-bursts": ('sum(increase(database_errors_total{kind="OperationalError"}[5m]))', 6),
    "traffic-spike": ("sum(rate(http_requests_total[2m]))", 20),
}


@pytest.mark.parametrize("profile", sorted(FAULTS))
def test_a_fault_profile_sets_off_its_alerts_and_only_those(tmp_path, profile):
    run = run_profile(tmp_path, profile, minutes=5)
    expr, least = FAULTS[profile]
    assert run.value(expr) >= least, (expr, run.summary.lines())
    assert_alerts(run, profile)


def test_every_profile_is_exercised_here():
    assert set(PROFILES) == {"healthy", *FAULTS}
