"""Cost of the transactional outbox per order placed, against today's direct `.delay()`.

`order_create` (the shop's service: stock reserved, order and lines written, one transaction)
places orders on a Redis broker of the benchmark's own (a redis-server on a free port), side by
side in interleaved rounds:

- **direct .delay()**: the confirmation task published from `on_commit`, as before issue 11
  (restored here by swapping the service's one enqueue call back to it);
- **outbox, relay inline**: the job row written in the order's transaction; at commit the relay
  claims it and publishes it in the same thread (OUTBOX_RELAY_THREAD off): the whole cost;
- **outbox, request only**: the same, with the relay left to its thread (as under gunicorn):
  what a request pays. The relay's own cost then follows per job (`relay_all`, for
  information).

Two sizes an order of magnitude apart: the job table holds that many finished jobs before the
rounds (a week of history, which `prune` keeps it at). Cost = median round's wall-clock time per
order. Goal (issue 11): what a request pays with the outbox (request only) at most 1.5x the
direct `.delay()`; the relay inline (the whole cost, one more commit per batch) is reported
beside it. Exits non-zero when the goal is missed.

    python bench/bench_outbox.py [--orders 100] [--rounds 7] [--sizes 1000,10000]
                                 [--database-url URL]
"""

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.goals import verdict  # noqa: E402

GOAL_RATIO = 1.5
DIRECT, INLINE, REQUEST = "direct .delay()", "outbox, relay inline", "outbox, request only"


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_redis(tmp: Path) -> tuple[subprocess.Popen, int]:
    import redis

    port = free_port()
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no",
         "--dir", str(tmp)],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    client = redis.Redis(port=port)
    for _ in range(200):
        try:
            client.ping()
            return process, port
        except redis.ConnectionError:
            time.sleep(0.05)
    raise RuntimeError("redis-server did not start")


def environment(tmp: Path, database_url: str | None, redis_port: int) -> None:
    """Before Django is imported: settings like production with Redis, every file in tmp."""
    os.environ.update(
        DJANGO_SETTINGS_MODULE="config.settings.test",
        VAR_DIR=str(tmp),
        DATABASE_URL=database_url or f"sqlite:///{tmp / 'db.sqlite3'}",
        REDIS_URL=f"redis://127.0.0.1:{redis_port}/0",
        LOG_TO_STDOUT_ONLY="false",
        OUTBOX_RELAY_THREAD="false",
        # One customer places every order of the run: no per-customer reservation limit.
        ORDER_MAX_PENDING="1000000000",
        ORDER_MAX_PENDING_UNITS="1000000000",
    )
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)


def direct_enqueue(order) -> None:
    """Today's path before the outbox: publish from on_commit (the signal aside)."""
    from django.db import transaction

    from shop.orders.tasks import order_confirmation_send

    transaction.on_commit(lambda: order_confirmation_send.delay(order.pk))


def setup(history: int):
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.utils import timezone

    from shop.catalog.models import Category, Product
    from shop.outbox.models import Job

    call_command("migrate", verbosity=0)
    user = User.objects.create_user("bench", "bench@example.com", "pw-bench-123")
    category = Category.objects.create(name="Bench", slug="bench")
    product = Product.objects.create(
        sku="BENCH-1", name="Bench", category=category, price="10.00", stock_quantity=10**9
    )
    now = timezone.now()
    Job.objects.bulk_create(
        Job(key=f"history:{n}", task="t", state="done", due_at=now, finished_at=now)
        for n in range(history)
    )
    return user, product


def per_order_ms(variant: str, user, product, orders: int) -> float:
    from django.conf import settings

    import shop.orders.services as services

    original = services._confirmation_enqueue
    if variant == DIRECT:
        services._confirmation_enqueue = direct_enqueue
    settings.OUTBOX_RELAY_THREAD = variant == REQUEST
    import shop.outbox.relay as relay

    ensure_thread = relay.ensure_thread
    relay.ensure_thread = lambda: None  # REQUEST: the thread is not started, the rows wait
    try:
        started = time.perf_counter()
        for _ in range(orders):
            services.order_create(user=user, items=[(product.pk, 1)])
        return (time.perf_counter() - started) / orders * 1e3
    finally:
        services._confirmation_enqueue = original
        relay.ensure_thread = ensure_thread


def relay_per_job_ms(jobs: int) -> float:
    from shop.outbox.relay import relay_all

    started = time.perf_counter()
    handed = relay_all()
    assert handed == jobs, (handed, jobs)
    return (time.perf_counter() - started) / jobs * 1e3


