"""prometheus.yml validation: good files load, every bad one is refused with file:line: problem."""

from pathlib import Path

import pytest

from monitoring.configfile import ConfigError
from monitoring.monitor.config import config_load, settings_from_env

REPO = Path(__file__).resolve().parents[3]


def _load(tmp_path: Path, text: str):
    path = tmp_path / "prometheus.yml"
    path.write_text(text)
    return config_load(path)


def _errors(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as exc:
        _load(tmp_path, text)
    return exc.value.errors


def test_the_shipped_configuration_is_the_specifications_shape():
    config = config_load(REPO / "deploy/prometheus/prometheus.yml")
    assert config.scrape_interval_ms == 15_000
    assert config.evaluation_interval_ms == 15_000
    job, itself = config.scrape_configs
    assert job.job_name == "pasargad-prints"
    assert itself.job_name == "prometheus"  # the monitor's own metrics (self_metrics)
    assert job.interval_ms == 30_000
    assert job.url(job.targets[0]) == "http://localhost:8000/api/monitoring/prometheus/"
    names = {p.name for p in config.rule_files}
    assert {"alert_rules.yml", "threshold_rules.yml"} <= names


def test_full_configuration_with_bearer_credentials_file_and_globs(tmp_path):
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "b.yml").write_text("groups: []\n")
    (tmp_path / "rules" / "a.yml").write_text("groups: []\n")
    (tmp_path / "token").write_text("s3cret\n")
    config = _load(
        tmp_path,
        """
global:
  scrape_interval: 1m30s
  scrape_timeout: 5s
  evaluation_interval: 500ms
  external_labels: {region: eu}
rule_files: ["rules/*.yml"]
scrape_configs:
  - job_name: app
    scheme: https
    static_configs:
      - targets: ["127.0.0.1:8000", "[::1]:9000"]
        labels: {env: prod}
    authorization:
      type: Bearer
      credentials_file: token
  - job_name: legacy
    bearer_token: abc
    scrape_interval: 10s
    static_configs: [{targets: ["host-1.example:80"]}]
""",
    )
    assert config.scrape_interval_ms == 90_000
    assert config.evaluation_interval_ms == 500
    assert config.external_labels == {"region": "eu"}
    assert [p.name for p in config.rule_files] == ["a.yml", "b.yml"]
    app, legacy = config.scrape_configs
    assert app.bearer_token == "s3cret"
    assert app.timeout_ms == 5_000
    assert app.targets[1].address == "[::1]:9000"
    assert app.targets[0].labels == {"env": "prod"}
    assert app.url(app.targets[0]) == "https://127.0.0.1:8000/metrics"
    assert legacy.bearer_token == "abc"
    assert legacy.interval_ms == 10_000


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        ("global:\n  scrape_intervall: 15s\n", 2, "unknown key 'scrape_intervall'"),
        ("global:\n  scrape_interval: fast\n", 2, "'fast' is not a positive duration"),
        ("global:\n  evaluation_interval: 0s\n", 2, "not a positive duration"),
        ("scrape_configs:\n  - static_configs: []\n", 2, "missing job_name"),
        (
            "scrape_configs:\n  - job_name: a\n    static_configs:\n      - targets: ['no-port']\n",
            4,
            "target 'no-port' is not host:port",
        ),
        (
            "scrape_configs:\n  - job_name: a\n  - job_name: a\n",
            3,
            "duplicate job_name 'a'",
        ),
        (
            "scrape_configs:\n  - job_name: a\n    scheme: ftp\n",
            3,
            "scheme must be http or https",
        ),
        (
            "scrape_configs:\n  - job_name: a\n    scrape_interval: 5s\n    scrape_timeout: 10s\n",
            4,
            "scrape_timeout (10000 ms) is greater than scrape_interval (5000 ms)",
        ),
        (
            "scrape_configs:\n  - job_name: a\n    authorization:\n      type: Basic\n",
            4,
            "'Basic' is not supported",
        ),
        (
            "scrape_configs:\n  - job_name: a\n    authorization:\n      credentials_file: nope\n",
            4,
            "cannot read",
        ),
        (
            "scrape_configs:\n  - job_name: a\n    static_configs:\n      - labels: {'bad-name': x}\n",
            4,
            "'bad-name' is not a valid label name",
        ),
        ("rule_files: alert_rules.yml\n", 1, "rule_files: expected a list"),
        ("global: [\n", 2, "invalid YAML"),
        ("remote_write: []\n", 1, "unknown key 'remote_write'"),
    ],
)
def test_bad_configuration_is_refused_with_file_line_and_problem(tmp_path, text, line, problem):
    errors = _errors(tmp_path, text)
    path = tmp_path / "prometheus.yml"
    assert any(e.startswith(f"{path}:{line}: ") and problem in e for e in errors), errors


