"""Issue 13's drills over real HTTP against gunicorn with 4 workers (config/gunicorn.conf.py):

- a brute force from 20 addresses through a trusted proxy: each is blocked after its 6th
  failure, the others (and the account's owner) unaffected;
- the same with forged X-Forwarded-For from an untrusted peer: the header is ignored;
- 1,200 requests from one address: 429 after exactly 1,000, counted across the 4 workers;
- concurrent logins with production password hashing do not hold the public health probe.

The proxy is 127.0.0.2 (TRUSTED_PROXIES): the test's connections leave from that address; the
untrusted peer is 127.0.0.1.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.gunicorn import ROOT, Gunicorn, single_process
from tests.wait import window_left

pytestmark = pytest.mark.slow

PASSWORD = "correct-horse-battery-9"
PROXY = "127.0.0.2"


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("security-drills")
    server = Gunicorn(
        tmp,
        workers=4,
        TRUSTED_PROXIES=f"{PROXY}/32",
        SECURITY_RATE_LIMIT="1000",
        SECURITY_BURST_LIMIT="1000000",
        REAL_PASSWORD_HASHING="true",
    )
    server.migrate()
    subprocess.run(
        [
            sys.executable, "manage.py", "shell", "-c",
            "from django.contrib.auth.models import User; "
            "from django.contrib.auth.hashers import make_password; "
            f"[User.objects.create_user(n, password={PASSWORD!r}) for n in ('alice', 'bob')]; "
            f"User.objects.create(username='carol', password=make_password({PASSWORD!r}, "
            "hasher='pbkdf2_sha256'))",
        ],
        cwd=ROOT, env=single_process(server.env), check=True, timeout=120,
    )  # fmt: skip
    with server:
        yield server


def _client(shop: Gunicorn, source: str) -> httpx.Client:
    transport = httpx.HTTPTransport(local_address=source)
    return httpx.Client(base_url=shop.base_url, transport=transport, timeout=60)


def _login(client: httpx.Client, username: str, password: str, forwarded: str | None) -> int:
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    body = {"username": username, "password": password}
    return client.post("/api/accounts/login/", json=body, headers=headers).status_code


def test_brute_force_from_20_addresses_through_the_proxy(shop):
    def attack(n: int) -> list[int]:
        with _client(shop, PROXY) as client:
            return [_login(client, "alice", "guess", f"203.0.113.{n}") for _ in range(8)]

    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(attack, range(1, 21)))
    for n, statuses in enumerate(results, 1):
        assert statuses == [401] * 6 + [403] * 2, (n, statuses)
    with _client(shop, PROXY) as client:
        # Another address, through the same proxy, is not touched; nor is the account.
        assert _login(client, "alice", PASSWORD, "198.51.100.1") == 200
        refused = client.get("/api/catalog/products/", headers={"X-Forwarded-For": "203.0.113.5"})
        assert refused.status_code == 403 and int(refused.headers["Retry-After"]) > 800
        staff = {"Authorization": f"Bearer {shop.env['MONITORING_TOKEN']}"}
        blocked = client.get("/api/security/blocks/", headers=staff).json()
        assert sorted(b["ip"] for b in blocked) == sorted(f"203.0.113.{n}" for n in range(1, 21))


def test_forged_forwarded_for_from_an_untrusted_peer_is_ignored(shop):
    with _client(shop, "127.0.0.1") as client:
        statuses = [_login(client, "bob", "guess", f"192.0.2.{n}") for n in range(8)]
    # Eight "different" addresses, one peer: blocked as one after the 6th failure.
    assert statuses == [401] * 6 + [403] * 2
    with _client(shop, PROXY) as client:
        assert _login(client, "bob", PASSWORD, "198.51.100.2") == 200
        staff = {"Authorization": f"Bearer {shop.env['MONITORING_TOKEN']}"}
        blocked = {b["ip"] for b in client.get("/api/security/blocks/", headers=staff).json()}
    assert "127.0.0.1" in blocked and not any(ip.startswith("192.0.2.") for ip in blocked)


def test_1200_requests_a_minute_get_429_after_1000_across_workers(shop):
    window_left(15)  # the drill's requests stay inside one minute window
    address = "198.51.100.77"
    statuses: list[int] = []
    lock = threading.Lock()

    def burst(_: int) -> None:
        with _client(shop, PROXY) as client:
            for _ in range(150):
                status = client.get(
                    "/api/catalog/categories/", headers={"X-Forwarded-For": address}
                ).status_code
                with lock:
                    statuses.append(status)

    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(burst, range(8)))
    assert time.monotonic() - started < 60
    assert (statuses.count(200), statuses.count(429)) == (1000, 200)
    # 8 connections over 4 workers: counted per worker, up to 4,000 would have passed.
    assert len(shop.worker_pids()) == 4
    with _client(shop, PROXY) as client:
        health = client.get("/api/health/", headers={"X-Forwarded-For": address})
        assert health.status_code == 200  # probes are never limited
        text = client.get(
            "/api/monitoring/prometheus/",
            headers={"Authorization": f"Bearer {shop.env['MONITORING_TOKEN']}"},
        ).text
    assert "rate_limited_requests_total 200.0" in text


def test_slow_logins_do_not_hold_the_health_probe(shop):
    """Production hashing (carol's password is PBKDF2, about a second of CPU per check here):
    16 logins at a time fill every request thread of the 4 workers. Wrong passwords (a right
    one would be re-hashed fast), each attempt from its own address (no block stops them)."""
    stop = threading.Event()

    def logins(n: int) -> None:
        with _client(shop, PROXY) as client:
            attempt = 0
            while not stop.is_set():
                attempt += 1
                _login(client, "carol", "guess", f"10.{n}.{attempt // 250}.{attempt % 250}")

    latencies = []
    with ThreadPoolExecutor(16) as pool:
        for n in range(16):
            pool.submit(logins, n)
        time.sleep(1.0)  # the logins are under way
        with _client(shop, "127.0.0.1") as probe:
            for _ in range(20):
                started = time.perf_counter()
                assert probe.get("/api/health/").status_code == 200
                latencies.append(time.perf_counter() - started)
                time.sleep(0.05)
        stop.set()
    print(
        f"health under login load: median {statistics.median(latencies) * 1000:.0f} ms, "
        f"max {max(latencies) * 1000:.0f} ms"
    )
    assert statistics.median(latencies) < 0.25, latencies
