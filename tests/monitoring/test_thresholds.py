"""The web app's view of thresholds.yml: a broken file never reaches it (issue 9, defect 5)."""

import json
import logging
import shutil
from pathlib import Path

import httpx
import pytest

from monitoring.thresholds import DEFAULTS, LAST_GOOD_NAME, LastGoodThresholds
from tests.gunicorn import TOKEN, Gunicorn

SHIPPED = Path(__file__).resolve().parents[2] / "deploy/prometheus/thresholds.yml"


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_a_good_file_is_read_and_a_change_is_picked_up(tmp_path):
    path = tmp_path / "thresholds.yml"
    shutil.copy(SHIPPED, path)
    thresholds = LastGoodThresholds(path, tmp_path / LAST_GOOD_NAME)
    assert thresholds.current()["database"]["connection_utilization"] == 80
    _edit(path, "connection_utilization: 80", "connection_utilization: 90")
    assert thresholds.current()["database"]["connection_utilization"] == 90


def test_a_typo_keeps_the_last_good_thresholds_and_is_logged_with_its_line(tmp_path, caplog):
    path = tmp_path / "thresholds.yml"
    shutil.copy(SHIPPED, path)
    _edit(path, "connection_utilization: 80", "connection_utilization: 90")
    thresholds = LastGoodThresholds(path, tmp_path / LAST_GOOD_NAME)
    assert thresholds.current()["database"]["connection_utilization"] == 90
    _edit(path, "blocked_clients: 10", "blocked_clients: 1O")
    with caplog.at_level(logging.ERROR, logger="monitoring.thresholds"):
        assert thresholds.current()["database"]["connection_utilization"] == 90
        assert thresholds.current()["redis"]["blocked_clients"] == 10
    # Once per version of the file, not at every call.
    (record,) = [r for r in caplog.records if "thresholds.yml refused" in r.getMessage()]
    assert f"{path}:19: redis.blocked_clients: expected a number, got '1O'" in record.getMessage()


def test_a_process_started_after_the_typo_gets_the_last_good_copy(tmp_path):
    path = tmp_path / "thresholds.yml"
    shutil.copy(SHIPPED, path)
    _edit(path, "queue_length: 100", "queue_length: 250")
    assert LastGoodThresholds(path, tmp_path / LAST_GOOD_NAME).current()["application"] == {
        "error_rate": 5.0,
        "response_time": 5000,
        "queue_length": 250,
    }
    path.write_text(path.read_text().replace("application:", "application"))  # YAML broken
    fresh = LastGoodThresholds(path, tmp_path / LAST_GOOD_NAME)
    assert fresh.current()["application"]["queue_length"] == 250


def test_without_any_good_read_the_specifications_defaults_apply(tmp_path):
    path = tmp_path / "thresholds.yml"
    path.write_text("system: [\n")
    assert LastGoodThresholds(path, tmp_path / LAST_GOOD_NAME).current() == DEFAULTS
    # A damaged copy is no better than none.
    (tmp_path / LAST_GOOD_NAME).write_text(json.dumps({"system": {"cpu_percent": "x"}}))
    assert LastGoodThresholds(path, tmp_path / LAST_GOOD_NAME).current() == DEFAULTS
    path.unlink()
    assert LastGoodThresholds(path, tmp_path / LAST_GOOD_NAME).current() == DEFAULTS


@pytest.mark.slow
def test_a_web_worker_started_after_a_typo_serves_health(tmp_path):
    """The typo used to raise in every new worker's first database connection: health 503."""
    config_dir = tmp_path / "prometheus"
    config_dir.mkdir()
    shutil.copy(SHIPPED, config_dir / "thresholds.yml")
    _edit(config_dir / "thresholds.yml", "slow_query_threshold: 1000", "slow_query_threshold: 1OOO")
    with Gunicorn(tmp_path, workers=1, MONITORING_CONFIG_DIR=str(config_dir)) as app:
        assert httpx.get(f"{app.base_url}/api/health/", timeout=30).status_code == 200
        detailed = httpx.get(
            f"{app.base_url}/api/health/detailed/",
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=30,
        )
    assert detailed.json()["components"]["database"]["status"] == "ok", detailed.text
    assert "thresholds.yml refused" in (tmp_path / "gunicorn.log").read_text()
