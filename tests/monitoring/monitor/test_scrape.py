"""Scraping a real local HTTP exporter into the real sample store."""

import logging
import math
import socket
import time

import httpx
import pytest

from monitoring.monitor.config import config_load, settings_from_env
from monitoring.monitor.scrape import Scraper, exposition_parse, labels_attach
from monitoring.rules.engine import Engine
from monitoring.tsdb.store import Matcher, SampleStore, is_stale
from tests.monitoring.monitor.exporter import Exporter
from tests.wait import wait_for

BODY = """\
# HELP http_requests_total Requests.
# TYPE http_requests_total counter
http_requests_total{method="GET",status="200"} 10
http_requests_total{method="POST",status="500"} 3
# TYPE temperature gauge
temperature{job="exported-job"} 21.5
"""


@pytest.fixture
def exporter():
    with Exporter() as server:
        server.body = BODY
        yield server


def _config(tmp_path, *jobs: str, interval: str = "1s", timeout: str = "500ms"):
    scrape_configs = "".join(
        f"  - job_name: {name}\n    static_configs: [{{targets: ['{address}'], labels: {{env: test}}}}]\n"
        f"    scrape_interval: {interval}\n    scrape_timeout: {timeout}\n"
        for name, address in (job.split("=") for job in jobs)
    )
    path = tmp_path / "prometheus.yml"
    path.write_text(f"scrape_configs:\n{scrape_configs}")
    return config_load(path)


def _clock(start_ms: int = 1_700_000_000_000):
    now = [start_ms]

    def clock() -> int:
        return now[0]

    def advance(ms: int) -> None:
        now[0] += ms

    return clock, advance


def _values(store: SampleStore, name: str, **labels: str) -> dict[tuple, list[float]]:
    matchers = [Matcher("__name__", "=", name)] + [Matcher(k, "=", v) for k, v in labels.items()]
    return {s.labels: s.values for s in store.select(matchers, 0, 2**62)}


def test_a_scrape_stores_samples_with_target_labels_and_report_series(tmp_path, exporter):
    store = SampleStore()
    clock, _ = _clock()
    scraper = Scraper(store, _config(tmp_path, f"app={exporter.address}"), clock=clock)
    (target,) = scraper.targets()
    scraper.scrape(target)
    requests = _values(store, "http_requests_total")
    assert {dict(k)["method"]: v for k, v in requests.items()} == {"GET": [10.0], "POST": [3.0]}
    (labels,) = [dict(k) for k in requests if dict(k)["method"] == "GET"]
    assert labels == {
        "__name__": "http_requests_total",
        "method": "GET",
        "status": "200",
        "job": "app",
        "instance": exporter.address,
        "env": "test",
    }
    # honor_labels false: the exported `job` is kept as exported_job, the target's job wins.
    (temperature,) = _values(store, "temperature")
    assert dict(temperature)["job"] == "app" and dict(temperature)["exported_job"] == "exported-job"
    assert list(_values(store, "up", job="app").values()) == [[1.0]]
    assert list(_values(store, "scrape_samples_scraped").values()) == [[3.0]]
    (duration,) = _values(store, "scrape_duration_seconds").values()
    assert duration == [target.last_duration_s] and duration[0] > 0  # no speed claim here
    assert target.health == "up" and target.last_error == "" and target.last_samples == 3
    assert exporter.requests[-1]["path"] == "/metrics"
    assert "text/plain" in exporter.requests[-1]["Accept"]
    scraper.close()


def test_counter_reset_and_vanished_series(tmp_path, exporter):
    store = SampleStore()
    clock, advance = _clock()
    scraper = Scraper(store, _config(tmp_path, f"app={exporter.address}"), clock=clock)
    (target,) = scraper.targets()
    scraper.scrape(target)
    advance(1000)
    # The process restarted: GET's counter is back to 2, and POST's series is gone.
    exporter.body = (
        '# TYPE http_requests_total counter\nhttp_requests_total{method="GET",status="200"} 2\n'
    )
    scraper.scrape(target)
    advance(1000)
    scraper.scrape(target)
    series = {dict(k)["method"]: v for k, v in _values(store, "http_requests_total").items()}
    assert series["GET"] == [10.0, 2.0, 2.0]
    post = series["POST"]
    assert post[0] == 3.0 and is_stale(post[1]) and len(post) == 2
    assert list(_values(store, "scrape_samples_scraped").values()) == [[3.0, 1.0, 1.0]]
    scraper.close()


