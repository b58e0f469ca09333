"""Acceptance: the monitor probes a real page; when the page starts failing the check goes down
after its retries (not before), and the monitor's rule engine raises the shipped rule's alert;
when it recovers, the check comes back up after its successes."""

import time
from pathlib import Path

import pytest

from monitoring.monitor.api import api_targets
from monitoring.monitor.config import settings_from_env
from monitoring.monitor.runtime import Monitor
from monitoring.tsdb.store import Matcher
from tests.monitoring.synthetic.site import Site
from tests.wait import wait_for

SHIPPED_RULES = Path(__file__).resolve().parents[3] / "deploy/prometheus/synthetic_rules.yml"


@pytest.fixture
def site():
    s = Site()
    yield s
    s.close()


def _monitor(tmp_path, site, clock) -> Monitor:
    (tmp_path / "prometheus.yml").write_text(
        "global: {evaluation_interval: 1s}\n"
        f"rule_files: ['{SHIPPED_RULES}']\n"
        "scrape_configs:\n"
        "  - job_name: shop\n"
        "    metrics_path: /api/monitoring/prometheus/\n"
        f"    static_configs: [{{targets: ['{site.url.removeprefix('http://')}']}}]\n"
    )
    (tmp_path / "checks.yml").write_text(
        "health_checks:\n"
        "  - name: homepage_load\n"
        "    url: /\n"  # relative: the shop the app job scrapes
        "    expected_status: 200\n"
        "    timeout: 2000\n"
        "    interval: 0.3\n"
        "    expected_text: Pasargad\n"
        "    failures_before_down: 3\n"
        "    successes_before_up: 2\n"
        "    retry_interval: 100\n"
    )
    env = {
        "SYNTHETIC_CONFIG": str(tmp_path / "checks.yml"),
        "NOTIFY_CONFIG": "off",
        "MONITOR_STATE_PATH": str(tmp_path / "state.sqlite3"),
    }
    return Monitor(
        config_path=tmp_path / "prometheus.yml",
        settings=settings_from_env(env),
        clock=lambda: int(time.time() * 1000) + clock[0],
        persist=False,
    )


def _probe_requests(site) -> int:
    return sum(1 for method, path, _, _ in site.requests if path == "/")


def _series(monitor, name):
    t = monitor.clock()
    return monitor.engine.instant(f'{name}{{job="synthetic", check="homepage_load"}}', t).samples


def _alerts(monitor, state):
    return [
        a
        for g in monitor.groups
        for a in g.active_alerts()
        if dict(a.labels).get("alertname") == "SyntheticCheckFailing" and a.state == state
    ]


def test_a_page_that_starts_failing_goes_down_after_its_retries_and_alerts(tmp_path, site):
    offset = [0]
    monitor = _monitor(tmp_path, site, offset)
    assert monitor.config_errors == []
    monitor.start()
    try:
        wait_for(lambda: _probe_requests(site) >= 2, what="probes of the page")
        (sample,) = _series(monitor, "probe_success")
        assert sample.value == 1
        assert dict(sample.labels)["instance"] == site.url + "/"
        (status,) = _series(monitor, "probe_http_status_code")
        assert status.value == 200
        # Listed with the scrape targets, where Prometheus lists blackbox_exporter's probes.
        targets = {t["scrapePool"]: t for t in api_targets(monitor, {})["activeTargets"]}
        probe = targets["synthetic"]
        assert probe["labels"] == {
            "check": "homepage_load", "instance": site.url + "/", "job": "synthetic"
        }  # fmt: skip
        assert (probe["health"], probe["lastError"], probe["scrapeUrl"]) == (
            "up",
            "",
            site.url + "/",
        )
        assert probe["scrapeInterval"] == "300ms" and probe["scrapeTimeout"] == "2s"
        assert targets["shop"]["labels"]["job"] == "shop"

        # The page breaks: 500. The check stays up through its first two failures.
        (state,) = monitor.prober.states()
        site.status = 500
        before = _probe_requests(site)
        wait_for(lambda: not state.up, what="the check declared down")
        assert _probe_requests(site) - before in (3, 4)  # 3 attempts (one may have been in flight)
        assert state.last.error == "status 500, expected 200"
        probe = next(
            t for t in api_targets(monitor, {})["activeTargets"] if t["scrapePool"] == "synthetic"
        )
        assert (probe["health"], probe["lastError"]) == ("down", "status 500, expected 200")
        wait_for(lambda: _series(monitor, "probe_success")[0].value == 0, what="probe_success 0")
        assert _series(monitor, "synthetic_probe_attempt_success")[0].value == 0

        # The shipped rule, evaluated by the monitor's own engine: pending, then firing 1m on.
        wait_for(lambda: _alerts(monitor, "pending"), what="SyntheticCheckFailing pending")
        offset[0] += 61_000
        (alert,) = wait_for(lambda: _alerts(monitor, "firing"), what="SyntheticCheckFailing firing")
        labels = dict(alert.labels)
        assert (labels["severity"], labels["team"], labels["check"]) == (
            "critical",
            "devops",
            "homepage_load",
        )

        # Kept for the dashboard: the history is in the monitor's store (query_range).
        (history,) = monitor.store.select(
            [Matcher("__name__", "=", "probe_success")], 0, monitor.clock()
        )
        values = history.values
        assert 1.0 in values and 0.0 in values

        # Fixed: up again after two good attempts, and the alert resolves.
        site.status = 200
        wait_for(lambda: state.up, what="the check declared up again")
        wait_for(lambda: not _alerts(monitor, "firing"), what="the alert resolved")
    finally:
        monitor.stop()


def test_a_malformed_checks_file_is_reported_and_a_bad_reload_keeps_the_running_checks(
    tmp_path, site
):
    monitor = _monitor(tmp_path, site, [0])
    good = (tmp_path / "checks.yml").read_text()
    (tmp_path / "checks.yml").write_text(good.replace("interval: 0.3", "interval: soon"))
    errors = monitor.reload()
    assert any(
        "checks.yml:6: check 'homepage_load'.interval (s): expected a number" in e for e in errors
    )
    assert [s.check.name for s in monitor.prober.states()] == ["homepage_load"]
    monitor.stop()
    broken = Monitor(config_path=monitor.config_path, settings=monitor.settings, persist=False)
    assert any("checks.yml:6:" in e for e in broken.config_errors)
    assert broken.prober.states() == []
    broken.stop()
