"""Acceptance: PostgreSQL stopped -> every API path answers JSON 503 with Retry-After, health
503, and the shop serves again as soon as the database is back.

The app runs under gunicorn (2 workers, persistent connections) on PostgreSQL through a proxy
(tests.faults.TcpProxy) the test cuts: the workers' connections drop and new ones are refused,
as when the server stops, while the shared server keeps serving everyone else. The paths come
from the URL conf, so a new endpoint is covered without touching this test.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import httpx
import psycopg
import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from tests.faults import hung_server, tcp_proxy
from tests.gunicorn import ROOT, TOKEN, Gunicorn
from tests.services import require_postgres
from tests.wait import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

# Plain views that need no database: the metrics scrape (bearer token) and the receiver real
# Alertmanager posts to (bearer token; its records live in the monitor's own state file).
# Views that never need the database, so an outage leaves them answering as usual: the
# scrape, the Alertmanager receiver, RUM beacons (histograms in memory; docs/rum.md) and the
# customer status (the monitor's state file; docs/escalation.md), which must outlive an outage.
DATABASE_FREE = re.compile(r"^/api/(monitoring/(prometheus|alertmanager)|rum/|status/)")
# A body the account views accept, so they get as far as the database.
BODY = {"username": "outage-user", "password": "a-long-password-1", "email": "o@example.com"}


def api_paths() -> list[str]:
    """Every path of the URL conf under /api/, with 1 for each path parameter."""
    found: list[str] = []

    def walk(patterns, prefix: str) -> None:
        for pattern in patterns:
            route = re.sub(r"<(?:\w+:)?\w+>", "1", str(pattern.pattern))
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, prefix + route)
            elif isinstance(pattern, URLPattern):
                found.append("/" + prefix + route)

    walk(get_resolver().url_patterns, "")
    return sorted(p for p in found if p.startswith("/api/"))


@pytest.fixture
def app_database():
    require_postgres()
    name = os.environ.get("TEST_DB_NAME", "test_pasargad") + "_dbdown"
    admin = "postgres://postgres@127.0.0.1:5432/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    yield name
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _user_token(app: Gunicorn) -> str:
    """A customer's API token, made in the app's database (through the proxy)."""
    script = (
        "import django; django.setup()\n"
        "from django.contrib.auth.models import User\n"
        "from rest_framework.authtoken.models import Token\n"
        "user = User.objects.create_user('shopper', password='a-long-password-1')\n"
        "print(Token.objects.create(user=user).key)\n"
    )
    env = {k: v for k, v in app.env.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=60, check=True,
    )  # fmt: skip
    return done.stdout.split()[-1]  # the last line: anything logged comes before it


def _serving(client: httpx.Client, token: str) -> bool:
    """The app answers from the database (several requests, spread over the workers)."""
    return all(
        client.get("/api/orders/", headers={"Authorization": f"Token {token}"}).status_code == 200
        for _ in range(6)
    )


def _assert_json_unavailable(response: httpx.Response, where: str) -> None:
    assert response.status_code == 503, (where, response.status_code, response.text)
    assert response.headers["Content-Type"].startswith("application/json"), where
    assert int(response.headers["Retry-After"]) > 0, where
    assert "detail" in response.json() or "status" in response.json(), where


def test_database_down_every_api_path_answers_json_503_and_service_resumes(tmp_path, app_database):
    paths = api_paths()
    assert len(paths) > 20 and "/api/health/" in paths  # the URL conf, not a hand-made list
    with tcp_proxy() as proxy:
        url = f"postgres://postgres@{proxy.address}/{app_database}"
        with (
            Gunicorn(tmp_path, workers=2, DATABASE_URL=url) as app,
            httpx.Client(base_url=app.base_url, timeout=30) as client,
        ):
            token = _user_token(app)
            auth = {"Authorization": f"Token {token}"}
            assert _serving(client, token)  # each worker holds a persistent connection

            proxy.cut()
            answered: dict[tuple[str, str], httpx.Response] = {}
            for path in paths:
                answered["GET", path] = client.get(path, headers=auth)
                answered["POST", path] = client.post(path, headers=auth, json=BODY)
            for (method, path), response in answered.items():
                where = f"{method} {path}"
                assert response.status_code < 500 or response.status_code == 503, where
                if response.status_code >= 400:
                    assert response.headers["Content-Type"].startswith("application/json"), where
            for path in paths:
                if DATABASE_FREE.match(path) or path == "/api/health/":
                    continue  # health: below (it may serve its last answer for a moment)
                # Each path needs the database for one of the two (the token, or the body).
                got = [answered[m, path] for m in ("GET", "POST")]
                unavailable = [r for r in got if r.status_code == 503]
                assert unavailable, (path, [(r.status_code, r.text) for r in got])
                for response in unavailable:
                    _assert_json_unavailable(response, path)
            # Public health, and a plain view reached with a session cookie (the session
            # lookup fails outside DRF, in Django's middleware and view code).
            # The probe serves its last "ok" while a fresh check runs in the background
            # (HEALTH_BASIC_CACHE_SECONDS): the outage shows once that check has failed.
            down = wait_for(
                lambda: (r := client.get("/api/health/")).status_code == 503 and r,
                timeout=30,
                what="health 503",
            )
            _assert_json_unavailable(down, "health")
            client.cookies.set("sessionid", "x" * 32)
            _assert_json_unavailable(client.get("/api/monitoring/prometheus/"), "session")
            client.cookies.clear()
            bearer = {"Authorization": f"Bearer {TOKEN}"}
            detailed = client.get("/api/health/detailed/", headers=bearer)
            _assert_json_unavailable(detailed, "detailed health")
            assert detailed.json()["components"]["database"]["status"] == "down"
            # The metrics stay readable: that is how the outage is seen.
            assert client.get("/api/monitoring/prometheus/", headers=bearer).status_code == 200

            proxy.restore()
            # Back at once: the very first requests after the restore are served.
            assert _serving(client, token)
            wait_for(lambda: client.get("/api/health/").status_code == 200, timeout=10)


def test_connections_dropped_while_idle_are_replaced_without_a_failed_request(
    tmp_path, app_database
):
    """A restart between two requests (each worker's kept connection dead, the server up
    again): the first request after it is served, not answered 503 on the dead connection."""
    with tcp_proxy() as proxy:
        url = f"postgres://postgres@{proxy.address}/{app_database}"
        with (
            Gunicorn(tmp_path, workers=2, DATABASE_URL=url) as app,
            httpx.Client(base_url=app.base_url, timeout=30) as client,
        ):
            token = _user_token(app)
            assert _serving(client, token)
            proxy.cut()
            proxy.restore()
            assert _serving(client, token)


def test_a_database_that_never_answers_is_a_503_within_the_connect_timeout(tmp_path, app_database):
    """A hung server (it accepts and never answers): connects give up after
    DATABASE_CONNECT_TIMEOUT, and the request is a 503, not held until gunicorn kills it."""
    with tcp_proxy() as proxy, hung_server() as hung:
        url = f"postgres://postgres@{proxy.address}/{app_database}"
        with (
            Gunicorn(tmp_path, workers=2, DATABASE_URL=url, DATABASE_CONNECT_TIMEOUT="2") as app,
            httpx.Client(base_url=app.base_url, timeout=30) as client,
        ):
            token = _user_token(app)
            assert _serving(client, token)
            real = proxy.upstream
            proxy.cut()
            proxy.upstream = ("127.0.0.1", hung.port)  # new connections reach the hung server
            proxy.restore()
            started = time.monotonic()
            response = client.get("/api/orders/", headers={"Authorization": f"Token {token}"})
            _assert_json_unavailable(response, "hung database")
            assert time.monotonic() - started < 10  # 2 s connect timeout, and some slack
            proxy.cut()
            proxy.upstream = real
            proxy.restore()
            assert _serving(client, token)