def test_a_dead_target_is_down_and_its_series_go_stale(tmp_path, exporter):
    store = SampleStore()
    clock, advance = _clock()
    scraper = Scraper(store, _config(tmp_path, f"app={exporter.address}"), clock=clock)
    (target,) = scraper.targets()
    scraper.scrape(target)
    exporter.shutdown()
    exporter.server_close()
    advance(1000)
    scraper.scrape(target)
    assert list(_values(store, "up").values()) == [[1.0, 0.0]]
    assert target.health == "down" and target.last_error
    for values in _values(store, "http_requests_total").values():
        assert values[0] > 0 and is_stale(values[1])
    assert list(_values(store, "scrape_samples_scraped").values()) == [[3.0, 0.0]]
    scraper.close()


def test_a_target_nobody_listens_on_is_down(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{sock.getsockname()[1]}"
    store = SampleStore()
    scraper = Scraper(store, _config(tmp_path, f"gone={address}"))
    scraper.scrape_all()
    assert list(_values(store, "up", job="gone").values()) == [[0.0]]
    assert scraper.targets()[0].health == "down"
    scraper.close()


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (500, "oops", "server returned HTTP status 500"),
        (200, "this is { not exposition", "invalid exposition"),
    ],
)
def test_an_error_answer_or_a_malformed_body_fails_the_scrape(
    tmp_path, exporter, status, body, error
):
    exporter.status, exporter.body = status, body
    store = SampleStore()
    scraper = Scraper(store, _config(tmp_path, f"app={exporter.address}"))
    scraper.scrape_all()
    (target,) = scraper.targets()
    assert target.health == "down" and error in target.last_error
    assert list(_values(store, "up").values()) == [[0.0]]
    scraper.close()


def test_params_are_sent_and_metadata_is_kept_on_the_target(tmp_path, exporter):
    path = tmp_path / "prometheus.yml"
    path.write_text(
        "scrape_configs:\n  - job_name: app\n    params: {module: [http_2xx], target: [shop]}\n"
        f"    static_configs: [{{targets: ['{exporter.address}']}}]\n"
    )
    scraper = Scraper(SampleStore(), config_load(path))
    scraper.scrape_all()
    scraper.close()
    assert exporter.requests[-1]["path"] == "/metrics?module=http_2xx&target=shop"
    (target,) = scraper.targets()
    assert target.metadata["http_requests_total"]["type"] == "counter"


def test_the_first_round_of_scrapes_is_awaited_up_to_the_longest_timeout(tmp_path, exporter):
    config = _config(tmp_path, f"a={exporter.address}", f"b={exporter.address}", timeout="750ms")
    scraper = Scraper(SampleStore(), config)
    assert not scraper.first_scrapes_done() and scraper.first_scrapes_budget_s() == 0.75
    scraper.scrape(scraper.targets()[0])
    assert not scraper.first_scrapes_done()  # one target of two
    scraper.scrape_all()
    assert scraper.first_scrapes_done()
    scraper.close()
    assert Scraper(SampleStore(), _config(tmp_path)).first_scrapes_budget_s() == 0


def test_bearer_token_is_sent(tmp_path, exporter):
    path = tmp_path / "prometheus.yml"
    path.write_text(
        "scrape_configs:\n  - job_name: app\n    metrics_path: /api/monitoring/prometheus/\n"
        f"    authorization: {{credentials: tok3n}}\n    static_configs: [{{targets: ['{exporter.address}']}}]\n"
    )
    scraper = Scraper(SampleStore(), config_load(path))
    scraper.scrape_all()
    assert exporter.requests[-1]["Authorization"] == "Bearer tok3n"
    assert exporter.requests[-1]["path"] == "/api/monitoring/prometheus/"
    scraper.close()


def test_a_hung_target_does_not_stall_the_others(tmp_path):
    with Exporter() as fast, Exporter() as hung:
        fast.body = hung.body = "x 1\n"
        hung.delay_s = 120  # answers only when released
        store = SampleStore()
        path = tmp_path / "prometheus.yml"
        path.write_text(
            "scrape_configs:\n"
            f"  - job_name: fast\n    static_configs: [{{targets: ['{fast.address}']}}]\n"
            "    scrape_interval: 200ms\n    scrape_timeout: 150ms\n"
            f"  - job_name: hung\n    static_configs: [{{targets: ['{hung.address}']}}]\n"
            "    scrape_interval: 60s\n    scrape_timeout: 60s\n"
        )
        config = config_load(path)
        scraper = Scraper(store, config)
        scraper.start()

        def ups(job: str) -> list[float]:
            return next((v for k, v in _values(store, "up").items() if dict(k)["job"] == job), [])

        # The fast target is scraped again and again while the hung one's first scrape is open.
        wait_for(lambda: hung.requests, what="the hung target's first scrape")
        before = len(ups("fast"))
        wait_for(lambda: len(ups("fast")) >= before + 4, what="4 scrapes of the fast target")
        assert set(ups("fast")) == {1.0}
        assert len(hung.requests) == 1 and ups("hung") == []
        hung.release.set()
        wait_for(lambda: ups("hung"), what="the released scrape")
        scraper.close()
        assert set(ups("hung")) == {1.0}


