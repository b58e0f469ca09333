"""The deploy files for logs: rule file and its unit tests, logrotate, Fluent Bit."""

import json
import logging
import shutil
import subprocess
import time
from datetime import datetime
from pathlib import Path

import pytest
import yaml

from monitoring.logging.config import ACCESS_LOG_FILE, APP_LOG_FILE
from monitoring.logging.formatters import JsonFormatter
from monitoring.logging.handlers import AppendFileHandler
from tests.services import require, require_prometheus

DEPLOY = Path(__file__).resolve().parents[3] / "deploy"
PROD_LOG_DIR = "/var/log/pasargad"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=60)


@pytest.mark.prometheus
def test_log_rules_pass_promtool_check_and_their_unit_tests():
    require_prometheus()
    check = run("promtool", "check", "rules", str(DEPLOY / "prometheus/log_rules.yml"))
    assert check.returncode == 0, check.stdout + check.stderr
    assert "4 rules found" in check.stdout
    test = run("promtool", "test", "rules", str(DEPLOY / "prometheus/tests/log_rules.test.yml"))
    assert test.returncode == 0, test.stdout + test.stderr


def test_log_rules_are_the_specification_rules_with_a_distinct_error_rate_name():
    groups = yaml.safe_load((DEPLOY / "prometheus/log_rules.yml").read_text())["groups"]
    spec = [group for group in groups if group["name"] == "error_monitoring"]
    rules = {rule["alert"]: rule for group in spec for rule in group["rules"]}
    assert {name: (r["expr"], r["labels"]["severity"]) for name, r in rules.items()} == {
        "HighLogErrorRate": ("increase(log_errors_total[5m]) > 50", "critical"),
        "PaymentFailures": ("increase(payment_errors_total[5m]) > 10", "warning"),
        "DatabaseErrors": ("increase(database_errors_total[5m]) > 5", "critical"),
    }
    # Besides them, our own: the log files refusing lines (monitoring/logging/sink_errors.py).
    [sink] = [group for group in groups if group["name"] == "log_sink"]
    assert [(r["alert"], r["expr"], r["labels"]["team"]) for r in sink["rules"]] == [
        ("LogWriteErrors", "increase(log_write_errors_total[5m]) > 0", "devops")
    ]
    other = yaml.safe_load((DEPLOY / "prometheus/alert_rules.yml").read_text())["groups"]
    assert not set(rules) & {rule.get("alert") for g in other for rule in g["rules"]}


@pytest.fixture
def logrotate_conf(tmp_path):
    require("logrotate (Debian's logrotate package)", shutil.which("logrotate") is not None)
    log_dir = tmp_path / "log"
    log_dir.mkdir()
    conf = tmp_path / "pasargad"
    conf.write_text((DEPLOY / "logrotate/pasargad").read_text().replace(PROD_LOG_DIR, str(log_dir)))
    return conf, log_dir


def test_logrotate_accepts_the_file(logrotate_conf, tmp_path):
    conf, _ = logrotate_conf
    result = run("logrotate", "-d", "-s", str(tmp_path / "state"), str(conf))
    assert result.returncode == 0, result.stderr
    assert "rotating pattern: " in result.stderr and "(90 rotations)" in result.stderr
    assert "(30 rotations)" in result.stderr
    assert "error" not in result.stderr.lower()


def test_writers_follow_logrotate_renames(logrotate_conf, tmp_path):
    """Two handlers (two workers) keep writing across a real logrotate run: the rotation is
    noticed (at the first check after it: test_handlers.py), and no line is lost on the way."""
    conf, log_dir = logrotate_conf
    workers = [AppendFileHandler(log_dir / APP_LOG_FILE) for _ in range(2)]
    logger = logging.getLogger("tests.logrotate")
    logger.propagate = False
    for handler in workers:
        logger.addHandler(handler)
    written = 0
    try:
        logger.warning("before rotation")
        result = run("logrotate", "-f", "-s", str(tmp_path / "state"), str(conf))
        rotated_at = time.monotonic()
        assert result.returncode == 0, result.stderr
        new_file = log_dir / APP_LOG_FILE
        # logrotate's `create` left an empty file: write until both workers write into it.
        while new_file.read_text().count("\n") < 2 and time.monotonic() - rotated_at < 60:
            logger.warning("line %d", written)
            written += 1
            time.sleep(0.02)
    finally:
        for handler in workers:
            logger.removeHandler(handler)
            handler.close()
        logger.propagate = True
    assert new_file.read_text().count("\n") >= 2, "the rotation was not noticed within 60 s"
    stamp = datetime.now().strftime("%Y%m%d")
    rotated = (log_dir / f"{APP_LOG_FILE}-{stamp}").read_text().splitlines()
    current = new_file.read_text().splitlines()
    assert rotated[:2] == ["before rotation"] * 2
    # Each line twice (once per worker), every one either still in the rotated file or new.
    expected = ["before rotation"] + [f"line {n}" for n in range(written)]
    assert sorted(rotated + current) == sorted(expected * 2)
    assert current[-2:] == [f"line {written - 1}"] * 2


def test_fluent_bit_tails_the_files_logrotate_rotates_and_parses_our_timestamps():
    config = yaml.safe_load((DEPLOY / "fluent-bit/fluent-bit.yaml").read_text())
    rotated = {
        line.split()[0]
        for line in (DEPLOY / "logrotate/pasargad").read_text().splitlines()
        if line.startswith("/")
    }
    inputs = config["pipeline"]["inputs"]
    assert (
        {i["path"] for i in inputs}
        == rotated
        == {
            f"{PROD_LOG_DIR}/{APP_LOG_FILE}",
            f"{PROD_LOG_DIR}/{ACCESS_LOG_FILE}",
        }
    )
    parsers = {p["name"]: p for p in config["parsers"]}
    assert {i["parser"] for i in inputs} <= set(parsers)
    outputs = config["pipeline"]["outputs"]
    assert {o["match"] for o in outputs} == {i["tag"] for i in inputs}

    # The parser's time key and format read the formatter's own timestamp (%L: milliseconds).
    parser = parsers["pasargad_json"]
    record = logging.makeLogRecord({"msg": "x", "created": 1704110400.25})
    line = json.loads(JsonFormatter().format(record))
    parsed = datetime.strptime(line[parser["time_key"]], parser["time_format"].replace("%L", "%f"))
    assert parsed == datetime(2024, 1, 1, 12, 0, 0, 250000)
