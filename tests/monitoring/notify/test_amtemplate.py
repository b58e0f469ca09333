"""Alertmanager notification templates: the data, the functions, named templates, and what the
loader refuses (test_amtemplate_alertmanager.py checks the rendering against real Alertmanager)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from monitoring.configfile import ConfigError
from monitoring.notify.amtemplate import TemplateSet, template_data
from monitoring.notify.config import config_load
from monitoring.notify.gotime import GoTime, go_time_format
from monitoring.rules.template import TemplateError, expand_alert_template, parse_template
from tests.monitoring.notify.channels.sample import STARTS_MS, notification, payment_alert, resolved

N = notification(
    payment_alert("web-2"), resolved(payment_alert("web-1")), receiver="team.payments (eu)"
)


def render(text: str, files: dict[str, str] | None = None, tmp_path: Path | None = None, **kw):
    templates = TemplateSet()
    if files:
        for name, body in files.items():
            (tmp_path / name).write_text(body)
        templates, errors = TemplateSet.load(sorted(tmp_path / name for name in files))
        assert errors == []
    return templates.render(text, template_data(N), **kw)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("{{ .Status }} {{ len .Alerts }}", "firing 2"),
        ("{{ .Receiver }}", r"team\.payments \(eu\)"),  # regexp.QuoteMeta, as Alertmanager
        ("{{ range .Alerts }}{{ .Labels.instance }} {{ end }}", "web-1 web-2 "),  # AM's order
        ("{{ range .Alerts.Firing }}{{ .Labels.instance }}{{ end }}", "web-2"),
        ("{{ len .Alerts.Resolved }}", "1"),
        ("{{ .CommonLabels.SortedPairs.Names }}", "[alertname job severity team]"),
        ("{{ (index .CommonLabels.SortedPairs 0).Value }}", "HighPaymentFailureRate"),
        ("{{ .GroupLabels.Values }}", "[HighPaymentFailureRate]"),
        ('{{ (.CommonLabels.Remove (stringSlice "job" "team")).Names }}', "[alertname severity]"),
        (
            "{{ .CommonLabels.Remove .GroupLabels.Names }}",
            "map[job:django severity:critical team:product]",
        ),
        (
            "{{ .CommonLabels.missing }}|{{ .CommonAnnotations.summary }}",
            "|High payment failure rate",
        ),
        ('{{ join ", " .CommonLabels.Names | toUpper }}', "ALERTNAME, JOB, SEVERITY, TEAM"),
        ('{{ title "hELLO wORLD, it\'s" }} {{ toLower "ABC" }}', "Hello World, It's abc"),
        ('{{ reReplaceAll "web-(\\\\d)" "host$1" "web-7" }}', "host7"),
        ('{{ match "^High" .CommonLabels.alertname }}', "true"),
        ("{{ (index .Alerts 1).StartsAt }}", "2026-12-04 22:00:00 +0000 UTC"),
        ('{{ (index .Alerts 0).EndsAt.Format "15:04 Jan 2" }}', "22:10 Dec 4"),
        ("{{ (index .Alerts 1).EndsAt.IsZero }}", "true"),  # firing: Go's zero time
        ("{{ (index .Alerts 1).Fingerprint }}", payment_alert("web-2").fingerprint),
        (
            '{{ html "<a href=\'x\'>" }} {{ urlquery "a b&c" }}',
            "&lt;a href=&#39;x&#39;&gt; a+b%26c",
        ),
        ('{{ slice "abcdef" 1 3 }} {{ printf "%05.1f" 3.14159 }}', "bc 003.1"),
    ],
)
def test_data_and_functions(text, expected):
    assert render(text) == expected


def test_html_rendering_escapes_printed_values_except_safe_html():
    text = '<p title="x">{{ "a<b & c+d" }} {{ "<i>ok</i>" | safeHtml }} {{ "<i>" | safeHtml | printf "%s" }}</p>'
    expected = '<p title="x">a&lt;b &amp; c&#43;d <i>ok</i> &lt;i&gt;</p>'
    assert render(text, html=True) == expected
    assert render('{{ "a<b" }}') == "a<b"  # text rendering does not escape


def test_named_templates_across_files(tmp_path):
    files = {
        "a.tmpl": '{{ define "title" }}[{{ .Status }}] {{ template "names" .Alerts }}{{ end }}',
        "b.tmpl": '{{ define "names" }}{{ range . }}{{ .Labels.instance }},{{ end }}{{ end }}'
        "file b",
    }
    assert render('{{ template "title" . }}', files, tmp_path) == "[firing] web-1,web-2,"
    assert render('{{ template "b.tmpl" . }}', files, tmp_path) == "file b"  # as ParseGlob
    # A field's own define and block; `template` without a pipeline has nil dot.
    text = '{{ define "x" }}<{{ . }}>{{ end }}{{ template "x" }}{{ block "y" .Status }}{{ . }}{{ end }}'
    assert render(text) == "<<no value>>firing"


def test_execution_errors_are_template_errors():
    with pytest.raises(TemplateError, match="can't evaluate field Nope"):
        render("{{ .Nope }}")
    with pytest.raises(TemplateError, match='template "missing" not defined'):
        render('{{ template "missing" . }}')
    with pytest.raises(TemplateError, match="maximum template depth"):
        render('{{ define "r" }}{{ template "r" . }}{{ end }}{{ template "r" . }}')


def test_go_time_layouts():
    t = GoTime.from_ms(STARTS_MS + 45_678).when
    assert go_time_format(t, "2006-01-02T15:04:05.000Z07:00") == "2026-12-04T22:00:45.678Z"
    assert (
        go_time_format(t, "Mon Jan _2 3:04:05.999 PM MST 06") == "Fri Dec  4 10:00:45.678 PM UTC 26"
    )
    assert go_time_format(t, "Monday January 2 002 .9") == "Friday December 4 338 .6"


def test_rule_templates_keep_their_dialect():
    # Rule annotations keep Prometheus' functions and variables; define stays refused there.
    with pytest.raises(TemplateError, match="unsupported template action define"):
        parse_template('{{ define "x" }}{{ end }}', "t")
    assert expand_alert_template("{{ $labels.a | toUpper }}", labels={"a": "b"}, value=1) == "B"
    # ... and notification templates Alertmanager's: no `humanize` there.
    assert 'function "humanize" not defined' in TemplateSet().check("{{ 1 | humanize }}")


CONFIG = """\
global:
  smtp_smarthost: 127.0.0.1:25
  smtp_from: am@example.com
  slack_api_url: http://127.0.0.1:9/slack
