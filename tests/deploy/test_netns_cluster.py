"""Acceptance, reduced (docs/scale.md): web hosts in their own network namespaces (made and
removed here, addresses 10.213.x.0/24 on a private bridge), a shared SQLite file and a shared
Redis (its own redis-server on the bridge), real Prometheus scraping them through file_sd with
the token file, on the shipped rule files. Checks: request counters add up to the requests sent;
a shop-wide figure equals the SQL truth, not 2x it; killing the lease holder makes `up` 0 for
that instance only, and the figure comes back, once, from the survivor.

Needs root and `ip netns` (it runs as root in CI); fails, not skips, under CI=true."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import httpx
import pytest
import yaml
from celery import Celery

from tests.deploy.test_cluster import (
    PEER_TIMEOUT,
    cluster_size,
    dashboard_posts,
    installed_cluster_config,
    start_node,
)
from tests.gunicorn import BIN, ROOT, TOKEN, app_env, single_process
from tests.monitoring.notify.channels.servers import HttpReceiver
from tests.monitoring.notify.real_alertmanager import free_port
from tests.monitoring.notify.test_at_scale import render_alertmanager
from tests.services import require, require_alertmanager, require_prometheus
from tests.wait import wait_for

pytestmark = [pytest.mark.prometheus, pytest.mark.slow]

HOSTS = ("web1", "web2", "web3")
TASKS = 5
ROUTE = "/api/catalog/products/"
REQUESTS_PER_HOST = 40


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


def query(prom: str, expr: str) -> list[dict]:
    url = f"{prom}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=10) as answer:
        return json.loads(answer.read())["data"]["result"]


def scalar(prom: str, expr: str) -> float | None:
    result = query(prom, expr)
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
    processes: list[subprocess.Popen] = []
    receiver = HttpReceiver()

    def spawn(argv, *, env=None, netns: str | None = None, log: str) -> subprocess.Popen:
        prefix = ["ip", "netns", "exec", netns] if netns else []
        out = open(tmp_path / log, "wb")  # noqa: SIM115 (lives as long as the process)
        process = subprocess.Popen(prefix + argv, cwd=ROOT, env=env, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        processes.append(process)
        return process

    try:
        # Shared state: Redis on the bridge, one SQLite file with products.
        redis_port = 16379 + os.getpid() % 1000
        spawn(["redis-server", "--port", str(redis_port), "--bind", network.gateway,
               "--save", "", "--appendonly", "no", "--dir", str(tmp_path),
               "--protected-mode", "no"], log="redis.log")  # only on the private bridge  # fmt: skip
        database = tmp_path / "shop.sqlite3"
        base = app_env(tmp_path, DATABASE_URL=f"sqlite:///{database}")
        subprocess.run([sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"],
                       cwd=ROOT, env=single_process(base), check=True, timeout=180)  # fmt: skip
        seed = ("from shop.catalog.models import Category, Product\n"
                "c = Category.objects.create(name='Prints', slug='prints')\n"
                "for i, q in enumerate((3, 7, 50)):\n"
                "    Product.objects.create(sku=f'P{i}', name=f'P{i}', category=c, price=10,"
                " stock_quantity=q)\n")  # fmt: skip
        subprocess.run([sys.executable, "manage.py", "shell", "-c", seed], cwd=ROOT,
                       env=single_process(base), check=True, timeout=120)  # fmt: skip
        with sqlite3.connect(database) as db:
            [(truth,)] = db.execute(
                "SELECT SUM(stock_quantity) FROM catalog_product WHERE is_active"
            ).fetchall()

        hosts: dict[str, str] = {}
        for index, name in enumerate(HOSTS, start=1):
            netns, address = network.host(index)
            env = app_env(
                tmp_path / name,
                DATABASE_URL=f"sqlite:///{database}",
                REDIS_URL=f"redis://{network.gateway}:{redis_port}/0",
                MONITORING_SHOP_WIDE="lease",
                MONITORING_HOST_ID=name,
                MONITORING_SHOP_LEASE_SECONDS="3",
                MONITORING_COLLECTOR_INTERVAL="1",
                MONITORING_BUSINESS_INTERVAL="1",
                WEB_CONCURRENCY="2",
                ALLOWED_HOSTS=address,
                PROMETHEUS_MULTIPROC_DIR=str(tmp_path / name / "metrics"),
            )
            (tmp_path / name).mkdir()
            hosts[name] = f"{address}:8000"
            spawn([str(BIN / "gunicorn"), "-c", "config/gunicorn.conf.py",
                   "--bind", hosts[name], "config.wsgi"], env=env, netns=netns, log=f"{name}.log")  # fmt: skip
        for name, target in hosts.items():
            wait_for(lambda t=target: _answers(t), timeout=90, what=f"{name} serving")

        # A worker host: its own metrics endpoint, same token, same broker and database.
        worker_ns, worker_address = network.host(len(HOSTS) + 1)
        worker_env = app_env(
            tmp_path / "worker1",
            DATABASE_URL=f"sqlite:///{database}",
            REDIS_URL=f"redis://{network.gateway}:{redis_port}/0",
            MONITORING_SHOP_WIDE="lease",
            MONITORING_HOST_ID="worker1",
            MONITORING_SHOP_LEASE_SECONDS="3",
            CELERY_METRICS_LISTEN=f"{worker_address}:9808",
            PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "worker1" / "metrics"),
        )
        (tmp_path / "worker1").mkdir()
        worker = spawn([sys.executable, "-m", "celery", "-A", "config", "worker", "--concurrency=2",
               "--without-gossip", "--without-mingle", "--loglevel=INFO"],
              env=worker_env, netns=worker_ns, log="worker1.log")  # fmt: skip

        # Two clustered Alertmanagers on the rendered shipped file; the dashboard webhook (the
        # app's receiver, group_wait 0s) is a local HTTP receiver here.
        rendered = tmp_path / "alertmanager.yml"
        render_alertmanager(rendered, {**os.environ, "APP_URL": receiver.url,
                                       "MONITORING_TOKEN": TOKEN})  # fmt: skip
        binary = shutil.which("alertmanager") or shutil.which("prometheus-alertmanager")
        gossip_a, gossip_b = free_port(), free_port()
        am_a, url_a = start_node(binary, rendered, tmp_path / "am-a", gossip_a, gossip_b)
        am_b, url_b = start_node(binary, rendered, tmp_path / "am-b", gossip_b, gossip_a)
        processes += [am_a, am_b]
        wait_for(lambda: cluster_size(url_a) == 2 and cluster_size(url_b) == 2,
                 timeout=60, what="a cluster of two Alertmanagers")  # fmt: skip

        # Prometheus: the shipped cluster file, its targets written as deployment tooling would.
        config = installed_cluster_config(tmp_path / "prometheus")
        (config.parent / "pasargad_token").write_text(TOKEN + "\n")
        (config.parent / "targets/web.yml").write_text(
            yaml.safe_dump([{"targets": list(hosts.values()), "labels": {"role": "web"}}])
        )
        (config.parent / "targets/workers.yml").write_text(
            yaml.safe_dump([{"targets": [f"{worker_address}:9808"], "labels": {"role": "worker"}}])
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
        prom_port = 19090 + os.getpid() % 1000
        document["scrape_configs"] = [
            j for j in document["scrape_configs"] if j["job_name"] != "prometheus"
        ]
        config.write_text(yaml.safe_dump(document, sort_keys=False))
        spawn(["prometheus", f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
               f"--web.listen-address=127.0.0.1:{prom_port}"], log="prometheus.log")  # fmt: skip
        prom = f"http://127.0.0.1:{prom_port}"
        wait_for(lambda: _count(prom, 'up{job="pasargad-prints"} == 1') == len(HOSTS),
                 timeout=60, what="Prometheus scraping every web host")  # fmt: skip

        # Tasks run on the worker host, counted over its pool, scraped from its endpoint.
        wait_for(lambda: _count(prom, 'up{job="pasargad-workers"} == 1') == 1, timeout=90,
                 what="the worker host scraped")  # fmt: skip
        sender = Celery("sender", broker=f"redis://{network.gateway}:{redis_port}/0")
        for i in range(TASKS):
            sender.send_task("celery.accumulate", args=(i,))
        done = ('sum(celery_tasks_total{job="pasargad-workers", task="celery.accumulate",'
                ' state="succeeded"})')  # fmt: skip
        wait_for(lambda: scalar(prom, done) == TASKS, timeout=60, what="tasks counted")

        # Traffic: the same requests to every host.
        for target in hosts.values():
            with httpx.Client(base_url=f"http://{target}", timeout=10) as client:
                for _ in range(REQUESTS_PER_HOST):
                    client.get(ROUTE)
        sent = REQUESTS_PER_HOST * len(HOSTS)
        counted = 'sum(http_requests_total{job="pasargad-prints", route=~".*products.*"})'
        wait_for(lambda: scalar(prom, counted) == sent, timeout=60,
                 what=f"{sent} requests counted over the hosts")  # fmt: skip

        stock = "sum(product_stock_quantity)"  # whichever host (web or worker) holds the lease
        try:
            wait_for(lambda: scalar(prom, stock) == truth, timeout=60, what="stock = SQL truth")
        except AssertionError as exc:
            raise AssertionError(f"{exc}: {_state(prom)}") from None
        assert _count(prom, "monitoring_shop_collector_leader == 1") == 1
        [holder] = query(prom, "monitoring_shop_collector_leader == 1")
        holder_instance = holder["metric"]["instance"]

        # The holder dies: only its target is down; the survivor takes the lease.
        by_instance = {**{t: p for t, p in zip(hosts.values(), processes[1:], strict=False)},
                       f"{worker_address}:9808": worker}  # fmt: skip
        victim = by_instance[holder_instance]
        os.killpg(victim.pid, signal.SIGKILL)
        victim.wait(timeout=30)
        wait_for(lambda: _count(prom, "up == 0") == 1, timeout=60,
                 what="the killed host down")  # fmt: skip
        [down] = query(prom, "up == 0")
        assert down["metric"]["instance"] == holder_instance
        wait_for(lambda: _count(prom, "monitoring_shop_collector_leader == 1") == 1
                 and query(prom, "monitoring_shop_collector_leader == 1")[0]["metric"]["instance"]
                 != holder_instance, timeout=60, what="the survivor holding the lease")  # fmt: skip
        wait_for(lambda: scalar(prom, stock) == truth, timeout=60,
                 what="stock = SQL truth from the survivor")  # fmt: skip

        # TargetDown (for: 1m) for that instance only, told once by the pair of Alertmanagers.
        firing = 'ALERTS{alertname="TargetDown", alertstate="firing"}'
        wait_for(lambda: _count(prom, firing) == 1, timeout=120, what="TargetDown firing")
        assert query(prom, firing)[0]["metric"]["instance"] == holder_instance
        wait_for(lambda: dashboard_posts(receiver, "TargetDown") >= 1, timeout=60,
                 what="the TargetDown notification")  # fmt: skip
        time.sleep(3 * PEER_TIMEOUT)  # the second node would have sent by now
        assert dashboard_posts(receiver, "TargetDown") == 1
        [post] = [
            r
            for r in receiver.requests
            if r.path.endswith("/dashboard") and b"TargetDown" in r.body
        ]
        assert holder_instance.encode() in post.body
    finally:
        receiver.close()
        for process in processes:
            if process.poll() is None:
                _signal(process, signal.SIGTERM)
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    _signal(process, signal.SIGKILL)
                    process.wait()


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
