"""Per-request overhead of the whole middleware stack with security vs django-prometheus alone.

Three WSGI handlers of the same app (the project's middleware stack, test settings) serve
`GET /api/ping/` (an API path, which the rate limit counts) in-process through Django's
WSGIHandler, side by side in interleaved rounds:

- **none**: the stack without monitoring or security middleware (the baseline);
- **ours**: `RequestMonitoringMiddleware` (request id, metrics, JSON access log to a real file)
  and `SecurityMiddleware` (client address through a trusted proxy, block check, rate limit
  at the production 1,000 a minute, in the shared counter file; 401/404 counting);
- **django-prometheus**: its Before/After middleware pair around the same stack;
- for information, ours without the security middleware (what bench_middleware.py measures).

Requests come through a trusted proxy (10.0.0.1, X-Forwarded-For) from a population of client
addresses, round robin; two sizes an order of magnitude apart (100 and 1,000 addresses: the
block list and the counter file see that many keys). The block list holds 50 addresses (none
of the clients). Overhead = median per-request CPU time minus the baseline's, metrics in
prometheus_client's multiprocess mode. Goal (issue 13): ours at most 0.6x django-prometheus's,
at both sizes. Exits non-zero when the goal is missed.

    python bench/bench_security_middleware.py [--requests 1000] [--rounds 21]
"""

import argparse
import io
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.bench_middleware import environment, ping  # noqa: E402
from bench.goals import verdict  # noqa: E402

GOAL = 0.6
MONITORING_ONLY = "ours without security (for information)"
SIZES = (100, 1000)
OURS = (
    "monitoring.http.middleware.RequestMonitoringMiddleware",
    "security.middleware.SecurityMiddleware",
)


def handlers() -> dict:
    from django.conf import settings
    from django.core.handlers.wsgi import WSGIHandler
    from django.core.management import call_command
    from django.urls import path

    call_command("migrate", verbosity=0)
    module = sys.modules[__name__]
    module.urlpatterns = [path("api/ping/", ping)]  # under /api/: the rate limit counts it
    settings.ROOT_URLCONF = module
    stack = [m for m in settings.MIDDLEWARE if m not in OURS]
    stacks = {
        "none": stack,
        "ours": [*OURS, *stack],
        MONITORING_ONLY: [OURS[0], *stack],
        "django-prometheus": [
            "django_prometheus.middleware.PrometheusBeforeMiddleware",
            *stack,
            "django_prometheus.middleware.PrometheusAfterMiddleware",
        ],
    }
    built = {}
    for name, middleware in stacks.items():
        settings.MIDDLEWARE = middleware
        built[name] = WSGIHandler()
    return built


def blocks(count: int) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from security.models import BlockedIp

    until = timezone.now() + timedelta(hours=1)
    BlockedIp.objects.bulk_create(
        BlockedIp(ip=f"192.0.2.{n}", until=until, reason="bench") for n in range(count)
    )


def environs(clients: int) -> list[dict]:
    from django.utils import timezone

    today = timezone.localdate().isoformat()
    return [
        {
            "REQUEST_METHOD": "GET",
            "PATH_INFO": "/api/ping/",
            "QUERY_STRING": "",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8000",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "HTTP_HOST": "127.0.0.1:8000",
            "REMOTE_ADDR": "10.0.0.1",
            "HTTP_X_FORWARDED_FOR": f"198.{18 + n // 65536}.{n // 256 % 256}.{n % 256}",
            "HTTP_COOKIE": f"pp_visitor={'a' * 32}; pp_visitor_day={today}",
            "wsgi.url_scheme": "http",
            "wsgi.errors": sys.stderr,
            "wsgi.version": (1, 0),
            "wsgi.multithread": False,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
        }
        for n in range(clients)
    ]


def per_request_us(handler, templates: list[dict], requests: int) -> float:
    def start_response(status, headers, exc_info=None):
        assert status.startswith("200"), status

    count = len(templates)
    started = time.process_time()
    for i in range(requests):
        environ = dict(templates[i % count])
        environ["wsgi.input"] = io.BytesIO(b"")
        response = handler(environ, start_response)
        for _chunk in response:
            pass
        response.close()
    return (time.process_time() - started) / requests * 1e6


def run(built: dict, clients: int, requests: int, rounds: int) -> dict[str, float]:
    templates = environs(clients)
    for handler in built.values():
        per_request_us(handler, templates, 200)  # warm up
    samples: dict[str, list[float]] = {name: [] for name in built}
    for _ in range(rounds):
        for name, handler in built.items():
            samples[name].append(per_request_us(handler, templates, requests))
    return {name: statistics.median(values) for name, values in samples.items()}


def report(results: dict[str, float], clients: int) -> bool:
    base = results["none"]
    ours = results["ours"] - base
    theirs = results["django-prometheus"] - base
    ratio = ours / theirs
    print(f"\n{clients} client addresses:\n")
    print("| middleware | CPU µs per request | overhead µs |")
    print("|---|---|---|")
    for name, value in results.items():
        print(f"| {name} | {value:.1f} | {value - base:+.1f} |")
    met = ratio <= GOAL
    print(
        f"\nratio ours/django-prometheus {ratio:.2f}x: {'meets' if met else 'MISSES'} the goal"
        f" of at most {GOAL}x"
    )
    return met


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=21)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-security-"))
    try:
        environment(tmp)
        os.environ.update(TRUSTED_PROXIES="10.0.0.0/8", SECURITY_RATE_LIMIT="1000")
        import django

        django.setup()
        built = handlers()
        blocks(50)
        print(
            f"Python {platform.python_version()} on {platform.machine()}, "
            f"{args.requests} requests x {args.rounds} rounds (median round), "
            "metrics: multiprocess, rate limit 1000/min per address"
        )
        met = [report(run(built, n, args.requests, args.rounds), n) for n in SIZES]
        return verdict(all(met))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
