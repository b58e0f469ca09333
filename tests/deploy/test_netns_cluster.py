"""Acceptance (issue 16, docs/scale.md): hosts in their own network namespaces (made and removed
here, addresses 10.213.x.0/24 on a private bridge): 3 gunicorn web hosts and 2 Celery worker
hosts, the machine's PostgreSQL (through socat on the bridge: it listens on loopback only) and a
redis-server on the bridge, shared; real Prometheus scraping them through file_sd with the token
file, on the shipped rule files; 2 clustered Alertmanagers on the rendered shipped file,
delivering to a local SMTP server and a local HTTP receiver. Checks: under steady traffic,
`sum(rate(http_requests_total[1m]))` is the rate sent within 5 %; tasks are counted once over
both worker pools; a shop-wide figure equals the SQL truth, not 5x it; a web host killed ->
`up` 0 and TargetDown for that instance only; the Alertmanager that was sending killed ->
TargetDown still told once on every channel.

Needs root, `ip netns`, socat, PostgreSQL; fails, not skips, under CI=true."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request

import httpx
import psycopg
import pytest
import yaml
from celery import Celery

from tests.deploy.test_cluster import (
    PEER_TIMEOUT,
    cluster_size,
    installed_cluster_config,
    start_node,
)
from tests.gunicorn import BIN, ROOT, TOKEN, app_env, single_process
from tests.monitoring.notify.channels.servers import HttpReceiver, SmtpServer
from tests.monitoring.notify.real_alertmanager import free_port
from tests.monitoring.notify.test_at_scale import render_alertmanager
from tests.services import require, require_alertmanager, require_postgres, require_prometheus
from tests.wait import wait_for

pytestmark = [pytest.mark.prometheus, pytest.mark.slow]

HOSTS = ("web1", "web2", "web3")
WORKERS = ("worker1", "worker2")
TASKS = 6
ROUTE = "/api/catalog/products/"
RATE_PER_HOST = 3.0  # requests/s: light for a loaded 2-core machine, steady over rate()'s minute
WINDOW = 60.0  # s, rate()'s [1m]
STAGGER = 20.0  # s between the web host's death and the Alertmanager's (see the test)
PG = "postgres://postgres@127.0.0.1:5432"  # the machine's PostgreSQL, trust auth on loopback


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=30)


def netns_available() -> bool:
    if os.geteuid() != 0 or not shutil.which("ip"):
        return False
    return ip("netns", "list", check=False).returncode == 0


class Network:
    """A bridge in this namespace (10.213.S.1) and one namespace per host (10.213.S.1x)."""

    def __init__(self) -> None:
        self.tag = f"psg{os.getpid() % 10000}"
        self.subnet = f"10.213.{os.getpid() % 250 + 1}"
        self.bridge = f"{self.tag}br"
        self.namespaces: list[str] = []

    @property
    def gateway(self) -> str:
        return f"{self.subnet}.1"

    def up(self) -> Network:
        ip("link", "add", self.bridge, "type", "bridge")
        ip("addr", "add", f"{self.gateway}/24", "dev", self.bridge)
        ip("link", "set", self.bridge, "up")
        return self

    def host(self, index: int) -> tuple[str, str]:
        name, veth = f"{self.tag}-h{index}", f"{self.tag}v{index}"
        address = f"{self.subnet}.{10 + index}"
        ip("netns", "add", name)
        self.namespaces.append(name)
        ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", name)
        ip("link", "set", veth, "master", self.bridge)
        ip("link", "set", veth, "up")
        for command in (["addr", "add", f"{address}/24", "dev", "eth0"],
                        ["link", "set", "eth0", "up"], ["link", "set", "lo", "up"]):  # fmt: skip
            ip("netns", "exec", name, "ip", *command)
        return name, address

    def down(self) -> None:
        for name in self.namespaces:  # removing a namespace removes its veth pair
            ip("netns", "del", name, check=False)
        ip("link", "del", self.bridge, check=False)


def query(prom: str, expr: str, at: float | None = None) -> list[dict]:
    params = {"query": expr} if at is None else {"query": expr, "time": f"{at:.3f}"}
    url = f"{prom}/api/v1/query?" + urllib.parse.urlencode(params)
    with urllib.request.urlopen(url, timeout=10) as answer:
        return json.loads(answer.read())["data"]["result"]


def scalar(prom: str, expr: str, at: float | None = None) -> float | None:
    result = query(prom, expr, at)
    return float(result[0]["value"][1]) if len(result) == 1 else None


@pytest.fixture
def network():
    require("root and `ip netns`", netns_available())
    net = Network().up()
    yield net
    net.down()


def test_hosts_in_namespaces_add_up_under_real_prometheus(network, tmp_path):
    require_prometheus()
    require_alertmanager()
    require_postgres()
    require("socat (Debian's socat package)", bool(shutil.which("socat")))
    processes: list[subprocess.Popen] = []
    receiver, smtp = HttpReceiver(), SmtpServer()
    traffic: Traffic | None = None
    dbname = f"{os.environ.get('TEST_DB_NAME', 'test_pasargad')}_netns"

    def spawn(argv, *, env=None, netns: str | None = None, log: str) -> subprocess.Popen:
        prefix = ["ip", "netns", "exec", netns] if netns else []
        out = open(tmp_path / log, "wb")  # noqa: SIM115 (lives as long as the process)
        process = subprocess.Popen(prefix + argv, cwd=ROOT, env=env, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        processes.append(process)
        return process

    try:
        # Shared state: Redis on the bridge; the machine's PostgreSQL (loopback only) reached
        # from the namespaces through socat on the bridge address.
        redis_port = 16379 + os.getpid() % 1000
        spawn(["redis-server", "--port", str(redis_port), "--bind", network.gateway,
               "--save", "", "--appendonly", "no", "--dir", str(tmp_path),
               "--protected-mode", "no"], log="redis.log")  # only on the private bridge  # fmt: skip
        pg_port = free_port()
        spawn(["socat", f"TCP-LISTEN:{pg_port},bind={network.gateway},fork,reuseaddr",
               "TCP:127.0.0.1:5432"], log="socat.log")  # fmt: skip
        recreate_database(dbname)
        local = app_env(tmp_path, DATABASE_URL=f"{PG}/{dbname}")
        subprocess.run([sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"],
                       cwd=ROOT, env=single_process(local), check=True, timeout=180)  # fmt: skip
        seed = ("from shop.catalog.models import Category, Product\n"
                "c = Category.objects.create(name='Prints', slug='prints')\n"
                "for i, q in enumerate((3, 7, 50)):\n"
                "    Product.objects.create(sku=f'P{i}', name=f'P{i}', category=c, price=10,"
                " stock_quantity=q)\n")  # fmt: skip
        subprocess.run([sys.executable, "manage.py", "shell", "-c", seed], cwd=ROOT,
                       env=single_process(local), check=True, timeout=120)  # fmt: skip
        with psycopg.connect(f"{PG}/{dbname}") as db:
            [(truth,)] = db.execute(
                "SELECT SUM(stock_quantity) FROM catalog_product WHERE is_active"
            ).fetchall()

        def host_env(name: str, address: str, **extra: str) -> dict[str, str]:
            (tmp_path / name).mkdir()
            return app_env(
                tmp_path / name,
                DATABASE_URL=f"postgres://postgres@{network.gateway}:{pg_port}/{dbname}",
                REDIS_URL=f"redis://{network.gateway}:{redis_port}/0",
                MONITORING_SHOP_WIDE="lease",
                MONITORING_HOST_ID=name,
                MONITORING_SHOP_LEASE_SECONDS="3",
                PROMETHEUS_MULTIPROC_DIR=str(tmp_path / name / "metrics"),
                **extra,
            )

        hosts: dict[str, str] = {}  # name -> instance
        by_instance: dict[str, subprocess.Popen] = {}
        for index, name in enumerate(HOSTS, start=1):
            netns, address = network.host(index)
            env = host_env(name, address, MONITORING_COLLECTOR_INTERVAL="1",
                           MONITORING_BUSINESS_INTERVAL="1", WEB_CONCURRENCY="2",
                           ALLOWED_HOSTS=address)  # fmt: skip
            hosts[name] = f"{address}:8000"
            by_instance[hosts[name]] = spawn(
                [str(BIN / "gunicorn"), "-c", "config/gunicorn.conf.py", "--bind", hosts[name],
                 "config.wsgi"], env=env, netns=netns, log=f"{name}.log")  # fmt: skip
        # Worker hosts: each its own metrics endpoint, same token, same broker and database.
        workers: list[str] = []
        for index, name in enumerate(WORKERS, start=len(HOSTS) + 1):
            netns, address = network.host(index)
            workers.append(f"{address}:9808")
            by_instance[workers[-1]] = spawn(
                [sys.executable, "-m", "celery", "-A", "config", "worker", "--concurrency=2",
                 "--without-gossip", "--without-mingle", "--loglevel=INFO"],
                env=host_env(name, address, CELERY_METRICS_LISTEN=workers[-1]),
                netns=netns, log=f"{name}.log")  # fmt: skip

        # Two clustered Alertmanagers on the rendered shipped file, delivering to a local SMTP
        # server and a local HTTP receiver (dashboard, SMS, Slack, dead man's switch).
        rendered = tmp_path / "alertmanager.yml"
        render_alertmanager(rendered, {
            **os.environ, "EMAIL_HOST": "127.0.0.1", "EMAIL_PORT": str(smtp.port),
            "SLACK_WEBHOOK_URL": f"{receiver.url}/slack",
            "WATCHDOG_WEBHOOK_URL": f"{receiver.url}/watchdog",
            "APP_URL": receiver.url, "MONITORING_TOKEN": TOKEN,
        })  # fmt: skip
        binary = shutil.which("alertmanager") or shutil.which("prometheus-alertmanager")
        gossip_a, gossip_b = free_port(), free_port()
        am_a, url_a = start_node(binary, rendered, tmp_path / "am-a", gossip_a, gossip_b)
        am_b, url_b = start_node(binary, rendered, tmp_path / "am-b", gossip_b, gossip_a)
        processes += [am_a, am_b]
        for name, target in hosts.items():
            wait_for(lambda t=target: _answers(t), timeout=120, what=f"{name} serving")
        wait_for(lambda: cluster_size(url_a) == 2 and cluster_size(url_b) == 2,
                 timeout=60, what="a cluster of two Alertmanagers")  # fmt: skip

        # Prometheus: the shipped cluster file, its targets written as deployment tooling would.
        config = installed_cluster_config(tmp_path / "prometheus")
        (config.parent / "pasargad_token").write_text(TOKEN + "\n")
        (config.parent / "targets/web.yml").write_text(
            yaml.safe_dump([{"targets": list(hosts.values()), "labels": {"role": "web"}}])
        )
        (config.parent / "targets/workers.yml").write_text(
            yaml.safe_dump([{"targets": workers, "labels": {"role": "worker"}}])
        )
        (config.parent / "targets/alertmanagers.yml").write_text(
            yaml.safe_dump([{"targets": [u.removeprefix("http://") for u in (url_a, url_b)]}])
        )
        document = yaml.safe_load(config.read_text())
        document["global"].update(scrape_interval="1s", evaluation_interval="1s")
        for job in document["scrape_configs"]:
            job["scrape_interval"] = "1s"
            for sd in job.get("file_sd_configs", []):
                sd["refresh_interval"] = "1s"
        prom_port = free_port()
        document["scrape_configs"] = [
            j for j in document["scrape_configs"] if j["job_name"] != "prometheus"
        ]
        config.write_text(yaml.safe_dump(document, sort_keys=False))
        spawn(["prometheus", f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
               f"--web.listen-address=127.0.0.1:{prom_port}"], log="prometheus.log")  # fmt: skip
        prom = f"http://127.0.0.1:{prom_port}"
        wait_for(lambda: _count(prom, 'up{job="pasargad-prints"} == 1') == len(HOSTS),
                 timeout=60, what="Prometheus scraping every web host")  # fmt: skip

        # Steady traffic from now on, for more than rate()'s minute.
        traffic = Traffic(list(hosts.values()))

        # Both Alertmanagers get the always-firing Watchdog from Prometheus; it goes out once,
        # from one of them (its notification counter tells which).
        wait_for(lambda: posts(receiver, "/watchdog", "Watchdog") >= 1, timeout=60,
                 what="the Watchdog notification")  # fmt: skip
        time.sleep(3 * PEER_TIMEOUT)  # the second node would have sent by now
        assert posts(receiver, "/watchdog", "Watchdog") == 1
        # The node first in the cluster's order sends at once, the other only if the first's
        # notification log has not reached it a peer timeout later: for the Watchdog, the
        # first. (Not "the other sent nothing": under load an early group's log can arrive
        # late, and the second node then sends it too; Alertmanager deduplicates on a
        # best-effort basis. The receiver's single Watchdog above is the claim.)
        first = cluster_first(url_a, url_b)
        assert webhook_notifications(first) >= 1
        sender = am_a if first == url_a else am_b

        # Tasks run on the worker hosts, counted over their pools, scraped from their endpoints.
        wait_for(lambda: _count(prom, 'up{job="pasargad-workers"} == 1') == len(WORKERS),
                 timeout=120, what="the worker hosts scraped")  # fmt: skip
        sender_app = Celery("sender", broker=f"redis://{network.gateway}:{redis_port}/0")
        for i in range(TASKS):
            sender_app.send_task("celery.accumulate", args=(i,))
        done = ('sum(celery_tasks_total{job="pasargad-workers", task="celery.accumulate",'
                ' state="succeeded"})')  # fmt: skip
        wait_for(lambda: scalar(prom, done) == TASKS, timeout=60, what="tasks counted")

        stock = "sum(product_stock_quantity)"  # whichever host (web or worker) holds the lease
        try:
            wait_for(lambda: scalar(prom, stock) == truth, timeout=60, what="stock = SQL truth")
        except AssertionError as exc:
            raise AssertionError(f"{exc}: {_state(prom)}") from None
        assert _count(prom, "monitoring_shop_collector_leader == 1") == 1

        # The specification's request rate against what was sent in the same minute.
        wait_for(lambda: time.time() >= traffic.started + WINDOW + 5, timeout=WINDOW + 30,
                 what="a minute of steady traffic")  # fmt: skip
        at = time.time() - 2
        wait_for(lambda: (scalar(prom, 'min(timestamp(up{job="pasargad-prints"}))') or 0) >= at,
                 timeout=30, what="every web host scraped past the measured minute")  # fmt: skip
        measured = scalar(prom, "sum(rate(http_requests_total[1m]))", at=at)
        # Requests sent: the traffic's, and Prometheus' own scrapes of the web hosts (the app
        # counts those too), as many as `up` has samples in that minute.
        scrapes = scalar(prom, 'sum(count_over_time(up{job="pasargad-prints"}[1m]))', at=at)
        expected = (traffic.answered_between(at - WINDOW, at) + (scrapes or 0)) / WINDOW
        traffic.close()
        print(f"rate: measured {measured}/s, sent {expected}/s ({scrapes} scrapes)")
        assert measured is not None and abs(measured - expected) <= 0.05 * expected, (
            f"sum(rate(http_requests_total[1m])) = {measured}, sent {expected:.3f}/s ({scrapes} scrapes)"
        )  # fmt: skip

        # A web host dies (the lease holder if a web host holds it): only its target is down.
        [holder] = query(prom, "monitoring_shop_collector_leader == 1")
        holder_instance = holder["metric"]["instance"]
        victim = holder_instance if holder_instance in hosts.values() else hosts[HOSTS[0]]
        os.killpg(by_instance[victim].pid, signal.SIGKILL)
        by_instance[victim].wait(timeout=30)
        killed_at = time.monotonic()
        wait_for(lambda: _count(prom, "up == 0") == 1, timeout=60, what="the killed host down")
        [down] = query(prom, "up == 0")
        assert down["metric"]["instance"] == victim
        if victim == holder_instance:  # another host takes the lease; the figure comes back
            wait_for(lambda: _count(prom, "monitoring_shop_collector_leader == 1") == 1
                     and query(prom, "monitoring_shop_collector_leader == 1")[0]["metric"]
                     ["instance"] != victim, timeout=60, what="a survivor holding the lease")  # fmt: skip
        wait_for(lambda: scalar(prom, stock) == truth, timeout=60,
                 what="stock = SQL truth after the loss")  # fmt: skip

        # The Alertmanager that sent the Watchdog dies too, STAGGER s later: the web host's
        # TargetDown (for: 1m) fires first, and the dead Alertmanager's own TargetDown, in the
        # same (alertname, team) group, waits for the next group_interval (5m).
        time.sleep(max(0.0, killed_at + STAGGER - time.monotonic()))
        sender.terminate()
        sender.wait(timeout=30)

        firing = 'ALERTS{alertname="TargetDown", alertstate="firing"}'
        wait_for(lambda: _count(prom, firing) >= 1, timeout=120, what="TargetDown firing")
        assert [a["metric"]["instance"] for a in query(prom, firing)] == [victim]
        wait_for(lambda: posts(receiver, "/dashboard", "TargetDown") >= 1, timeout=60,
                 what="the TargetDown notification from the surviving Alertmanager")  # fmt: skip
        time.sleep(3 * PEER_TIMEOUT)  # a duplicate would have come by now
        told = {
            path: posts(receiver, path, "TargetDown") for path in ("/dashboard", "/sms", "/slack")
        }
        told.update({to: mails(smtp, to, "TargetDown")
                     for to in ("devops@pasargadprints.com", "oncall@pasargadprints.com")})  # fmt: skip
        assert told == dict.fromkeys(told, 1), told
        [post] = [r for r in receiver.requests
                  if r.path.endswith("/dashboard") and b"TargetDown" in r.body]  # fmt: skip
        assert victim.encode() in post.body
    finally:
        if traffic is not None:
            traffic.close()
        receiver.close()
        smtp.close()
        for process in processes:
            if process.poll() is None:
                _signal(process, signal.SIGTERM)
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    _signal(process, signal.SIGKILL)
                    process.wait()
        with contextlib.suppress(psycopg.Error):  # never hide the test's own failure
            drop_database(dbname)


class Traffic:
    """Steady GETs to every web host, one thread each; keeps the time of every answer."""

    def __init__(self, targets: list[str]) -> None:
        self.answered: list[float] = []
        self.stop = threading.Event()
        self.started = time.time()
        self.threads = [threading.Thread(target=self._run, args=(t,), daemon=True) for t in targets]
        for thread in self.threads:
            thread.start()

    def _run(self, target: str) -> None:
        with httpx.Client(base_url=f"http://{target}", timeout=10) as client:
            due = time.monotonic()
            while not self.stop.is_set():
                try:
                    client.get(ROUTE)
                    self.answered.append(time.time())  # counted by the host: it answered
                except httpx.HTTPError:
                    pass
                due += 1 / RATE_PER_HOST
                self.stop.wait(max(0.0, due - time.monotonic()))

    def answered_between(self, start: float, end: float) -> int:
        return sum(1 for t in list(self.answered) if start < t <= end)

    def close(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=15)


def recreate_database(name: str) -> None:
    drop_database(name)
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as db:
        db.execute(f'CREATE DATABASE "{name}"')


def drop_database(name: str) -> None:
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as db:
        db.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def posts(receiver: HttpReceiver, path: str, alertname: str) -> int:
    return sum(
        1 for r in list(receiver.requests) if r.path.endswith(path) and alertname.encode() in r.body
    )


def mails(smtp: SmtpServer, to: str, alertname: str) -> int:
    return sum(
        1 for _, rcpts, data in list(smtp.messages) if to in rcpts and alertname.encode() in data
    )


def cluster_first(*urls: str) -> str:
    """The node at position 0 of the Alertmanager cluster: the peers sorted by name, as each
    node orders them to decide who notifies first."""
    names = {}
    for url in urls:
        with urllib.request.urlopen(f"{url}/api/v2/status", timeout=10) as answer:
            names[json.loads(answer.read())["cluster"]["name"]] = url
    return names[min(names)]


def webhook_notifications(url: str) -> float:
    """alertmanager_notifications_total{integration="webhook"} of one node."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("alertmanager_notifications_total{") and 'integration="webhook"' in line
    )


def _signal(process: subprocess.Popen, signum: int) -> None:
    """Its whole session (gunicorn's workers, the Celery pool), or the process alone (the
    Alertmanagers, started in this test's session)."""
    if os.getpgid(process.pid) == process.pid:
        os.killpg(process.pid, signum)
    else:
        process.send_signal(signum)


def _answers(target: str) -> bool:
    try:
        return httpx.get(f"http://{target}/api/health/", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _count(prom: str, expr: str) -> int:
    try:
        return len(query(prom, expr))
    except OSError:
        return -1


def _state(prom: str) -> str:
    return json.dumps(
        {
            expr: [(r["metric"], r["value"][1]) for r in query(prom, expr)]
            for expr in (
                "monitoring_shop_collector_leader",
                "monitoring_collector_up",
                "product_stock_quantity",
                "redis_up",
            )
        }
    )
