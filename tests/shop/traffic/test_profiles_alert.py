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
            workers=4,  # as make up runs it
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
    print(f"{profile}: reached {reached}, expected {sorted(expected)}")
    assert set(reached) == expected, (reached, run.summary.lines())


# How near healthy traffic comes to each shipped threshold: (what, the highest (or lowest) it
# reached over the run, the alert's threshold). Printed, and each must keep its margin.
CLOSEST = [
    ("error_rate %", "max_over_time(error_rate[10m])", "<", 1),
    ("response_time_p95 ms", "max_over_time(response_time_p95[10m])", "<", 2500),
    ("slow_queries_per_minute", "max_over_time(slow_queries_per_minute[10m])", "<", 2),
    (
        "payment failures % over 30m (from 3 min on)",
        "max_over_time((100 * sum(increase(payments_failed_total[30m]))"
        " / (sum(increase(payments_failed_total[30m])) + sum(increase(payments_succeeded_total[30m]))))"
        "[7m:15s])",
        "<",
        4,
    ),
    (
        "payment errors of one code in 5m",
        "max(max_over_time(increase(payment_errors_total[5m])[10m:15s]))",
        "<",
        5,
    ),
    (
        "ERROR log records of one logger in 5m",
        "max(max_over_time(increase(log_errors_total[5m])[10m:15s]) or vector(0))",
        "<",
        10,
    ),
    (
        "database errors in 5m",
        "max(max_over_time(increase(database_errors_total[5m])[10m:15s]) or vector(0))",
        "<",
        1,
    ),
    (
        "failed logins in 5m",
        'max(max_over_time(increase(user_logins_total{result="failure"}[5m])[10m:15s]))',
        "<",
        2.5,
    ),
    ("lowest stock of a product", "min(min_over_time(product_stock_quantity[10m]))", ">", 20),
]


def test_healthy_traffic_sets_off_no_alert(tmp_path):
    # 10 virtual minutes: every 5-minute window twice over, every `for` (5m at most) passed.
    run = run_profile(tmp_path, "healthy", minutes=10)
    requests = run.summary.requests
    print("\n".join(run.summary.lines()))

    for what, expr, side, limit in CLOSEST:
        reached = run.value(expr)
        print(f"healthy: {what}: {reached:.3g} (must stay {side} {limit})")
        assert reached < limit if side == "<" else reached > limit, (what, reached)
    # Real volumes behind those ratios: payments, logins, staff deliveries.
    paid = run.value("sum(payments_succeeded_total)")
    declined = run.value("sum(payments_failed_total)")
    # Enough payments for the rate to mean something (the count varies with the random mix).
    assert paid >= 100 and declined / (paid + declined) < 0.03, run.summary.lines()
    assert sum(n for (action, _), n in requests.items() if action == "login") >= 50
    assert requests[("restock", "200")] >= 3, run.summary.lines()
    assert not [k for k in requests if k[1].startswith(("5", "error"))], run.summary.lines()

    assert_alerts(run, "healthy")


FAULTS = {
    # profile: (virtual minutes, an expression measuring the fault at the end, its least value)
    "payment-declines": (
        5,
        "100 * sum(increase(payments_failed_total[5m]))"
        " / (sum(increase(payments_failed_total[5m])) + sum(increase(payments_succeeded_total[5m])))",
        15,
    ),
    "brute-force": (5, 'sum(increase(user_logins_total{result="failure"}[5m]))', 100),
    "stock-depletion": (5, "count(product_stock_quantity <= 10)", 1),
    "slow-database": (5, "sum(increase(database_slow_queries_total[5m]))", 75),
    "error-bursts": (5, 'sum(increase(database_errors_total{kind="OperationalError"}[5m]))', 8),
    # Six times the requests: 1.5 virtual minutes are 2,700 of them.
    "traffic-spike": (1.5, "sum(rate(http_requests_total[1m]))", 20),
}


@pytest.mark.parametrize("profile", sorted(FAULTS))
def test_a_fault_profile_sets_off_its_alerts_and_only_those(tmp_path, profile):
    minutes, expr, least = FAULTS[profile]
    run = run_profile(tmp_path, profile, minutes=minutes)
    assert run.value(expr) >= least, (expr, run.summary.lines())
    assert_alerts(run, profile)


def test_every_profile_is_exercised_here():
    assert set(PROFILES) == {"healthy", *FAULTS}
