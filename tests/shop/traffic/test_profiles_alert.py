"""Each traffic profile against the real app sets off the shipped alerts it targets, and only
those; the healthy profile sets off none.

The app runs under gunicorn as `make up` runs it (SQLite file, no Redis), with the test
settings' fast password hashing and a real SMTP server for its emails; the simulator drives it at its nominal 5 requests/s on a compressed clock while the
shipped rule files (deploy/prometheus, as they are when the test runs) are evaluated over the
app's scraped metrics (compressed.py explains the clock). Alerts about the host's resources
(CPU, memory, disk, load) are left out: they measure the machine the test shares, not the
traffic. Watchdog always fires by design.

The seven runs go at once, one process each (`outcomes`): most of a run's time is waiting
(for a held lock, for the server), and each run has its own app, database and clock, so they
share nothing but the CPUs. Every test then judges its own run.
"""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
import time
from collections import Counter
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import django
import pytest

from shop.traffic.profiles import HOST_ALERTS, PROFILES, mix_for, targets_of
from shop.traffic.simulator import TrafficSimulator
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

# BackupTooOld: the test's app was never backed up (`make up` takes a backup at start); the
# alert is about the deployment's schedule, not the traffic.
# PrivilegeGranted: each run makes its simulator's staff user, a real grant the security rules
# rightly report (security/); like BackupTooOld, it is about the setup, not the traffic.
IGNORED = HOST_ALERTS | {"Watchdog", "BackupTooOld", "PrivilegeGranted"}
RATE = 5.0  # make simulate's rate


@dataclass(frozen=True)
class Run:
    """What a profile run left, as plain data (it ran in another process)."""

    profile: str
    values: dict[str, float]  # expression -> its single value at the end (0 when none)
    alert_names: frozenset[str]
    reached: dict[str, set[str]]  # alertname -> the states it reached
    requests: Counter
    lines: list[str]  # the simulator's summary
    wall_s: float

    def value(self, expr: str) -> float:
        return self.values[expr]


def run_profile(
    tmp: Path, profile: str, *, minutes: float, exprs: list[str], seed: int = 1, niceness: int = 0
) -> Run:
    """Run `profile` for `minutes` virtual minutes; measure `exprs` at the end. `niceness` is
    added to this process's (and so the app's) scheduling niceness."""
    started = time.monotonic()
    if niceness:
        os.nice(niceness)
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
    values = {}
    for expr in exprs:
        result = rules.query(expr, clock.now)
        assert len(result) <= 1, (expr, result)
        values[expr] = result[0][1] if result else 0.0
    return Run(
        profile=profile,
        values=values,
        alert_names=frozenset(rules.alert_names),
        reached=rules.alerted(ignore=IGNORED),
        requests=summary.requests,
        lines=summary.lines(),
        wall_s=time.monotonic() - started,
    )


def assert_alerts(run: Run, profile: str) -> None:
    expected = (targets_of([profile]) & run.alert_names) - IGNORED
    p95 = run.value(P95)  # the runs share the CPUs: how slow the app got
    print(
        f"{profile}: reached {run.reached}, expected {sorted(expected)}"
        f" ({run.wall_s:.0f} s, highest p95 {p95:.0f} ms)"
    )
    assert set(run.reached) == expected, (run.reached, run.lines)