def run(orders: int, rounds: int, history: int, redis_port: int) -> dict[str, float]:
    import redis

    broker = redis.Redis(port=redis_port)
    user, product = setup(history)
    samples: dict[str, list[float]] = {name: [] for name in (DIRECT, INLINE, REQUEST, "relay")}
    for round_ in range(rounds + 1):  # the first round warms up and is not counted
        for name in (DIRECT, INLINE, REQUEST):
            value = per_order_ms(name, user, product, orders)
            if round_:
                samples[name].append(value)
        relay = relay_per_job_ms(orders)  # the REQUEST round's jobs
        if round_:
            samples["relay"].append(relay)
        broker.flushdb()  # no worker: drop the published messages between rounds
    return {name: statistics.median(values) for name, values in samples.items()}


def report(results: dict[int, dict[str, float]], orders: int, rounds: int, vendor: str) -> bool:
    print(
        f"Python {platform.python_version()} on {platform.machine()}, database: {vendor}, "
        f"broker: Redis; {orders} orders x {rounds} rounds per variant (median round, wall clock)\n"
    )
    print("| finished jobs in the table | variant | ms per order | ratio to direct |")
    print("|---|---|---|---|")
    met = True
    for history, values in results.items():
        base = values[DIRECT]
        for name in (DIRECT, INLINE, REQUEST):
            print(f"| {history} | {name} | {values[name]:.3f} | {values[name] / base:.2f}x |")
        print(f"| {history} | (the relay thread, per job) | {values['relay']:.3f} | |")
        met = met and values[REQUEST] / base <= GOAL_RATIO
    inline = ", ".join(f"{r[INLINE] / r[DIRECT]:.2f}x at {h}" for h, r in results.items())
    ratios = ", ".join(f"{r[REQUEST] / r[DIRECT]:.2f}x at {h}" for h, r in results.items())
    print(
        f"\nratio outbox (request only)/direct: {ratios}: "
        f"{'meets' if met else 'MISSES'} the goal of at most {GOAL_RATIO}x; "
        f"relay inline/direct (information): {inline}"
    )
    return met


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--sizes", default="1000,10000", help="finished jobs in the table")
    parser.add_argument("--database-url", help="default: a SQLite file in a temporary folder")
    args = parser.parse_args()
    if not shutil.which("redis-server"):
        print("bench_outbox needs redis-server (Debian's redis-server package)")
        return 1
    sizes = [int(s) for s in args.sizes.split(",")]
    results: dict[int, dict[str, float]] = {}
    vendor = ""
    for size in sizes:
        # One process per size: a fresh database and Django set up once per process.
        tmp = Path(tempfile.mkdtemp(prefix="bench-outbox-"))
        process, port = start_redis(tmp)
        try:
            code = subprocess.run(
                [sys.executable, __file__, "--one", str(size), str(args.orders),
                 str(args.rounds), str(port), args.database_url or "", str(tmp)],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            line = code.stdout.strip().splitlines()[-1]
            vendor, *numbers = line.split()
            values = [float(n) for n in numbers]
            results[size] = dict(zip((DIRECT, INLINE, REQUEST, "relay"), values, strict=True))
        finally:
            process.kill()
            process.wait()
            shutil.rmtree(tmp, ignore_errors=True)
    return verdict(report(results, args.orders, args.rounds, vendor))


def one(size: str, orders: str, rounds: str, port: str, database_url: str, tmp: str) -> None:
    """A child process: one size, printing 'vendor direct inline request relay'."""
    if database_url:
        import psycopg

        name = f"bench_outbox_{os.getpid()}"
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        database_url = database_url.rsplit("/", 1)[0] + f"/{name}"
    environment(Path(tmp), database_url or None, int(port))
    import django

    django.setup()
    from django.db import connection, connections

    try:
        values = run(int(orders), int(rounds), int(size), int(port))
        vendor = connection.vendor
    finally:
        connections.close_all()
        if database_url:
            with psycopg.connect(database_url.rsplit("/", 1)[0] + "/postgres",
                                 autocommit=True) as conn:  # fmt: skip
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    print(vendor, *(f"{values[k]:.4f}" for k in (DIRECT, INLINE, REQUEST, "relay")))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--one"]:
        one(*sys.argv[2:8])
        sys.exit(0)
    sys.exit(main())
