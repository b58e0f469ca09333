"""Traffic profiles: how they combine, and that they aim at thresholds and alerts that exist."""

import sqlite3
import threading
import time
from pathlib import Path

import pytest
import yaml
from django.core.management import CommandError, call_command

from monitoring.rules.loader import load_rule_files
from shop.traffic.database import DatabaseLocker
from shop.traffic.profiles import (
    DECLINING_CARDS,
    HEALTHY,
    HOST_ALERTS,
    PROFILES,
    DatabaseLock,
    ProfileError,
    mix_for,
)
from shop.traffic.simulator import reorder_point, restock_level

PROMETHEUS = Path(__file__).resolve().parents[3] / "deploy/prometheus"


def declined_share(cards: dict[str, float]) -> float:
    declined = sum(w for card, w in cards.items() if card in DECLINING_CARDS)
    return declined / sum(cards.values())


def test_healthy_is_the_default_and_declines_about_one_and_a_half_percent():
    assert mix_for([]) == mix_for(["healthy"]) == HEALTHY
    assert declined_share(HEALTHY.cards) == pytest.approx(0.015)
    assert declined_share(mix_for(["payment-declines"]).cards) == pytest.approx(0.25)


def test_profiles_combine_unless_they_change_the_same_knob():
    mix = mix_for(["payment-declines", "stock-depletion", "traffic-spike"])
    assert declined_share(mix.cards) == pytest.approx(0.25)
    assert not mix.restock and mix.order_quantity == (5, 15) and mix.rate_factor == 6
    assert mix.actions == HEALTHY.actions
    with pytest.raises(ProfileError, match="slow-database and error-bursts both change"):
        mix_for(["slow-database", "error-bursts"])
    with pytest.raises(ProfileError, match="unknown profile nope"):
        mix_for(["healthy", "nope"])


def test_every_target_is_a_shipped_alert():
    files = sorted(str(p) for p in PROMETHEUS.glob("*_rules.yml"))
    groups = load_rule_files(files, default_interval_s=15)
    shipped = {rule.name for group in groups for rule in group.alerting_rules()}
    for profile in PROFILES.values():
        assert set(profile.targets) <= shipped, profile.name
    assert HOST_ALERTS <= shipped


def test_staff_reorder_well_above_the_low_stock_alert():
    thresholds = yaml.safe_load((PROMETHEUS / "thresholds.yml").read_text())
    alert_level = thresholds["business"]["low_stock_threshold"]
    for own_threshold in (0, 5, 10, 25, 50):
        assert reorder_point(own_threshold) >= max(4 * alert_level, 2 * own_threshold)
        assert restock_level(own_threshold) > reorder_point(own_threshold)


def test_the_command_lists_and_checks_profiles(capsys):
    call_command("simulate_traffic", base_url="http://127.0.0.1:9", list_profiles=True)
    out = capsys.readouterr().out
    assert all(name in out for name in PROFILES)
    assert "HighPaymentFailureRate, PaymentFailures" in out
    with pytest.raises(CommandError, match="unknown profile"):
        call_command("simulate_traffic", base_url="http://127.0.0.1:9", profile=["nope"])
    with pytest.raises(CommandError, match="both change database_lock"):
        call_command(
            "simulate_traffic",
            base_url="http://127.0.0.1:9",
            profile=["slow-database,error-bursts"],
        )


def test_database_lock_makes_other_connections_wait_then_fail(tmp_path):
    path = tmp_path / "shop.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE t (x)")
    held = threading.Event()

    def sleep(seconds: float) -> None:  # the hold: signal, then really wait
        held.set()
        time.sleep(seconds)

    locker = DatabaseLocker(
        lock=DatabaseLock(hold_s=3, every_s=60),
        connect=lambda: sqlite3.connect(path, check_same_thread=False),
        vendor="sqlite",
        elapsed=lambda: 0.0,
        over=lambda: True,
        sleep=sleep,
    )
    connection = locker.connect()
    holder = threading.Thread(target=locker.hold, args=(connection,))
    holder.start()
    assert held.wait(10)
    impatient = sqlite3.connect(path, timeout=0.1)
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        impatient.execute("SELECT count(*) FROM t").fetchall()
    patient = sqlite3.connect(path, timeout=30)
    started = time.monotonic()
    assert patient.execute("SELECT count(*) FROM t").fetchall() == [(0,)]
    assert time.monotonic() - started > 0.5  # it waited for the hold to end
    holder.join()
    assert locker.holds == 1
    connection.close()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_on_postgresql_the_lock_holds_up_the_catalog_and_a_long_fault_drops_connections():
    from django.db import OperationalError, connection

    from shop.traffic.management.commands.simulate_traffic import _connect

    held = threading.Event()
    release = threading.Event()

    def sleep(seconds: float) -> None:
        held.set()
        release.wait(30)

    def locker(hold_s: float) -> DatabaseLocker:
        return DatabaseLocker(
            lock=DatabaseLock(hold_s=hold_s, every_s=60),
            connect=_connect,  # the command's own connection to the shop's database
            vendor="postgresql",
            elapsed=lambda: 0.0,
            over=lambda: True,
            sleep=sleep,
        )

    slow = locker(1.5)
    holder_connection = slow.connect()
    holder = threading.Thread(target=slow.hold, args=(holder_connection,))
    holder.start()
    try:
        assert held.wait(10)
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '200ms'")
            with pytest.raises(OperationalError, match="lock timeout"):
                cursor.execute("SELECT count(*) FROM catalog_product")
    finally:
        release.set()
        holder.join()
    holder_connection.close()
    connection.close()

    with connection.cursor() as cursor:  # the app's connection, open before the fault
        cursor.execute("SELECT 1")
    failover = locker(30)
    failover_connection = failover.connect()
    failover.hold(failover_connection)
    failover_connection.close()
    with pytest.raises(OperationalError):
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    connection.close()