def test_a_scrape_that_outlasts_its_timeout_fails(tmp_path):
    with Exporter() as hung:
        hung.delay_s = 120
        store = SampleStore()
        scraper = Scraper(store, _config(tmp_path, f"hung={hung.address}", timeout="150ms"))
        (target,) = scraper.targets()
        scraper.scrape(target)
        assert target.health == "down" and target.last_error == "context deadline exceeded"
        assert list(_values(store, "up").values()) == [[0.0]]
        scraper.close()


def test_reload_marks_removed_targets_stale(tmp_path, exporter):
    store = SampleStore()
    clock, advance = _clock()
    scraper = Scraper(store, _config(tmp_path, f"app={exporter.address}"), clock=clock)
    scraper.scrape_all()
    advance(1000)
    scraper.update(_config(tmp_path))
    assert scraper.targets() == []
    for values in _values(store, "up").values():
        assert values[0] == 1.0 and is_stale(values[1])
    scraper.close()


def test_reload_keeps_the_health_of_targets_that_stay_with_the_same_labels(tmp_path, exporter):
    store = SampleStore()
    clock, advance = _clock()
    scraper = Scraper(store, _config(tmp_path, f"app={exporter.address}"), clock=clock)
    scraper.scrape_all()
    (before,) = scraper.targets()
    advance(1000)
    scraper.update(_config(tmp_path, f"app={exporter.address}"))  # unchanged
    (kept,) = scraper.targets()
    assert kept is not before
    assert (kept.health, kept.last_scrape) == ("up", before.last_scrape)
    scraper.update(_config(tmp_path, f"app={exporter.address}", interval="2s"))  # same labels
    assert scraper.targets()[0].health == "up"
    path = tmp_path / "prometheus.yml"
    path.write_text(path.read_text().replace("env: test", "env: staging"))
    scraper.update(config_load(path))  # new labels: a new target, not yet scraped
    (fresh,) = scraper.targets()
    assert (fresh.health, fresh.last_scrape) == ("unknown", None)
    scraper.close()


def test_exposition_parse_reads_histograms_and_special_values():
    samples = exposition_parse(
        "# TYPE d histogram\n"
        'd_bucket{le="0.1"} 1\nd_bucket{le="+Inf"} 2\nd_sum 0.3\nd_count 2\n'
        "g NaN\nh +Inf\n"
    )
    names = [(labels["__name__"], labels.get("le")) for labels, _ in samples]
    assert names == [
        ("d_bucket", "0.1"),
        ("d_bucket", "+Inf"),
        ("d_sum", None),
        ("d_count", None),
        ("g", None),
        ("h", None),
    ]
    assert math.isnan(samples[4][1]) and samples[5][1] == math.inf


def test_exposition_parse_keeps_each_familys_metadata_under_its_type_line_name():
    metadata: dict[str, dict] = {}
    exposition_parse(BODY, metadata)
    assert metadata == {
        # a counter keeps its _total, as Prometheus' /api/v1/metadata shows it
        "http_requests_total": {"type": "counter", "help": "Requests.", "unit": ""},
        "temperature": {"type": "gauge", "help": "", "unit": ""},
    }


def test_without_a_clock_samples_get_the_wall_time_of_the_scrape(tmp_path, exporter):
    store = SampleStore()
    scraper = Scraper(store, _config(tmp_path, f"app={exporter.address}"))
    (target,) = scraper.targets()
    assert (target.health, target.last_scrape, target.last_duration_s, target.last_samples) == (
        "unknown",
        None,
        0.0,
        0,
    )
    before, started = time.time() * 1000, time.perf_counter()
    scraper.scrape_all()
    took, after = time.perf_counter() - started, time.time() * 1000
    scraper.close()
    (series,) = store.select([Matcher("__name__", "=", "up")], 0, 2**62)
    assert before - 1 <= series.timestamps[0] <= after
    assert 0 < target.last_duration_s <= took  # a part of the scrape, never more


