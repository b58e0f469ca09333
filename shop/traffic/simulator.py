"""Drives realistic, bounded shop traffic over HTTP, so every metric has something to show.

Simulated visitors browse the catalog, register, log in (rarely mistyping the password),
place orders, pay with the sandbox provider's test cards (a few decline), and cancel; with a
staff token, paid orders move on to processing, shipped and delivered, and staff book a
delivery for every product that reaches its reorder point. What the traffic looks like is a
`profiles.Mix`: healthy by default, or with named faults laid over it (profiles.py).
It talks to the server only over HTTP (httpx), paced to `rate` requests per second, and stops
after `duration` seconds or `max_requests` requests, whichever comes first; the database
faults alone act on the database, as the maintenance job they model would (database.py).
"""

import itertools
import random
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from shop.traffic.database import DatabaseLocker
from shop.traffic.profiles import HEALTHY, Mix

NEXT_STATUS = {"paid": "processing", "processing": "shipped", "shipped": "delivered"}
MAX_VISITORS = 40
# The brute-force attacker's own source address against a shop on loopback (Linux answers on
# the whole of 127.0.0.0/8), so blocking it leaves the simulated customers alone.
ATTACKER_ADDRESS = "127.0.0.2"
PASSWORD = "sim-Passw0rd-ok!"


def reorder_point(low_stock_threshold: int) -> int:
    """Stock at which staff book a delivery: twice the product's own low-stock level and never
    below 40 units, so a minute of healthy sales cannot take it down to the shipped LowStock
    threshold (10) before the next check."""
    return max(2 * low_stock_threshold, 40)


def restock_level(low_stock_threshold: int) -> int:
    """What a delivery tops the stock up to."""
    return 3 * reorder_point(low_stock_threshold)


@dataclass
class Customer:
    username: str
    client: httpx.Client
    token: str = ""
    pending_orders: list[int] = field(default_factory=list)


class Summary:
    """Requests by (action, outcome); shared by the sessions, so updates take a lock."""

    def __init__(self) -> None:
        self.requests: Counter = Counter()
        self.elapsed = 0.0
        self._lock = threading.Lock()

    def record(self, action: str, outcome: str) -> None:
        with self._lock:
            self.requests[(action, outcome)] += 1

    @property
    def total(self) -> int:
        return sum(self.requests.values())

    def lines(self) -> list[str]:
        rows = [f"{self.total} requests in {self.elapsed:.1f}s"]
        for (action, outcome), count in sorted(self.requests.items()):
            rows.append(f"  {action:<14} {outcome:<22} {count}")
        return rows


class Pacer:
    """Hands out request slots: `rate` per second, at most `max_requests`, until `duration`."""

    def __init__(
        self,
        *,
        rate: float,
        duration: float,
        max_requests: int,
        clock: Callable[[], float],
        sleep: Callable[[float], None],
    ) -> None:
        self.rate = rate
        self.duration = duration
        self.max_requests = max_requests
        self.clock = clock
        self.sleep = sleep
        self.started = clock()
        self.granted = 0
        self._lock = threading.Lock()

    def over(self) -> bool:
        return self.granted >= self.max_requests or self.elapsed() >= self.duration

    def elapsed(self) -> float:
        return self.clock() - self.started

    def acquire(self) -> bool:
        """Wait for the next slot; False once the run is over."""
        with self._lock:
            if self.over():
                return False
            due = self.granted / self.rate
            if due >= self.duration:  # the next slot would fall after the end
                self.granted = self.max_requests
                return False
            self.granted += 1
        wait = due - self.elapsed()
        if wait > 0:
            self.sleep(min(wait, self.duration))
        return True


