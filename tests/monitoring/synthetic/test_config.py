"""The checks file: the spec's shape, every problem refused with its file and line."""

import pytest

from monitoring.configfile import ConfigError
from monitoring.synthetic import checks_load
from monitoring.synthetic.config import json_path_parse

SPEC = """\
health_checks:
  - name: homepage_load
    url: https://pasargadprints.com
    expected_status: 200
    timeout: 5000
    interval: 60
  - name: api_health
    url: /api/health/
    expected_status: 200
    timeout: 3000
    interval: 30
    method: post
    body: '{"ping": 1}'
    headers: {Content-Type: application/json}
    json_path: $.checks[0].status
    json_value: ok
    failures_before_down: 2
    successes_before_up: 1
    retry_interval: 500
"""


def test_the_specifications_checks_load(tmp_path):
    home, api = checks_load(tmp_path / "c.yml", base_url="http://127.0.0.1:8000", text=SPEC)
    assert (home.name, home.url, home.expected_status) == (
        "homepage_load",
        "https://pasargadprints.com",
        200,
    )
    assert (home.timeout_ms, home.interval_s, home.failures_before_down) == (5000, 60.0, 3)
    assert api.url == "http://127.0.0.1:8000/api/health/" and api.method == "POST"
    assert api.json_path == ("checks", 0, "status") and api.json_value == "ok"
    assert api.headers == (("Content-Type", "application/json"),)
    assert (api.failures_before_down, api.successes_before_up, api.retry_interval_ms) == (2, 1, 500)


def test_the_shipped_file_loads_with_the_specs_intervals():
    from pathlib import Path

    shipped = Path(__file__).resolve().parents[3] / "deploy" / "synthetic" / "checks.yml"
    checks = {c.name: c for c in checks_load(shipped, base_url="http://127.0.0.1:8000")}
    assert {n: (c.url, c.timeout_ms, c.interval_s) for n, c in checks.items()} == {
        "homepage_load": ("http://127.0.0.1:8000/", 5000, 60.0),
        "api_health": ("http://127.0.0.1:8000/api/health/", 3000, 30.0),
        "user_login": ("http://127.0.0.1:8000/login/", 10000, 300.0),
    }


BAD = """\
health_checks:
  - name: ok_one
    url: http://x/
    expected_status: 200
    timeout: 1000
    interval: 5
  - name: ok_one
    url: http://x/
    expected_status: 200
    timeout: 1000
    interval: 5
  - name: bad-name
    url: ftp://x/
    expected_status: 900
    timeout: -1
    interval: 5
    colour: blue
  - name: no_interval
    url: http://x/
    expected_status: 200
    timeout: 1000
  - name: bad_path
    url: http://x/
    expected_status: 200
    timeout: 1000
    interval: 5
    json_path: "items[?(@.a)]"
    method: FETCH
    insecure_skip_verify: maybe
"""


def test_every_problem_is_refused_with_its_line(tmp_path):
    with pytest.raises(ConfigError) as refused:
        checks_load(tmp_path / "c.yml", text=BAD)
    errors = refused.value.errors
    path = str(tmp_path / "c.yml")
    expected = [
        (7, "duplicate check name 'ok_one'"),
        (12, "'bad-name' is not a valid name"),
        (13, "expected an http(s):// URL or a path, got 'ftp://x/'"),
        (14, "expected_status: expected a whole number from 100 to 599"),
        (15, "timeout (ms): expected a number above 0"),
        (17, "unknown key 'colour'"),
        (18, "missing interval"),
        (27, "json_path: 'items[?(@.a)]' is not like $.status"),
        (28, "method: expected one of"),
        (29, "expected true or false"),
    ]
    for line, problem in expected:
        assert any(e.startswith(f"{path}:{line}: ") and problem in e for e in errors), (
            line,
            problem,
            errors,
        )


def test_a_path_needs_a_base_url_and_yaml_errors_have_lines(tmp_path):
    text = "health_checks:\n  - {name: a, url: /x, expected_status: 200, timeout: 1, interval: 1}\n"
    with pytest.raises(ConfigError, match=r"c.yml:2: .*a path needs a base_url"):
        checks_load(tmp_path / "c.yml", text=text)
    with pytest.raises(ConfigError, match=r"c.yml:3: invalid YAML"):
        checks_load(tmp_path / "c.yml", text="health_checks:\n  - name: [\n")
    with pytest.raises(ConfigError, match=r"c.yml:0: cannot read file"):
        checks_load(tmp_path / "c.yml")


@pytest.mark.parametrize(
    ("text", "steps"),
    [("$.status", ("status",)), ("status", None), ("$.a[2].b", ("a", 2, "b")), ("$", ())],
)
def test_json_paths(text, steps):
    assert json_path_parse(text) == steps


def test_synthetic_config_setting():
    from monitoring.monitor.config import settings_from_env

    assert settings_from_env({}).synthetic_config is None  # off unless asked for
    assert settings_from_env({"SYNTHETIC_CONFIG": "off"}).synthetic_config is None
    chosen = settings_from_env({"SYNTHETIC_CONFIG": "deploy/synthetic/checks.yml"})
    assert chosen.synthetic_config.name == "checks.yml" and chosen.synthetic_config.is_absolute()