def test_a_targets_health_is_logged_when_it_changes_only(tmp_path, exporter, caplog):
    scraper = Scraper(SampleStore(), _config(tmp_path, f"app={exporter.address}"))
    (target,) = scraper.targets()
    with caplog.at_level(logging.INFO, logger="monitoring.monitor.scrape"):
        for _ in range(3):
            scraper.scrape(target)
        exporter.status = 500
        scraper.scrape(target)
        scraper.scrape(target)
    scraper.close()
    url = f"http://{exporter.address}/metrics"
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("INFO", f"target {url} is up"),
        ("WARNING", f"target {url} is down: server returned HTTP status 500 Internal Server Error"),
    ]


def test_labels_attach_follows_prometheus_for_clashes():
    target = {"job": "app", "instance": "h:1"}
    assert labels_attach({"job": "a", "exported_job": "b"}, target, honor_labels=False) == {
        "job": "app",
        "exported_job": "b",
        "exported_exported_job": "a",
        "instance": "h:1",
    }
    assert labels_attach({"job": "a"}, target, honor_labels=True) == {"job": "a", "instance": "h:1"}


class NamesToLoopback(httpx.HTTPTransport):
    """Reaches the local exporter under addresses that are not loopback, as DNS or a route would
    reach a remote host: the scraper decides on the address it was given, and the request really
    arrives at the exporter, with that address in its Host header. No traffic leaves the machine."""

    def __init__(self, names: dict[str, str]) -> None:
        super().__init__()
        self.names = names

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        host, port = self.names[request.url.host].split(":")
        request.url = request.url.copy_with(host=host, port=int(port))
        return super().handle_request(request)


def test_the_default_token_goes_only_to_loopback_targets_without_their_own(tmp_path, exporter):
    port = exporter.address.rpartition(":")[2]
    remote_name, remote_ip = f"metrics.shop.invalid:{port}", f"192.0.2.10:{port}"
    path = tmp_path / "prometheus.yml"
    path.write_text(
        "scrape_configs:\n"
        f"  - job_name: local\n    static_configs: [{{targets: ['{exporter.address}']}}]\n"
        f"  - job_name: own\n    bearer_token: mine\n    static_configs: [{{targets: ['{exporter.address}']}}]\n"
        f"  - job_name: remote\n    static_configs: [{{targets: ['{remote_name}', '{remote_ip}']}}]\n"
    )
    transport = NamesToLoopback(
        {
            "127.0.0.1": exporter.address,
            "metrics.shop.invalid": exporter.address,
            "192.0.2.10": exporter.address,
        }
    )
    store = SampleStore()
    scraper = Scraper(store, config_load(path), default_token="app-token", transport=transport)
    scraper.scrape_all()
    scraper.close()
    # Every target was reached, the remote ones too ...
    ups = {(dict(k)["job"], dict(k)["instance"]): v for k, v in _values(store, "up").items()}
    assert ups == {
        ("local", exporter.address): [1.0],
        ("own", exporter.address): [1.0],
        ("remote", remote_name): [1.0],
        ("remote", remote_ip): [1.0],
    }
    # ... and only the loopback target without a token of its own got the app's token.
    sent = sorted((r["Host"], r.get("Authorization", "")) for r in exporter.requests)
    assert sent == sorted(
        [
            (exporter.address, "Bearer app-token"),
            (exporter.address, "Bearer mine"),
            (remote_name, ""),
            (remote_ip, ""),
        ]
    )
    assert settings_from_env({"MONITORING_TOKEN": "t"}).scrape_token == "t"
    assert (
        settings_from_env({"MONITORING_TOKEN": "t", "MONITOR_SCRAPE_TOKEN": "s"}).scrape_token
        == "s"
    )


def test_a_scraped_counter_reset_is_handled_by_the_engine(tmp_path, exporter):
    store = SampleStore()
    clock, advance = _clock()
    scraper = Scraper(store, _config(tmp_path, f"app={exporter.address}"), clock=clock)
    for value in (10, 2, 5):  # the exporter restarted between the first and second scrape
        exporter.body = f"# TYPE c counter\nc_total {value}\n"
        scraper.scrape_all()
        advance(1000)
    engine = Engine(store)
    t = clock() - 1000
    (resets,) = engine.instant("resets(c_total[3s])", t).samples
    (increase,) = engine.instant("increase(c_total[3s])", t).samples
    assert resets.value == 1
    # 10 -> 12 -> 15 after the reset; Prometheus extrapolates the 5 over 2 s to the 3 s window.
    assert increase.value == 7.5
    scraper.close()
