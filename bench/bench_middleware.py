"""Per-request overhead of our monitoring middleware vs django-prometheus's, on a trivial view.

Three WSGI handlers of the same app (the project's middleware stack, test settings) serve
`GET /ping/` in-process through Django's WSGIHandler, side by side in interleaved rounds:

- **none**: the stack without any monitoring middleware (the baseline);
- **ours**: `RequestMonitoringMiddleware` (request id in and out, route template, counters,
  latency histogram, active users, and the JSON access log written to a real file);
- **django-prometheus**: its Before/After middleware pair around the same stack.

Overhead = median per-request CPU time (this process's, so other load on a shared machine
counts less) minus the baseline's. Metrics are in prometheus_client's
multiprocess mode for both (memory-mapped files, as under gunicorn). Goal (issue 3): ours at
most half of django-prometheus's overhead. Exits non-zero when the goal is missed.

    python bench/bench_middleware.py [--requests 1000] [--rounds 21]
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

GOAL = 0.5
NO_ACCESS_LOG = "ours, access log off (for information)"
OURS = "monitoring.http.middleware.RequestMonitoringMiddleware"


def environment(tmp: Path) -> None:
    """Before Django and prometheus_client are imported: files like production, all in tmp."""
    os.environ.update(
        DJANGO_SETTINGS_MODULE="config.settings.test",
        VAR_DIR=str(tmp),
        DATABASE_URL=f"sqlite:///{tmp / 'db.sqlite3'}",
        LOG_TO_STDOUT_ONLY="false",
        PROMETHEUS_MULTIPROC_DIR=str(tmp / "metrics"),
        REDIS_URL="",
    )
    (tmp / "metrics").mkdir()


def ping(request):
    from django.http import HttpResponse

    return HttpResponse(b"pong", content_type="text/plain")


def handlers() -> dict:
    from django.conf import settings
    from django.core.handlers.wsgi import WSGIHandler
    from django.core.management import call_command
    from django.urls import path

    call_command("migrate", verbosity=0)
    module = sys.modules[__name__]
    module.urlpatterns = [path("ping/", ping)]
    settings.ROOT_URLCONF = module
    stack = [m for m in settings.MIDDLEWARE if m != OURS]
    stacks = {
        "none": stack,
        "ours": [OURS, *stack],
        "django-prometheus": [
            "django_prometheus.middleware.PrometheusBeforeMiddleware",
            *stack,
            "django_prometheus.middleware.PrometheusAfterMiddleware",
        ],
    }
    built = {}
    for name, middleware in stacks.items():
        settings.MIDDLEWARE = middleware
        built[name] = WSGIHandler()  # loads settings.MIDDLEWARE now
    return built


def request_environ() -> dict:
    from django.utils import timezone

    today = timezone.localdate().isoformat()
    return {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/ping/",
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "127.0.0.1:8000",
        "REMOTE_ADDR": "127.0.0.1",
        # A returning visitor: the shop's visit counter does not write on every request.
        "HTTP_COOKIE": f"pp_visitor={'a' * 32}; pp_visitor_day={today}",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": sys.stderr,
        "wsgi.version": (1, 0),
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }


def per_request_us(handler, requests: int) -> float:
    template = request_environ()

    def start_response(status, headers, exc_info=None):
        assert status.startswith("200"), status

    started = time.process_time()
    for _ in range(requests):
        environ = dict(template)
        environ["wsgi.input"] = io.BytesIO(b"")
        response = handler(environ, start_response)
        for _chunk in response:
            pass
        response.close()  # as a WSGI server does: Django's request_finished runs here
    return (time.process_time() - started) / requests * 1e6


def run(requests: int, rounds: int) -> dict[str, float]:
    import logging

    built = handlers()
    # For information: ours with its access log switched off (the goal includes the log).
    built[NO_ACCESS_LOG] = built["ours"]
    access = logging.getLogger("access")
    for handler in built.values():
        per_request_us(handler, 200)  # warm up: imports, children, files
    samples: dict[str, list[float]] = {name: [] for name in built}
    for _ in range(rounds):
        for name, handler in built.items():
            access.disabled = name == NO_ACCESS_LOG
            samples[name].append(per_request_us(handler, requests))
    access.disabled = False
    return {name: statistics.median(values) for name, values in samples.items()}


def report(results: dict[str, float], requests: int, rounds: int) -> bool:
    base = results["none"]
    ours = results["ours"] - base
    theirs = results["django-prometheus"] - base
    ratio = ours / theirs
    print(
        f"Python {platform.python_version()} on {platform.machine()}, "
        f"{requests} requests x {rounds} rounds (median round), metrics: multiprocess\n"
    )
    print("| middleware | CPU µs per request | overhead µs |")
    print("|---|---|---|")
    for name, value in results.items():
        print(f"| {name} | {value:.1f} | {value - base:+.1f} |")
    met = ratio <= GOAL
    verdict = "meets" if met else "MISSES"
    print(f"\nratio ours/django-prometheus {ratio:.2f}x: {verdict} the goal of at most {GOAL}x")
    return met


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=21)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-middleware-"))
    try:
        environment(tmp)
        import django

        django.setup()
        results = run(args.requests, args.rounds)
        return verdict(report(results, args.requests, args.rounds))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