class TrafficSimulator:
    """Runs `concurrency` independent sessions (threads) that share one pace and budget.

    With a seed and one session the run is repeatable; several sessions keep the rate up
    when the server is slow (password hashing, cold workers).
    """

    def __init__(
        self,
        *,
        base_url: str,
        rate: float,
        duration: float,
        max_requests: int = 10_000,
        seed: int | None = None,
        staff_token: str = "",
        concurrency: int = 4,
        timeout: float = 30.0,  # as gunicorn's: a slow answer is still an answer
        mix: Mix = HEALTHY,
        database: tuple[str, Callable[[], Any]] | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """`database` is (vendor, connect): the shop's database, for the profiles that act on
        it; `clock` and `sleep` pace the requests (a test may compress time with them)."""
        if rate <= 0 or duration <= 0 or max_requests <= 0 or concurrency <= 0:
            raise ValueError("rate, duration, max_requests and concurrency must be positive")
        if mix.database_lock is not None and database is None:
            raise ValueError(
                "this profile acts on the shop's database: run it through "
                "`manage.py simulate_traffic` with the shop's settings"
            )
        self.base_url = base_url.rstrip("/")
        self.rate = rate * mix.rate_factor
        self.mix = mix
        self.database = database
        self.locker: DatabaseLocker | None = None
        self.duration = duration
        self.max_requests = max_requests
        self.seed = seed
        self.staff_token = staff_token
        self.concurrency = concurrency
        self.timeout = timeout
        self.clock = clock
        self.sleep = sleep

    def run(self) -> Summary:
        summary = Summary()
        pacer = Pacer(
            rate=self.rate,
            duration=self.duration,
            max_requests=self.max_requests,
            clock=self.clock,
            sleep=self.sleep,
        )
        sessions = [
            _Session(
                simulator=self,
                pacer=pacer,
                summary=summary,
                seed=None if self.seed is None else self.seed + number,
            )
            for number in range(self.concurrency)
        ]
        sessions[0].restocks = self.mix.restock  # one member of staff watches the stock
        threads = [threading.Thread(target=session.run, daemon=True) for session in sessions]
        if self.mix.database_lock is not None:
            vendor, connect = self.database
            self.locker = DatabaseLocker(
                lock=self.mix.database_lock,
                connect=connect,
                vendor=vendor,
                elapsed=pacer.elapsed,
                over=pacer.over,
            )
            threads.append(threading.Thread(target=self.locker.run, daemon=True))
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        summary.elapsed = pacer.elapsed()
        return summary


class _Session:
    """One stream of visitors and customers, with its own state and random choices."""

    def __init__(
        self, *, simulator: TrafficSimulator, pacer: Pacer, summary: Summary, seed: int | None
    ) -> None:
        self.base_url = simulator.base_url
        self.staff_token = simulator.staff_token
        self.mix = simulator.mix
        self.restocks = False
        self.next_restock = 0.0
        self.actions = list(self.mix.actions)
        self.action_weights = list(self.mix.actions.values())
        self.cards, self.card_weights = zip(*self.mix.cards.items(), strict=True)
        self.timeout = simulator.timeout
        self.pacer = pacer
        self.summary = summary
        self.random = random.Random(seed)
        self.customers: list[Customer] = []
        self.anonymous: list[httpx.Client] = []
        self.product_ids: list[int] = []
        self.paid_orders: dict[int, str] = {}  # order id -> status, for the staff to move on
        self._staff: httpx.Client | None = None
        self._attacker: httpx.Client | None = None
        # One transport for all this session's visitors (each still has its own cookies).
        self._transport = httpx.HTTPTransport()
        self._closing = [self._transport]  # transports to close when the run ends
        self._clients = itertools.count(1)

    def run(self) -> None:
        try:
            self._request(self._visitor(), "browse", "GET", "/api/catalog/products/?limit=200")
            while not self.pacer.over():
                if self.restocks and self.pacer.elapsed() >= self.next_restock:
                    self.next_restock = self.pacer.elapsed() + self.mix.restock_every_s
                    self._do_restock()
                action = self.random.choices(self.actions, weights=self.action_weights)[0]
                getattr(self, f"_do_{action}")()
        finally:
            for transport in self._closing:
                transport.close()

    def _request(
        self, client: httpx.Client, action: str, method: str, path: str, **kwargs
    ) -> httpx.Response | None:
        """Send one request in its paced slot; None when the run is over or it failed."""
        if not self.pacer.acquire():
            return None
        try:
            response = client.request(method, self.base_url + path, **kwargs)
        except httpx.HTTPError as error:
            self.summary.record(action, f"error {type(error).__name__}")
            return None
        outcome = str(response.status_code)
        if response.status_code in (402, 409) and "json" in response.headers.get(
            "content-type", ""
        ):
            outcome += f" {response.json().get('code', '')}".rstrip()
        self.summary.record(action, outcome)
        if (
            action == "browse"
            and path.startswith("/api/catalog/products/?")
            and response.is_success
        ):
            self.product_ids = [p["id"] for p in response.json().get("results", [])]
        return response

    # -- visitors ---------------------------------------------------------------------------

    def _new_client(self, transport: httpx.HTTPTransport | None = None) -> httpx.Client:
        return httpx.Client(
            transport=transport or self._transport,
            timeout=self.timeout,
            # A new connection per request, like many separate visitors (and no keep-alive
            # stalls against development servers).
            # Its own user agent: the shop counts a visitor's cookie-less first request by
            # address and agent (shop/visits/counting.py), and all of them share one address.
            headers={
                "User-Agent": f"pasargad-simulator/{id(self):x}.{next(self._clients)}",
                "Connection": "close",
            },
        )

    def _visitor(self) -> httpx.Client:
        """A returning anonymous visitor, or a new one (each keeps its visitor cookie)."""
        if self.anonymous and (len(self.anonymous) >= MAX_VISITORS or self.random.random() < 0.6):
            return self.random.choice(self.anonymous)
        client = self._new_client()
        self.anonymous.append(client)
        return client

    def _customer(self, *, with_token: bool = True) -> Customer | None:
        known = [c for c in self.customers if c.token or not with_token]
        return self.random.choice(known) if known else None

    def _authenticated(self, customer: Customer, response: httpx.Response | None) -> None:
        if response is not None and response.is_success:
            customer.token = response.json()["token"]
            customer.client.headers["Authorization"] = f"Token {customer.token}"
        # Keep the visitor cookie but not the session: the token is how the simulator
        # authenticates (a session would demand CSRF tokens on every write).
        customer.client.cookies.delete("sessionid")

    # -- actions ----------------------------------------------------------------------------

    def _do_browse(self) -> None:
        """A look at the catalog: the list (sometimes one category's), then maybe a product."""
        client = self._visitor()
        if self.random.random() < 0.3:
            self._request(client, "browse", "GET", "/api/catalog/categories/")
        self._request(client, "browse", "GET", "/api/catalog/products/?limit=200")
        if self.product_ids and self.random.random() < 0.7:
            product_id = self.random.choice(self.product_ids)
            self._request(client, "browse", "GET", f"/api/catalog/products/{product_id}/")

    def _do_register(self) -> None:
        if len(self.customers) >= MAX_VISITORS:
            return self._do_login()
        username = f"sim-{secrets.token_hex(5)}"
        customer = Customer(username=username, client=self._new_client())
        response = self._request(
            customer.client,
            "register",
            "POST",
            "/api/accounts/register/",
            json={"username": username, "email": f"{username}@example.com", "password": PASSWORD},
        )
        self.customers.append(customer)
        self._authenticated(customer, response)

    def _do_login(self) -> None:
        customer = self._customer(with_token=False)
        if customer is None:
            return self._do_register()
        if self.random.random() < self.mix.mistyped_login_share:
            self._request(
                customer.client,
                "failed_login",
                "POST",
                "/api/accounts/login/",
                json={"username": customer.username, "password": PASSWORD[:-1]},
            )
        response = self._request(
            customer.client,
            "login",
            "POST",
            "/api/accounts/login/",
            json={"username": customer.username, "password": PASSWORD},
        )
        self._authenticated(customer, response)

    def _do_guess_password(self) -> None:
        """An attacker's guess at the admin's password, always from the same client and, against
        a shop on loopback, from an address of its own (127.0.0.2): the shop blocks the address
        after its 6th failure (security/), and the customers, all on 127.0.0.1, are not it."""
        if self._attacker is None:
            transport = None
            if urlsplit(self.base_url).hostname in ("127.0.0.1", "localhost"):
                transport = httpx.HTTPTransport(local_address=ATTACKER_ADDRESS)
                self._closing.append(transport)
            self._attacker = self._new_client(transport)
        self._request(
            self._attacker,
            "guess_password",
            "POST",
            "/api/accounts/login/",
            json={"username": "admin", "password": "guess-" + secrets.token_hex(3)},
        )

    def _do_order(self) -> None:
        customer = self._customer()
        if customer is None or not self.product_ids:
            return self._do_register() if customer is None else self._do_browse()
        picks = self.random.sample(
            self.product_ids, k=min(len(self.product_ids), self.random.randint(1, 3))
        )
        items = [
            {"product": pid, "quantity": self.random.randint(*self.mix.order_quantity)}
            for pid in picks
        ]
        response = self._request(
            customer.client, "order", "POST", "/api/orders/", json={"items": items}
        )
        if response is not None and response.status_code == 201:
            customer.pending_orders.append(response.json()["id"])

    def _do_pay(self) -> None:
        payers = [c for c in self.customers if c.pending_orders and c.token]
        if not payers:
            return self._do_order()
        customer = self.random.choice(payers)
        order_id = customer.pending_orders[0]
        response = self._request(
            customer.client,
            "pay",
            "POST",
            "/api/payments/",
            json={
                "order": order_id,
                "card_number": self.random.choices(self.cards, weights=self.card_weights)[0],
                "exp_month": self.random.randint(1, 12),
                "exp_year": 2030,
                "cvc": f"{self.random.randint(0, 999):03d}",
            },
        )
        if response is None:
            return
        if response.status_code == 201:
            customer.pending_orders.remove(order_id)
            self.paid_orders[order_id] = "paid"
        elif response.status_code == 402:
            if response.json()["payment"]["status"] == "failed" and self.random.random() < 0.3:
                customer.pending_orders.remove(order_id)  # the customer gives up
        elif response.status_code in (404, 409):
            customer.pending_orders.remove(order_id)

    def _do_cancel(self) -> None:
        customer = next((c for c in self.customers if c.pending_orders and c.token), None)
        if customer is None:
            return self._do_browse()
        order_id = customer.pending_orders.pop()
        self._request(customer.client, "cancel", "POST", f"/api/orders/{order_id}/cancel/")

    def _do_progress(self) -> None:
        movable = [oid for oid, status in self.paid_orders.items() if status in NEXT_STATUS]
        if not self.staff_token or not movable:
            return self._do_browse()
        order_id = self.random.choice(movable)
        status = NEXT_STATUS[self.paid_orders[order_id]]
        response = self._request(
            self._staff_client(),
            "progress",
            "POST",
            f"/api/orders/{order_id}/status/",
            json={"status": status},
        )
        if response is not None and response.is_success:
            self.paid_orders[order_id] = status

    def _do_restock(self) -> None:
        """Staff look at the whole catalog and book a delivery for each product at or below
        its reorder point (POST catalog/products/<id>/restock/)."""
        if not self.staff_token:
            return
        staff = self._staff_client()
        response = self._request(staff, "restock", "GET", "/api/catalog/products/?limit=200")
        if response is None or not response.is_success:
            return
        for product in response.json().get("results", []):
            threshold = product["low_stock_threshold"]
            if product["is_active"] and product["stock_quantity"] <= reorder_point(threshold):
                self._request(
                    staff,
                    "restock",
                    "POST",
                    f"/api/catalog/products/{product['id']}/restock/",
                    json={"quantity": restock_level(threshold) - product["stock_quantity"]},
                )

    def _staff_client(self) -> httpx.Client:
        if self._staff is None:
            self._staff = self._new_client()
            self._staff.headers["Authorization"] = f"Token {self.staff_token}"
        return self._staff