# How near healthy traffic comes to each shipped threshold: (what, the highest (or lowest) it
# reached over the run, the alert's threshold). Printed, and each must keep its margin.
CLOSEST = [
    ("error_rate %", "max_over_time(error_rate[10m])", "<", 1),
    ("response_time_p95 ms", "max_over_time(response_time_p95[10m])", "<", 2500),
    # Half the alert's 10: a statement's duration is real time, and with seven apps and the rest
    # of the suite on two cores, SQLite's lock waits cross the 1 s threshold now and then (CI
    # saw 2.0 once, ten such statements in five virtual minutes).
    ("slow_queries_per_minute", "max_over_time(slow_queries_per_minute[10m])", "<", 5),
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


def test_healthy_traffic_sets_off_no_alert(outcomes):
    run = outcomes["healthy"].result()
    requests = run.requests
    print("\n".join(run.lines))

    for what, expr, side, limit in CLOSEST:
        reached = run.value(expr)
        print(f"healthy: {what}: {reached:.3g} (must stay {side} {limit})")
        assert reached < limit if side == "<" else reached > limit, (what, reached)
    # Real volumes behind those ratios: payments, logins, staff deliveries.
    paid = run.value("sum(payments_succeeded_total)")
    declined = run.value("sum(payments_failed_total)")
    # Enough payments for the rate to mean something (the count varies with the random mix).
    assert paid >= 100 and declined / (paid + declined) < 0.03, run.lines
    assert sum(n for (action, _), n in requests.items() if action == "login") >= 50
    assert requests[("restock", "200")] >= 3, run.lines
    assert not [k for k in requests if k[1].startswith(("5", "error"))], run.lines

    assert_alerts(run, "healthy")


FAULTS = {
    # profile: (virtual minutes, an expression measuring the fault at the end, its least value)
    "payment-declines": (
        5,
        "100 * sum(increase(payments_failed_total[5m]))"
        " / (sum(increase(payments_failed_total[5m])) + sum(increase(payments_succeeded_total[5m])))",
        15,
    ),
    # The attacker's address is blocked after its 6th failure (security/): a block, not 100s
    # of failures, is what the run leaves.
    "brute-force": (5, "max(max_over_time(blocked_ips[5m]))", 1),
    "stock-depletion": (5, "count(product_stock_quantity <= 10)", 1),
    "slow-database": (5, "sum(increase(database_slow_queries_total[5m]))", 75),
    "error-bursts": (5, 'sum(increase(database_errors_total{kind="OperationalError"}[5m]))', 8),
    # Six times the requests: 1.5 virtual minutes are 2,700 of them.
    "traffic-spike": (1.5, "sum(rate(http_requests_total[1m]))", 20),
}


# The healthy run's measurements (CLOSEST and the volumes behind them).
HEALTHY_EXPRS = [expr for _, expr, _, _ in CLOSEST] + [
    "sum(payments_succeeded_total)",
    "sum(payments_failed_total)",
]
# Every run's highest p95: the runs share the CPUs.
P95 = "max_over_time(response_time_p95[10m])"
# The CPUs go first to the longest runs (the two waiting on held locks, the 10-minute healthy
# one, whose latency margins are also the tightest); the short ones use what they leave.
FIRST = {"healthy", "slow-database", "error-bursts"}
# profile -> (virtual minutes, expressions measured at the end). Healthy: 10 virtual minutes,
# every 5-minute window twice over, every `for` (5m at most) passed.
PLANS = {
    "healthy": (10, HEALTHY_EXPRS),
    **{profile: (minutes, [expr, P95]) for profile, (minutes, expr, _) in FAULTS.items()},
}


def _selected(request: pytest.FixtureRequest) -> list[str]:
    """The profiles whose tests this session runs (`-k brute-force` runs that one alone)."""
    profiles = set()
    for item in request.session.items:
        if item.path == request.path and "outcomes" in getattr(item, "fixturenames", ()):
            callspec = getattr(item, "callspec", None)
            profiles.add(callspec.params["profile"] if callspec else "healthy")
    return sorted(profiles)


@pytest.fixture(scope="module")
def outcomes(request, tmp_path_factory) -> dict[str, Future]:
    """The selected profiles' runs, all at once, one process each (Django set up as in this
    one); a run that raised re-raises in its own test only."""
    profiles = _selected(request)
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        len(profiles), mp_context=spawn, initializer=django.setup, max_tasks_per_child=1
    ) as pool:
        return {
            profile: pool.submit(
                run_profile,
                tmp_path_factory.mktemp(profile),
                profile,
                minutes=PLANS[profile][0],
                exprs=PLANS[profile][1],
                niceness=0 if profile in FIRST else 5,
            )
            for profile in profiles
        }


@pytest.mark.parametrize("profile", sorted(FAULTS))
def test_a_fault_profile_sets_off_its_alerts_and_only_those(outcomes, profile):
    _, expr, least = FAULTS[profile]
    run = outcomes[profile].result()
    assert run.value(expr) >= least, (expr, run.lines)
    assert_alerts(run, profile)


def test_every_profile_is_exercised_here():
    assert set(PROFILES) == {"healthy", *FAULTS}
