"""The traffic simulator against a live server: real HTTP, real orders, payments and visits."""

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.utils import timezone
from rest_framework.authtoken.models import Token

from shop.catalog.demo import demo_catalog_load
from shop.catalog.models import Product
from shop.orders.models import Order
from shop.payments.models import Payment
from shop.traffic.profiles import DECLINING_CARDS
from shop.traffic.simulator import Pacer, reorder_point
from shop.visits.services import visitors_on

pytestmark = [pytest.mark.slow, pytest.mark.db, pytest.mark.django_db(transaction=True)]

# One session at a time: on SQLite the test database is in memory, and pytest-django's live
# server shares its one connection between the request threads, which breaks when two requests
# use it at once ("cannot release savepoint - SQL statements in progress"). Concurrent sessions
# are exercised against gunicorn on a file database (tests/monitoring/monitor/test_end_to_end.py).


def _simulate(live_server, capsys, token: str = "", **options) -> str:
    call_command(
        "simulate_traffic",
        base_url=live_server.url.replace("localhost", "127.0.0.1"),
        rate=150,
        # An upper bound: 200 requests take 2-4 s on a calm machine, and the seeded choices
        # (how many payments, which decline) hold only if all 200 are made; a loaded
        # PostgreSQL run once managed 177 in 15 s.
        duration=120,
        max_requests=200,
        seed=7,
        concurrency=1,  # one session: the same choices every run
        staff_token=token,
        **options,
    )
    return capsys.readouterr().out


def _staff_token() -> str:
    staff = User.objects.create_user("ops", "ops@example.com", "x", is_staff=True)
    return Token.objects.create(user=staff).key


def _run_two_products_low() -> None:
    """A shop whose sales ran two products near empty (the demo catalog starts above every
    low-stock level, so a fresh `make up` raises no LowStock)."""
    low = Product.objects.order_by("sku")[:2]
    assert Product.objects.filter(pk__in=[p.pk for p in low]).update(stock_quantity=3) == 2


def test_healthy_traffic_runs_the_shop_and_restocks_it(live_server, capsys):
    demo_catalog_load()
    _run_two_products_low()

    out = _simulate(live_server, capsys, _staff_token())
    assert out.startswith("profile healthy\n")
    total = int(out.splitlines()[1].split()[0])
    assert 100 <= total <= 200, out
    outcomes = [line.split()[1] for line in out.splitlines()[2:]]
    assert not [o for o in outcomes if o.startswith("5") or o == "error"], out

    assert User.objects.filter(username__startswith="sim-").exists()
    assert Order.objects.exists()
    assert Payment.objects.filter(status="succeeded").exists(), out
    assert visitors_on(day=timezone.localdate()) >= 2
    moved = Order.objects.filter(status__in=["processing", "shipped", "delivered"])
    assert moved.exists(), out
    # Staff booked deliveries through the API for every product at its reorder point.
    for product in Product.objects.all():
        assert product.stock_quantity > reorder_point(product.low_stock_threshold), product
    assert "restock" in out


def test_payment_declines_come_from_the_provider(live_server, capsys):
    demo_catalog_load()
    out = _simulate(live_server, capsys, _staff_token(), profile=["payment-declines"])
    assert out.startswith("profile payment-declines\n")
    failed = Payment.objects.filter(status="failed")
    assert failed.count() >= 3, out
    assert set(failed.values_list("error_code", flat=True)) <= set(DECLINING_CARDS.values())
    assert "402 card_declined" in out or "402 insufficient_funds" in out


def test_brute_force_guesses_the_admin_password(live_server, capsys):
    demo_catalog_load()
    out = _simulate(live_server, capsys, profile=["brute-force"])
    counts = {
        tuple(line.split()[:2]): int(line.split()[-1])
        for line in out.splitlines()
        if line.split()[:1] == ["guess_password"]
    }
    # From its own address the attacker gets 6 tries, then its address is blocked (security/);
    # the customers, on another address, go on.
    assert counts.get(("guess_password", "401")) == 6, out
    assert counts.get(("guess_password", "403"), 0) >= 10, out
    others = [
        line.split() for line in out.splitlines()[2:] if line.split()[:1] != ["guess_password"]
    ]
    assert others and not [parts for parts in others if parts[1:2] == ["403"]], out


def test_without_staff_nobody_restocks(live_server, capsys):
    demo_catalog_load()
    _run_two_products_low()
    call_command(
        "simulate_traffic",
        base_url=live_server.url,
        rate=500,
        duration=30,
        max_requests=20,
        concurrency=1,
        profile=["stock-depletion"],
    )
    assert "restock" not in capsys.readouterr().out
    assert Product.objects.filter(stock_quantity__lte=10).exists()


def test_simulator_is_bounded_by_request_count(live_server, capsys):
    call_command(
        "simulate_traffic",
        base_url=live_server.url.replace("localhost", "127.0.0.1"),
        rate=500,
        duration=30,
        max_requests=15,
        concurrency=1,
    )
    assert capsys.readouterr().out.splitlines()[1].startswith("15 requests in ")


def test_simulator_makes_its_own_staff_user_for_a_local_server(live_server, capsys):
    demo_catalog_load()
    call_command(
        "simulate_traffic",
        base_url=live_server.url,
        rate=500,
        duration=30,
        max_requests=5,
        staff_user="simulator",
        concurrency=1,
    )
    staff = User.objects.get(username="simulator")
    assert staff.is_staff and not staff.has_usable_password()
    assert Token.objects.filter(user=staff).exists()
    User.objects.create_user("plain", "p@example.com", "x")
    with pytest.raises(CommandError, match="not staff"):
        call_command("simulate_traffic", base_url=live_server.url, staff_user="plain")


def test_simulator_refuses_nonsense_arguments():
    with pytest.raises(CommandError, match="must be positive"):
        call_command("simulate_traffic", base_url="http://127.0.0.1:9", rate=0, duration=1)


class FakeClock:
    """Time that moves only when the pacer sleeps, so pacing is checked exactly."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 6))
        self.now += seconds


def test_pacer_spaces_requests_and_stops_at_the_deadline():
    clock = FakeClock()
    pacer = Pacer(rate=4, duration=1.0, max_requests=100, clock=clock, sleep=clock.sleep)
    granted = 0
    while pacer.acquire():
        granted += 1
    assert granted == 4  # slots at 0, 0.25, 0.5, 0.75 s; the one at 1.0 s is past the end
    assert clock.sleeps == [0.25, 0.25, 0.25]
    assert pacer.over()


def test_pacer_stops_at_the_request_budget():
    clock = FakeClock()
    pacer = Pacer(rate=1000, duration=60, max_requests=3, clock=clock, sleep=clock.sleep)
    assert [pacer.acquire() for _ in range(5)] == [True, True, True, False, False]
