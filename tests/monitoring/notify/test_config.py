"""Loading alertmanager.yml: every supported field, and every problem as `file:line: problem`."""

import subprocess
from pathlib import Path

import pytest

from monitoring.configfile import ConfigError
from monitoring.notify.config import config_load
from monitoring.notify.timeintervals import TimeInterval
from tests.services import require_alertmanager

HERE = Path(__file__).parent
TANGLED = HERE / "tangled.yml"
SHIPPED = HERE.parents[2] / "deploy" / "alertmanager" / "alertmanager.yml"


def load_text(tmp_path: Path, text: str, env: dict[str, str] | None = None):
    path = tmp_path / "alertmanager.yml"
    path.write_text(text)
    return config_load(path, env=env or {})


def errors_of(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_text(tmp_path, text)
    prefix = str(tmp_path / "alertmanager.yml") + ":"
    assert all(e.startswith(prefix) for e in info.value.errors)
    return [e[len(prefix) :] for e in info.value.errors]


def test_every_field_of_the_tangled_file() -> None:
    c = config_load(TANGLED, env={})
    g = c.global_
    assert g.resolve_timeout_ms == 120_000
    assert (g.smtp_smarthost, g.smtp_from, g.smtp_hello) == (
        "127.0.0.1:9",
        "am@example.com",
        "example.com",
    )
    assert (g.smtp_auth_username, g.smtp_auth_password, g.smtp_auth_identity) == (
        "am",
        "secret",
        "am@example.com",
    )
    assert g.smtp_require_tls and g.slack_api_url is None
    assert g.slack_api_url_file == str(HERE / "secrets" / "slack_url")  # beside the file
    assert g.http_config.authorization_credentials == "token"
    assert c.templates == (HERE / "templates" / "extra.tmpl",)

    [email] = c.receivers["fallback"].email_configs
    assert email.to == "ops@example.com" and email.from_ == "am@example.com"  # from global
    assert email.smarthost == "127.0.0.1:9" and email.auth_password == "secret"
    assert email.headers == {"Subject": "Alert {{ .GroupLabels }}"}
    assert (email.text, email.send_resolved) == ("plain", True)
    assert email.html is None  # Alertmanager's default template alone: our own HTML part

    [slack] = c.receivers["pager"].slack_configs
    assert slack.api_url == "http://127.0.0.1:9/slack"
    assert (slack.channel, slack.username, slack.color, slack.icon_emoji) == (
        "#pager",
        "am",
        "danger",
        ":fire:",
    )
    assert (slack.title_link, slack.pretext, slack.text, slack.footer, slack.fallback) == (
        "https://dashboard.example.com",
        "pre",
        "body",
        "foot",
        "fb",
    )
    [slack_default] = c.receivers["team-warnings"].slack_configs
    assert slack_default.api_url_file == g.slack_api_url_file and not slack_default.send_resolved

    [hook] = c.receivers["staging-pager"].webhook_configs
    assert (hook.url, hook.max_alerts, hook.send_resolved, hook.channel) == (
        "http://127.0.0.1:9/pager",
        10,
        True,
        None,
    )
    assert hook.http_config.authorization_credentials == "token"  # the global http_config
    [sms] = c.receivers["security-oncall"].webhook_configs
    assert sms.channel == "sms" and sms.http_config.basic_auth_password == "pw"
    assert c.receivers["security-log"].webhook_configs[0].channel == "dashboard"

    assert c.route.group_by is None and c.route.group_by_all
    staging = c.route.routes[0]
    assert str(staging.matchers) == '{env="staging"}' and staging.continue_
    assert str(staging.routes[0].matchers) == '{severity=~"critical|warning"}'
    assert str(staging.routes[1].matchers) == '{service!="",team=~"dev.*"}'
    assert c.route.routes[1].routes[0].mute_time_intervals == ("nights",)
    assert c.route.routes[1].routes[1].active_time_intervals == ("office-hours",)

    assert c.time_intervals["office-hours"] == (
        TimeInterval(times=((540, 1050),), weekdays=((1, 5),), location="Asia/Tehran"),
    )
    assert c.time_intervals["nights"][1].days_of_month == ((-7, -1), (1, 1))
    assert [str(r.source) for r in c.inhibit_rules] == [
        '{severity="critical"}',
        '{alertname="TargetDown"}',
        '{alertname=~"Maintenance.*"}',
    ]
    assert c.inhibit_rules[0].equal == ("alertname", "instance")


def test_environment_fills_in_the_endpoints(tmp_path: Path) -> None:
    env = {
        "EMAIL_HOST": "smtp.internal",
        "EMAIL_PORT": "587",
        "SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T/B/C",
        "WATCHDOG_WEBHOOK_URL": "https://hc-ping.example.com/uuid",
        "APP_URL": "https://shop.example.com/",
        "MONITORING_TOKEN": "tok",
    }
    c = config_load(SHIPPED, env=env)
    assert c.global_.smtp_smarthost == "smtp.internal:587"
    assert {e.smarthost for r in c.receivers.values() for e in r.email_configs} == {
        "smtp.internal:587"
    }
    assert {s.api_url for r in c.receivers.values() for s in r.slack_configs} == {
        env["SLACK_WEBHOOK_URL"]
    }
    assert c.receivers["deadmans-switch"].webhook_configs[0].url == env["WATCHDOG_WEBHOOK_URL"]
    [sms] = c.receivers["oncall"].webhook_configs
    assert sms.url == "https://shop.example.com/api/monitoring/alertmanager/sms"
    assert sms.channel == "sms" and sms.http_config.authorization_credentials == "tok"
    # Without the environment, the shipped defaults.
    bare = config_load(SHIPPED, env={})
    assert bare.global_.smtp_smarthost == "127.0.0.1:25"
    assert bare.receivers["dashboard"].webhook_configs[0].channel == "dashboard"
    # A file with no global section gets one.
    c = load_text(tmp_path, "route: {receiver: r}\nreceivers: [{name: r}]\n", env)
    assert c.global_.smtp_smarthost == "smtp.internal:587"


BAD = """\
global:
  smtp_smarthost: nohost
  pagerduty_url: https://x
  slack_api_url: ftp://x
route:
  receiver: nobody
  group_by: [a, a, '...']
  group_interval: 0s
  matchers: ['a=~"("']
  routes:
    - receiver: r
      mute_time_intervals: [never]
      bogus: 1
receivers:
  - name: r
    pagerduty_configs: [{routing_key: x}]
    email_configs:
      - to: a@b
        tls_config: {}
    slack_configs:
      - actions: []
        api_url: https://x
    webhook_configs:
      - max_alerts: -1
  - name: r
inhibit_rules:
  - source_matchers: ['1=2']
    equal: ['bad-name']
time_intervals:
  - name: t
    time_intervals:
      - weekdays: [funday]
        location: Mars/Base
        times: [{start_time: '10:00'}]
"""


def test_every_problem_at_once_with_its_line(tmp_path: Path) -> None:
    assert errors_of(tmp_path, BAD) == [
        "2: global.smtp_smarthost: address 'nohost': port cannot be empty",
        "3: global: field 'pagerduty_url' is not supported by the notifier",
        "4: global.slack_api_url: 'ftp://x' is not an http(s) URL with a host",
        "6: undefined receiver 'nobody' used in route",
        "7: route: duplicated label 'a' in group_by",
        "7: route: cannot have wildcard group_by (`...`) and other labels at the same time",
        "8: route.group_interval cannot be zero",
        "9: route.matchers: error parsing regexp '(': missing ), unterminated subpattern at"
        " position 0",
        "11: undefined time interval 'never' used in route",
        "13: route.routes[0]: unknown key 'bogus'",
        "16: receivers[0]: field 'pagerduty_configs' is not supported by the notifier",
        "18: receiver 'r' email_configs[0]: no global SMTP smarthost set",
        "18: receiver 'r' email_configs[0]: no global SMTP from set",
        "19: receiver 'r' email_configs[0]: field 'tls_config' is not supported by the notifier",
        "21: receiver 'r' slack_configs[0]: field 'actions' is not supported by the notifier",
        "24: receiver 'r' webhook_configs[0]: missing URL in webhook config",
        "24: receiver 'r' webhook_configs[0].max_alerts: expected a whole number ≥ 0",
        "25: notification config name 'r' is not unique",
        "27: inhibit_rules[0].source_matchers: bad matcher format: 1=2",
        "28: inhibit_rules[0].equal: invalid label name 'bad-name'",
        "32: time interval 't'.weekdays: funday is not a valid weekday",
        "33: time interval 't'.location: unknown time zone Mars/Base",
        "34: time interval 't'.times: both start and end times must be provided",
    ]


REFUSED = [
    (
        "receivers: [{name: r}]\n",
        ["1: no routes provided (a `route:` with a default receiver)"],
    ),
    ("route: {group_wait: 1m}\n", ["1: route: root route must specify a default receiver"]),
    (
        "route: {receiver: r, matchers: [a=b]}\nreceivers: [{name: r}]\n",
        ["1: route: root route must not have any matchers"],
    ),
    (
        "route: {receiver: r, match: {a: b}}\nreceivers: [{name: r}]\n",
        ["1: route: root route must not have any matchers"],
    ),
    (
        "route: {receiver: r, mute_time_intervals: [t], active_time_intervals: [t]}\n"
        "receivers: [{name: r}]\ntime_intervals: [{name: t, time_intervals: []}]\n",
        [
            "1: route: root route must not have any mute time intervals",
            "1: route: root route must not have any active time intervals",
        ],
    ),
    (
        "route: {receiver: r, repeat_interval: 1x}\nreceivers: [{name: r}]\n",
        ["1: route.repeat_interval: '1x' is not a duration (like 0s, 30s, 5m, 4h)"],
    ),
    (
        "route: {receiver: r}\nreceivers: [{name: r, slack_configs: [{channel: x}]}]\n",
        [
            "2: receiver 'r' slack_configs[0]: no global Slack API URL set either inline or in a file"
        ],
    ),
    (
        "route: {receiver: r}\nreceivers: [{name: r, webhook_configs: [{url: x}]}]\n",
        ["2: receiver 'r' webhook_configs[0].url: 'x' is not an http(s) URL with a host"],
    ),
    (
        "route: {receiver: r}\nreceivers: [{name: r}]\nfoo: 1\n",
        ["3: top level: unknown key 'foo'"],
    ),
    ("route: [\n", ["2: invalid YAML: expected the node content, but found '<stream end>'"]),
    (
        "route:\n  receiver: r\n  routes:\n    - match_re: {'bad-name': x, ok: '('}\n"
        "receivers: [{name: r}]\n",
        [
            "4: route.routes[0].match_re: invalid label name 'bad-name'",
            "4: route.routes[0].match_re.ok: error parsing regexp '(': missing ), "
            "unterminated subpattern at position 0",
        ],
    ),
    (
        "route: {receiver: r}\nreceivers: [{name: r}]\n"
        "time_intervals: [{name: t, time_intervals: []}, {name: t, time_intervals: []}]\n",
        ["3: time_intervals[1]: time interval 't' is not unique"],
    ),
]


@pytest.mark.parametrize("text, expected", REFUSED)
def test_refused(tmp_path: Path, text: str, expected: list[str]) -> None:
    assert errors_of(tmp_path, text) == expected


@pytest.mark.parametrize("text", [BAD] + [text for text, _ in REFUSED])
def test_alertmanager_refuses_them_too(tmp_path: Path, text: str) -> None:
    require_alertmanager()
    path = tmp_path / "alertmanager.yml"
    path.write_text(text)
    done = subprocess.run(["amtool", "check-config", str(path)], capture_output=True, timeout=120)
    assert done.returncode == 1, done.stdout


def test_old_match_forms_and_group_by_inheritance_fields(tmp_path: Path) -> None:
    c = load_text(
        tmp_path,
        """
route:
  receiver: r
  group_by: [alertname]
  routes:
    - match: {team: db}
      match_re: {severity: 'crit.*'}
      matchers: ['{a="1",b!~"2"}', c=3]
      group_by: ['...']
      group_wait: 0s
      continue: true
receivers: [{name: r}]
""",
    )
    child = c.route.routes[0]
    assert str(child.matchers) == '{a="1",b!~"2",c="3",severity=~"crit.*",team="db"}'
    assert child.group_by is None and child.group_by_all and child.group_wait_ms == 0
    assert c.route.group_by == ("alertname",) and c.global_.resolve_timeout_ms == 300_000


def test_a_bad_environment_value_names_the_variable_and_the_line_it_replaces() -> None:
    env = {"SLACK_WEBHOOK_URL": "notaurl", "WATCHDOG_WEBHOOK_URL": "x", "APP_URL": "ftp:/"}
    with pytest.raises(ConfigError) as info:
        config_load(SHIPPED, env=env)
    lines = SHIPPED.read_text().splitlines()
    problems = {}
    for error in info.value.errors:
        line, problem = error[len(str(SHIPPED)) + 1 :].split(": ", 1)
        problems[problem] = lines[int(line) - 1]
    assert len(problems) == 4, info.value.errors  # once for Slack, not once per receiver
    for problem, line in problems.items():
        variable = problem.rsplit("$", 1)[1].rstrip(")")
        assert variable in line, (problem, line)  # the shipped line names its variable
