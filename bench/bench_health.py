"""Cost of the basic health endpoint over a bare request, against django-health-check's.

One WSGI handler of the app (the project's middleware stack, test settings) serves, side by
side in interleaved rounds:

- **bare**: a trivial view answering `{"status": "ok"}` (the baseline);
- **ours**: `GET /api/health/` (`monitoring.health.views.health_basic`): the database check on
  its own short-lived connection, bounded by the check timeout, its answer reused for
  HEALTH_BASIC_CACHE_SECONDS (default 1 s) per process;
- **ours, check on every request**: the same with the cache off (HEALTH_BASIC_CACHE_SECONDS=0),
  for information: what one probe costs when probes come less than once a second;
- **django-health-check**: its `HealthCheckView` with its `Database` check only (the same
  question: can the database answer `SELECT 1`?), asked for JSON.

Cost = median round's wall-clock time per request (health checks wait on I/O, which CPU time
would hide) minus the bare request's. Goal (issue 3): ours under 0.5 ms over bare. Exits
non-zero when the goal is missed.

    python bench/bench_health.py [--requests 300] [--rounds 15] [--database-url URL]
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
from bench.goals import verdict  # noqa: E402

GOAL_MS = 0.5
BARE, OURS, OURS_UNCACHED, DHC = (
    "bare",
    "ours",
    "ours, check on every request (for information)",
    "django-health-check",
)
# All under /api/health/: the shop's visit counter skips them alike.
PATHS = {
    BARE: "/api/health/bare/",
    OURS: "/api/health/",
    OURS_UNCACHED: "/api/health/",
    DHC: "/api/health/dhc/",
}


def environment(tmp: Path, database_url: str | None) -> None:
    """Before Django is imported: settings like production, every file in tmp."""
    os.environ.update(
        DJANGO_SETTINGS_MODULE="config.settings.test",
        VAR_DIR=str(tmp),
        DATABASE_URL=database_url or f"sqlite:///{tmp / 'db.sqlite3'}",
        REDIS_URL="",
        LOG_TO_STDOUT_ONLY="false",  # the access log goes to its file, as in production
    )
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)


def bare(request):
    from django.http import JsonResponse

    return JsonResponse({"status": "ok"})


def handler():
    from django.conf import settings
    from django.core.handlers.wsgi import WSGIHandler
    from django.core.management import call_command
    from django.urls import path
    from health_check.views import HealthCheckView

    from monitoring.health.views import health_basic

    call_command("migrate", verbosity=0)
    module = sys.modules[__name__]
    module.urlpatterns = [
        path("api/health/bare/", bare),
        path("api/health/", health_basic),
        path("api/health/dhc/", HealthCheckView.as_view(checks=["health_check.checks.Database"])),
    ]
    settings.ROOT_URLCONF = module
    return WSGIHandler()


def request_environ(path: str) -> dict:
    return {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "127.0.0.1:8000",
        "HTTP_ACCEPT": "application/json",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": sys.stderr,
        "wsgi.version": (1, 0),
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }


def per_request_ms(app, path: str, requests: int) -> float:
    template = request_environ(path)

    def start_response(status, headers, exc_info=None):
        assert status.startswith("200"), f"{path}: {status}"

    started = time.perf_counter()
    for _ in range(requests):
        environ = dict(template)
        environ["wsgi.input"] = io.BytesIO(b"")
        response = app(environ, start_response)
        for _chunk in response:
            pass
        response.close()  # as a WSGI server does: Django's request_finished runs here
    return (time.perf_counter() - started) / requests * 1e3


def run(requests: int, rounds: int) -> dict[str, float]:
    from django.conf import settings

    app = handler()
    cache_seconds = settings.HEALTH_BASIC_CACHE_SECONDS
    samples: dict[str, list[float]] = {name: [] for name in PATHS}
    for round_ in range(rounds + 1):  # the first round warms up and is not counted
        for name, path in PATHS.items():
            settings.HEALTH_BASIC_CACHE_SECONDS = 0 if name == OURS_UNCACHED else cache_seconds
            value = per_request_ms(app, path, requests)
            if round_:
                samples[name].append(value)
    return {name: statistics.median(values) for name, values in samples.items()}


def report(results: dict[str, float], requests: int, rounds: int, vendor: str) -> bool:
    base = results[BARE]
    ours = results[OURS] - base
    theirs = results[DHC] - base
    print(
        f"Python {platform.python_version()} on {platform.machine()}, database: {vendor}, "
        f"{requests} requests x {rounds} rounds (median round, wall clock)\n"
    )
    print("| endpoint | ms per request | over bare, ms |")
    print("|---|---|---|")
    for name, value in results.items():
        print(f"| {name} | {value:.3f} | {value - base:+.3f} |")
    met = ours < GOAL_MS
    verdict = "meets" if met else "MISSES"
    # Below zero means within the noise of the bare request: the ratio is then reported as 0.
    ratio = max(ours, 0.0) / theirs
    print(
        f"\nratio ours/django-health-check {ratio:.2f}x; ours {ours:+.3f} ms over bare: "
        f"{verdict} the goal of under {GOAL_MS} ms"
    )
    return met


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--database-url", help="default: a SQLite file in a temporary folder")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-health-"))
    try:
        environment(tmp, args.database_url)
        import django

        django.setup()
        from django.db import connection

        results = run(args.requests, args.rounds)
        return verdict(report(results, args.requests, args.rounds, connection.vendor))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