templates:
  - templates/*.tmpl
route:
  receiver: r
receivers:
  - name: r
    slack_configs:
      - title: '{title}'
        text: '{{{{ template "slack.default.text" . }}}}'
    email_configs:
      - to: ops@example.com
        headers:
          Subject: '{subject}'
"""


def _load(tmp_path: Path, template: str, title: str = '{{ template "ok" . }}', subject: str = "x"):
    (tmp_path / "templates").mkdir(exist_ok=True)
    (tmp_path / "templates" / "a.tmpl").write_text(template)
    path = tmp_path / "alertmanager.yml"
    path.write_text(CONFIG.format(title=title, subject=subject))
    return config_load(path, env={}), path


def test_a_template_file_that_does_not_parse_is_refused_with_file_and_line(tmp_path):
    with pytest.raises(ConfigError) as refused:
        _load(tmp_path, '{{ define "ok" }}\nfine\n{{ .Status | nosuch }}\n{{ end }}')
    error, *_ = refused.value.errors  # then the title that calls the template it defines
    template = tmp_path / "templates" / "a.tmpl"
    assert error.startswith(f"{tmp_path / 'alertmanager.yml'}:6: templates: {template}:3: ")
    assert 'function "nosuch" not defined' in error


def test_template_fields_are_checked_at_load(tmp_path):
    ok = '{{ define "ok" }}{{ .Status }}{{ end }}'
    config, _ = _load(tmp_path, ok)
    [slack] = config.receivers["r"].slack_configs
    assert slack.title == '{{ template "ok" . }}'
    assert slack.text is None  # Alertmanager's default alone: the channel's own text
    assert config.template_set.render(slack.title, template_data(N)) == "firing"
    for title, problem in (
        ("{{ if }}", "title: template does not parse: missing value for command"),
        ('{{ template "typo" . }}', "template 'typo' is not defined in the `templates:` files"),
        ('x {{ template "__subject" . }}', "default template '__subject' is not shipped"),
    ):
        with pytest.raises(ConfigError) as refused:
            _load(tmp_path, ok, title=title)
        (error,) = refused.value.errors
        assert error.startswith(
            f"{tmp_path / 'alertmanager.yml'}:12: receiver 'r' slack_configs[0]"
        )
        assert problem in error
    with pytest.raises(ConfigError, match=r":17: .*headers.Subject: template does not parse"):
        _load(tmp_path, ok, subject="{{ .Status")


LATER_FUNCTIONS = [
    '{{ trimSpace " x " }}',
    '{{ .Status }}\n{{ date "15:04" (index .Alerts 0).StartsAt }}',
    '{{ tz "Asia/Tehran" (index .Alerts 0).StartsAt }}',
    "{{ since (index .Alerts 0).StartsAt }}",
    "{{ humanizeDuration 3725 }}",
    '{{ safeUrl "http://x" }}',
    '{{ urlUnescape "a%20b" }}',
]


@pytest.mark.parametrize("body", LATER_FUNCTIONS)
def test_functions_of_later_alertmanagers_are_refused_at_load_as_amtool_0_25_does(tmp_path, body):
    """Debian's Alertmanager 0.25 (amtool, our reference) does not know them: a file using one
    is refused like one calling an unknown function (test_amtemplate_amtool checks amtool)."""
    name = re.search(r"{{ (\w+) ", body.splitlines()[-1]).group(1)
    line = body.count("\n") + 2  # after the define's line
    with pytest.raises(ConfigError) as refused:
        _load(tmp_path, f'{{{{ define "ok" }}}}\n{body}\n{{{{ end }}}}')
    error, *_ = refused.value.errors
    template = tmp_path / "templates" / "a.tmpl"
    assert error.startswith(f"{tmp_path / 'alertmanager.yml'}:6: templates: {template}:{line}: ")
    assert f'function "{name}" not defined' in error
    assert f'function "{name}" not defined' in TemplateSet().check(body)