def test_every_problem_is_reported_not_just_the_first(tmp_path):
    errors = _errors(
        tmp_path,
        "global:\n  scrape_interval: x\n  bogus: 1\nscrape_configs:\n  - job_name: j\n    scheme: gopher\n",
    )
    assert [e.split(": ", 1)[0].rsplit(":", 1)[1] for e in errors] == ["2", "3", "6"]


def test_missing_file_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="cannot read file"):
        config_load(tmp_path / "absent.yml")


def test_monitor_settings_default_to_loopback_and_six_hours():
    settings = settings_from_env({})
    assert (settings.listen_host, settings.listen_port) == ("127.0.0.1", 9091)
    assert settings.retention_ms == 6 * 3600_000
    assert settings.state_retention_ms == 30 * 86400_000
    assert settings.loopback and settings.api_token == ""


def test_monitor_settings_refuse_a_public_address_without_a_token():
    with pytest.raises(ConfigError, match="MONITOR_TOKEN"):
        settings_from_env({"MONITOR_LISTEN": "0.0.0.0:9091"})
    exposed = settings_from_env({"MONITOR_LISTEN": "0.0.0.0:9091", "MONITOR_TOKEN": "t"})
    assert not exposed.loopback and exposed.api_token == "t"
    with pytest.raises(ConfigError, match="MONITOR_RETENTION"):
        settings_from_env({"MONITOR_RETENTION": "forever"})


def test_the_state_retention_is_a_duration():
    assert settings_from_env({"MONITOR_STATE_RETENTION": "7d"}).state_retention_ms == 7 * 86400_000
    with pytest.raises(ConfigError) as exc:
        settings_from_env({"MONITOR_STATE_RETENTION": "forever"})
    assert exc.value.errors == ["MONITOR_STATE_RETENTION='forever': expected a duration like 30d"]


def test_a_partial_load_leaves_out_the_broken_job_and_reports_it(tmp_path):
    from monitoring.monitor.config import config_load_partial

    path = tmp_path / "prometheus.yml"
    path.write_text(
        "global: {scrape_interval: often}\n"
        "rule_files: [a.yml]\n"
        "scrape_configs:\n"
        "  - job_name: good\n"
        "    static_configs: [{targets: ['127.0.0.1:1']}]\n"
        "  - job_name: bad\n"
        "    metrics_path: metrics\n"
        "    static_configs: [{targets: ['127.0.0.1:2']}]\n"
    )
    config, errors = config_load_partial(path)
    assert [job.job_name for job in config.scrape_configs] == ["good"]
    assert config.scrape_interval_ms == 60_000  # the default in place of the malformed value
    assert [p.name for p in config.rule_files] == ["a.yml"]
    assert errors == [
        f"{path}:1: global.scrape_interval: 'often' is not a positive duration (like 15s, 1m, 2h)",
        f"{path}:7: scrape_configs[bad].metrics_path must start with '/'",
    ]
    path.write_text("global: [\n")
    config, errors = config_load_partial(path)
    assert config.scrape_configs == () and config.rule_files == ()
    assert errors and errors[0].startswith(f"{path}:")


def test_monitor_app_target_replaces_the_app_jobs_target_only(tmp_path):
    from monitoring.monitor.config import app_target_apply

    shipped = config_load(REPO / "deploy/prometheus/prometheus.yml")
    config, errors = app_target_apply(shipped, "127.0.0.1:8300")
    assert errors == []
    jobs = {job.job_name: job for job in config.scrape_configs}
    app = jobs.pop("pasargad-prints")
    assert app.url(app.targets[0]) == "http://127.0.0.1:8300/api/monitoring/prometheus/"
    # The monitor's own job (`prometheus`) keeps its target.
    assert [job.targets for job in jobs.values()] == [
        job.targets for job in shipped.scrape_configs if job.job_name != "pasargad-prints"
    ]
    assert app_target_apply(shipped, "") == (shipped, [])
    other = _load(
        tmp_path, "scrape_configs:\n  - job_name: x\n    static_configs: [{targets: ['a:1']}]\n"
    )
    config, errors = app_target_apply(other, "127.0.0.1:8300")
    assert config == other
    assert errors == [
        f"{tmp_path / 'prometheus.yml'}:0: MONITOR_APP_TARGET=127.0.0.1:8300: no scrape job has "
        "metrics_path '/api/monitoring/prometheus/', so no target was replaced"
    ]
    assert settings_from_env({"MONITOR_APP_TARGET": "127.0.0.1:8300"}).app_target == (
        "127.0.0.1:8300"
    )
    with pytest.raises(ConfigError, match="MONITOR_APP_TARGET='nowhere': expected host:port"):
        settings_from_env({"MONITOR_APP_TARGET": "nowhere"})
