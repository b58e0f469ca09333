"""The monitor's HTTP API over a real socket: Prometheus' JSON shapes and error shapes."""

import http.client
import json
import select
import socket

import httpx
import pytest

from monitoring.monitor.api import _Server, api_server_start
from monitoring.monitor.config import settings_from_env
from monitoring.monitor.runtime import Monitor
from tests.monitoring.monitor.exporter import Exporter
from tests.wait import wait_for

BODY = """\
# TYPE cpu_usage_percent gauge
cpu_usage_percent{host="web1"} 95
cpu_usage_percent{host="web2"} 10
# HELP http_requests_total Requests served.
# TYPE http_requests_total counter
http_requests_total{method="GET"} 100
"""
RULES = """\
groups:
  - name: system
    rules:
      - record: cpu:max
        expr: max(cpu_usage_percent)
      - alert: HighCpuUsage
        expr: cpu_usage_percent > 85
        for: 5m
        labels: {severity: warning}
        annotations:
          summary: "High CPU usage detected"
          description: "CPU on {{ $labels.host }} is {{ $value }}%"
"""


@pytest.fixture(scope="module")
def running(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("api")
    with Exporter() as exporter:
        exporter.body = BODY
        (tmp / "rules.yml").write_text(RULES)
        (tmp / "prometheus.yml").write_text(
            "global: {scrape_interval: 15s, evaluation_interval: 15s}\n"
            "rule_files: [rules.yml]\n"
            f"scrape_configs:\n  - job_name: app\n    static_configs: [{{targets: ['{exporter.address}']}}]\n"
        )
        clock = [1_700_000_000_000]
        monitor = Monitor(
            config_path=tmp / "prometheus.yml",
            settings=settings_from_env({}),
            clock=lambda: clock[0],
            persist=False,
        )
        for _ in range(3):
            monitor.cycle_once()
            clock[0] += 15_000
        server = api_server_start(monitor, host="127.0.0.1", port=0, token="")
        client = httpx.Client(base_url=f"http://127.0.0.1:{server.server_address[1]}")
        yield monitor, client, clock[0] - 15_000, exporter
        client.close()
        server.shutdown()
        server.server_close()
        monitor.stop()


def _ok(response: httpx.Response):
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "success"
    return body["data"]


def _bad(response: httpx.Response, status: int = 400, error_type: str = "bad_data") -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["status"] == "error" and body["errorType"] == error_type
    return body["error"]


def test_instant_query(running):
    _, client, last, exporter = running
    data = _ok(
        client.get("/api/v1/query", params={"query": "cpu_usage_percent > 50", "time": last / 1000})
    )
    assert data == {
        "resultType": "vector",
        "result": [
            {
                "metric": {
                    "__name__": "cpu_usage_percent",
                    "host": "web1",
                    "instance": exporter.address,
                    "job": "app",
                },
                "value": [last // 1000, "95"],
            }
        ],
    }
    scalar = _ok(
        client.post("/api/v1/query", data={"query": "1 + 1", "time": "2023-11-14T22:13:20Z"})
    )
    assert scalar == {"resultType": "scalar", "result": [1700000000, "2"]}


def test_recording_rule_output_and_up_are_queryable(running):
    _, client, last, _ = running
    data = _ok(client.get("/api/v1/query", params={"query": "cpu:max", "time": last / 1000}))
    assert [r["value"][1] for r in data["result"]] == ["95"]
    up = _ok(client.get("/api/v1/query", params={"query": "up", "time": last / 1000}))
    assert [r["value"][1] for r in up["result"]] == ["1"]


def test_range_query(running):
    _, client, last, _ = running
    start = (last - 30_000) / 1000
    data = _ok(
        client.get(
            "/api/v1/query_range",
            params={
                "query": 'cpu_usage_percent{host="web2"}',
                "start": start,
                "end": last / 1000,
                "step": "15s",
            },
        )
    )
    assert data["resultType"] == "matrix"
    (series,) = data["result"]
    assert series["values"] == [[start + 15 * i, "10"] for i in range(3)]


def test_a_kept_alive_connection_answers_request_after_request(running):
    # The speed of small answers (no 40 ms wait for a delayed ACK) is bench_monitor.py's goal.
    _, client, last, _ = running
    params = {"query": "up", "start": last / 1000 - 60, "end": last / 1000, "step": "15s"}
    answers = [_ok(client.get("/api/v1/query_range", params=params)) for _ in range(9)]
    assert all(answer == answers[0] for answer in answers)
    assert [v for _, v in answers[0]["result"][0]["values"]] == ["1"] * 3


@pytest.mark.parametrize(
    ("path", "params", "message"),
    [
        ("/api/v1/query", {"query": "sum("}, 'invalid parameter "query"'),
        ("/api/v1/query", {}, 'invalid parameter "query"'),
        ("/api/v1/query", {"query": "up", "time": "yesterday"}, 'invalid parameter "time"'),
        (
            "/api/v1/query_range",
            {"query": "up", "start": "10", "end": "5", "step": "1"},
            "end timestamp must not be before start time",
        ),
        (
            "/api/v1/query_range",
            {"query": "up", "start": "0", "end": "5", "step": "0"},
            "zero or negative query resolution step",
        ),
        (
            "/api/v1/query_range",
            {"query": "up", "start": "0", "end": "100000", "step": "1"},
            "exceeded maximum resolution of 11,000 points",
        ),
        (
            "/api/v1/query_range",
            {"query": "up", "end": "5", "step": "1"},
            'invalid parameter "start"',
        ),
        ("/api/v1/series", {}, "no match[] parameter provided"),
        ("/api/v1/series", {"match[]": "rate(up[5m])"}, "is not a series selector"),
        ("/api/v1/series", {"match[]": '{job=~".*"}'}, "at least one non-empty matcher"),
        ("/api/v1/label/bad-name/values", {}, "invalid label name"),
        ("/api/v1/rules", {"type": "banana"}, 'invalid parameter "type"'),
    ],
)
def test_bad_requests_get_prometheus_error_shape(running, path, params, message):
    _, client, _, _ = running
    assert message in _bad(client.get(path, params=params))


def test_series_labels_and_label_values(running):
    _, client, _, exporter = running
    series = _ok(client.get("/api/v1/series", params={"match[]": "http_requests_total"}))
    assert series == [
        {
            "__name__": "http_requests_total",
            "instance": exporter.address,
            "job": "app",
            "method": "GET",
        }
    ]
    names = _ok(client.get("/api/v1/labels"))
    assert {"__name__", "host", "instance", "job", "method", "alertname", "alertstate"} <= set(
        names
    )
    assert names == sorted(names)
    matched = _ok(client.get("/api/v1/labels", params={"match[]": "http_requests_total"}))
    assert matched == ["__name__", "instance", "job", "method"]
    hosts = _ok(client.get("/api/v1/label/host/values"))
    assert hosts == ["web1", "web2"]
    metric_names = _ok(client.get("/api/v1/label/__name__/values"))
    assert {"ALERTS", "ALERTS_FOR_STATE", "cpu:max", "up", "scrape_duration_seconds"} <= set(
        metric_names
    )


def test_alerts_and_rules(running):
    monitor, client, _, exporter = running
    (alert,) = _ok(client.get("/api/v1/alerts"))["alerts"]
    assert alert["labels"] == {
        "alertname": "HighCpuUsage",
        "host": "web1",
        "instance": exporter.address,
        "job": "app",
        "severity": "warning",
    }
    assert alert["state"] == "pending"
    assert alert["annotations"]["description"] == "CPU on web1 is 95%"
    assert alert["value"] == "9.5e+01"
    assert alert["activeAt"] == "2023-11-14T22:13:20Z"
    (group,) = _ok(client.get("/api/v1/rules"))["groups"]
    assert group["name"] == "system" and group["interval"] == 15
    assert group["file"].endswith("rules.yml")
    record, alerting = group["rules"]
    assert (
        record["type"] == "recording" and record["name"] == "cpu:max" and record["health"] == "ok"
    )
    assert alerting["type"] == "alerting" and alerting["duration"] == 300
    assert alerting["state"] == "pending" and len(alerting["alerts"]) == 1
    only_alerts = _ok(client.get("/api/v1/rules", params={"type": "alert"}))["groups"][0]["rules"]
    assert [r["name"] for r in only_alerts] == ["HighCpuUsage"]


def test_a_burst_of_connections_waits_in_the_listen_queue_not_in_syn_retries():
    """64 clients connect at once (a Grafana dashboard's panels) while the server accepts
    none: all 64 are queued by the kernel. With Python's default backlog of 5 the others'
    handshakes never complete until accepted, and their SYNs are resent after 1, 3, 7… s."""
    server = _Server(("127.0.0.1", 0), None, "")  # listening, not serving: nothing accepts
    clients = [socket.socket() for _ in range(64)]
    try:
        for client in clients:
            client.setblocking(False)
            client.connect_ex(server.server_address)

        def all_connected() -> bool:
            _, writable, _ = select.select([], clients, [], 0.1)
            return len(writable) == len(clients) and not any(
                c.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) for c in clients
            )

        wait_for(all_connected, 10, "64 connections queued")
    finally:
        for client in clients:
            client.close()
        server.server_close()


def test_targets(running):
    _, client, _, exporter = running
    data = _ok(client.get("/api/v1/targets"))
    assert data["droppedTargets"] == []
    (target,) = data["activeTargets"]
    assert target["health"] == "up" and target["lastError"] == ""
    assert target["labels"] == {"instance": exporter.address, "job": "app"}
    assert target["scrapeUrl"] == f"http://{exporter.address}/metrics"
    assert target["scrapePool"] == "app" and target["scrapeInterval"] == "15s"
    assert target["discoveredLabels"]["__address__"] == exporter.address
    # The fixture's clock: the last scrape at 2023-11-14T22:13:50Z, printed as Go prints it.
    assert target["lastScrape"] == "2023-11-14T22:13:50Z" and target["lastScrapeDuration"] > 0


def test_health_ready_and_unknown_paths(running):
    _, client, _, _ = running
    assert client.get("/-/healthy").status_code == 200
    assert client.get("/-/ready").status_code == 503  # never start()ed: not ready
    assert client.get("/api/v1/nope").status_code == 404
    assert client.get("/-/reload").status_code == 405
    assert client.delete("/api/v1/query").status_code == 405


def test_no_answer_names_the_python_version(running):
    """http.server's Server header ("BaseHTTP/0.6 Python/3.11.7") is not sent, on a routed
    answer, a refusal, or a request line http.server itself rejects."""
    import platform
    import socket

    _, client, _, _ = running
    for response in (client.get("/-/healthy"), client.get("/api/v1/nope")):
        assert response.headers["Server"] == "pasargad-monitor"
    host, port = client.base_url.host, client.base_url.port
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(b"BREW /pot HTTP/1.1\r\nHost: x\r\n\r\n")  # 501 from http.server
        head = sock.recv(65536).decode(errors="replace")
    assert head.startswith("HTTP/1.1 501")
    assert "Python" not in head and platform.python_version() not in head, head


def test_a_token_protects_everything_but_health(running):
    monitor, _, _, _ = running
    server = api_server_start(monitor, host="127.0.0.1", port=0, token="s3cret")
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        denied = httpx.get(f"{base}/api/v1/query", params={"query": "up"})
        assert denied.status_code == 401 and denied.json()["status"] == "error"
        wrong = httpx.get(f"{base}/api/v1/labels", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        allowed = httpx.get(f"{base}/api/v1/labels", headers={"Authorization": "Bearer s3cret"})
        assert allowed.status_code == 200
        assert httpx.get(f"{base}/-/healthy").status_code == 200
    finally:
        server.shutdown()
        server.server_close()


def test_metadata_and_buildinfo_for_grafana(running):
    _, client, _, _ = running
    metadata = _ok(client.get("/api/v1/metadata"))
    assert metadata["http_requests_total"] == [
        {"type": "counter", "help": "Requests served.", "unit": ""}
    ]
    assert metadata["cpu_usage_percent"] == [{"type": "gauge", "help": "", "unit": ""}]
    assert _ok(client.get("/api/v1/metadata", params={"metric": "cpu_usage_percent"})) == {
        "cpu_usage_percent": [{"type": "gauge", "help": "", "unit": ""}]
    }
    assert len(_ok(client.get("/api/v1/metadata", params={"limit": "1"}))) == 1
    assert "limit" in _bad(client.get("/api/v1/metadata", params={"limit": "x"}))
    assert _ok(client.get("/api/v1/status/buildinfo"))["version"] == "2.42.0"
    assert _ok(client.get("/api/v1/query_exemplars", params={"query": "up"})) == []


@pytest.mark.parametrize(
    ("headers", "body", "status"),
    [
        ({"Content-Length": "lots"}, b"", 400),
        ({"Content-Length": "-5"}, b"", 400),
        ({"Content-Length": str(2 << 20)}, b"", 413),
        ({"Content-Type": "application/x-www-form-urlencoded"}, b"query=%ff%fe(", 400),
        ({"Content-Type": "application/json"}, b'{"query": "up"}', 400),
    ],
)
def test_malformed_posts_get_4xx_not_500(running, headers, body, status):
    _, client, _, _ = running
    host, port = client.base_url.host, client.base_url.port
    connection = http.client.HTTPConnection(host, port, timeout=5)
    try:
        connection.putrequest("POST", "/api/v1/query")
        for name, value in {"Content-Length": str(len(body)), **headers}.items():
            connection.putheader(name, value)
        connection.endheaders(body)
        response = connection.getresponse()
        assert response.status == status
        assert json.loads(response.read())["status"] == "error"
    finally:
        connection.close()
