"""Our notification templates render what real Alertmanager 0.25 renders.

One configuration with a `templates:` file and templated Slack `title`/`text` and email
`Subject` and `html`, pointing at a local Slack receiver and a local SMTP server. Real Alertmanager gets
the alerts through its API; our channels, built from the same file by our loader, send the same
alerts as a notification; the rendered title, text, subject and
HTML must be equal.
"""

from __future__ import annotations

import email
import email.policy
import json
from datetime import UTC, datetime, timedelta

import pytest

from monitoring.notify.config import config_load
from monitoring.notify.integrations import integrations_build, integrations_close
from monitoring.notify.notification import RESOLVED, Notification, NotifiedAlert
from tests.monitoring.notify.channels.servers import HttpReceiver, SmtpServer
from tests.monitoring.notify.real_alertmanager import call
from tests.wait import wait_for

pytestmark = pytest.mark.slow

TEMPLATES = r"""
{{ define "t.title" -}}
[{{ .Status | toUpper }}{{ if eq .Status "firing" }}:{{ .Alerts.Firing | len }}{{ end }}]
{{- " " }}{{ .GroupLabels.SortedPairs.Values | join " " }} for {{ .Receiver }}
{{- end }}

{{ define "t.alert" -}}
* {{ .Status }} {{ .Labels.instance }} ({{ .Fingerprint }}): {{ .Annotations.summary | title }}
  since {{ .StartsAt.Format "Mon, 02 Jan 2006 15:04:05 MST" }}{{ if eq .Status "resolved" }}, ended {{ .EndsAt }}{{ end }}
  {{- range .Labels.SortedPairs }} {{ .Name }}={{ .Value }}{{ end }}
  <{{ .GeneratorURL }}|query>
{{ end }}

{{ define "t.text" -}}
{{ range .Alerts }}{{ template "t.alert" . }}{{ end -}}
common: {{ range $k, $v := .CommonLabels.Remove .GroupLabels.Names }}{{ $k }}={{ $v }};{{ end }}
names: {{ join "," .CommonLabels.Names }} / {{ .CommonAnnotations.Values | join "|" }}
{{- $n := len .Alerts.Resolved }}{{ if gt $n 0 }}
resolved: {{ $n }}{{ else }}
none resolved{{ end }}
{{ with .CommonAnnotations.description }}{{ reReplaceAll "(\\d+)%" "$1 percent" . }}{{ end }}
{{ printf "%q %d" (toLower .Status) (len .Alerts) }} {{ match "^web" .CommonLabels.job }}
{{ block "t.footer" . }}footer {{ .Status }}{{ end }} {{ (stringSlice "a" "b") | join "+" }}
{{ (index .Alerts 0).StartsAt }} {{ .GroupLabels.SortedPairs }} {{ .CommonLabels }}
{{- end }}

{{ define "t.html" -}}
<h1>{{ template "t.title" . }}</h1>
<p>{{ .CommonAnnotations.description }} {{ "a<b & 'c'+\"d\"" }} {{ "<b>kept</b>" | safeHtml }}</p>
<ul>{{ range .Alerts.Firing }}<li>{{ .Labels.instance }}: {{ .Annotations.summary }}</li>{{ end }}</ul>
{{- end }}

{{ define "t.subject" }}{{ template "t.title" . }} {{ .CommonLabels.severity | toUpper }}{{ end }}
"""

# group_wait is the time Alertmanager gives the POST's three alerts to reach the group before
# its first notification (see _alerts): 1 s was once too short on a loaded machine (the
# resolved one missed).
CONFIG = """
global:
  smtp_smarthost: 127.0.0.1:{smtp_port}
  smtp_from: am@example.com
  smtp_require_tls: false
templates:
  - templates/*.tmpl
route:
  receiver: team.payments
  group_by: [alertname, team]
  group_wait: 5s
  group_interval: 5m
  repeat_interval: 4h
receivers:
  - name: team.payments
    slack_configs:
      - api_url: {slack_url}/slack
        send_resolved: true
        title: '{{{{ template "t.title" . }}}}'
        text: '{{{{ template "t.text" . }}}}'
    email_configs:
      - to: ops@example.com
        html: '{{{{ template "t.html" . }}}}'
        headers:
          Subject: '{{{{ template "t.subject" . }}}}'
"""


def _alerts(now: datetime) -> list[dict]:
    # Started within group_wait (5 s) of now: Alertmanager flushes a group at once when its
    # first alert started longer than group_wait ago, before the POST's other alerts are in
    # (with a start 7 minutes back, a loaded run's first notification had one alert of three).
    base = now.replace(microsecond=0)
    start = base - timedelta(seconds=2) + timedelta(milliseconds=123)
    ended = base - timedelta(seconds=1)  # whole seconds: RFC 3339 without a fraction
    common = {"alertname": "HighPaymentFailureRate", "team": "product", "severity": "critical"}
    annotations = {"summary": "high payment failure rate", "description": "23% of payments failed"}
    out = []
    for instance, job, ends in (
        ("web-2", "django", None),
        ("web-1", "django", None),
        ("web-0", "worker", ended),
    ):
        out.append(
            {
                "labels": {**common, "instance": instance, "job": job},
                "annotations": annotations,
                "startsAt": start.isoformat().replace("+00:00", "Z"),
                "endsAt": (ends or now + timedelta(hours=1)).isoformat().replace("+00:00", "Z"),
                "generatorURL": f"http://prometheus.example:9090/graph?g0.expr=up&i={instance}",
            }
        )
    return out


def _ms(text: str) -> int:
    return round(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


def _notification(alerts: list[dict], now: datetime, *, send_resolved: bool) -> Notification:
    notified = []
    for a in alerts:
        resolved = _ms(a["endsAt"]) <= now.timestamp() * 1000
        if resolved and not send_resolved:
            continue  # as Alertmanager's pipeline for an integration without send_resolved
        notified.append(
            NotifiedAlert(
                labels=a["labels"],
                annotations=a["annotations"],
                starts_at_ms=_ms(a["startsAt"]),
                ends_at_ms=_ms(a["endsAt"]) if resolved else None,
                status=RESOLVED if resolved else "firing",
                generator_url=a["generatorURL"],
            )
        )
    return Notification(
        receiver="team.payments",
        group_key="agreement",
        alerts=tuple(notified),
        group_labels={"alertname": "HighPaymentFailureRate", "team": "product"},
    )


def _slack_parts(body: bytes, ours: bool) -> tuple[str, str]:
    payload = json.loads(body)
    (attachment,) = payload["attachments"]
    if not ours:
        return attachment["title"], attachment["text"]
    blocks = {b.get("block_id"): b for b in attachment["blocks"]}
    return blocks["title"]["text"]["text"], blocks["text"]["text"]["text"]


def _mail(data: bytes) -> tuple[str, str]:
    """The subject and the HTML part."""
    message = email.message_from_bytes(data, policy=email.policy.default)
    html = message.get_body(preferencelist=("html",))
    return str(message["Subject"]), html.get_content() if html else ""


def test_templates_render_as_alertmanager_renders_them(alertmanager, tmp_path):
    slack, smtp = HttpReceiver(), SmtpServer()
    try:
        (tmp_path / "templates").mkdir()
        (tmp_path / "templates" / "payments.tmpl").write_text(TEMPLATES)
        path = tmp_path / "alertmanager.yml"
        path.write_text(CONFIG.format(smtp_port=smtp.port, slack_url=slack.url))
        now = datetime.now(UTC)
        alerts = _alerts(now)

        url = alertmanager(path)
        call(f"{url}/api/v2/alerts", alerts)
        wait_for(lambda: slack.requests and smtp.messages, timeout=30, what="Alertmanager sent")
        theirs_slack = _slack_parts(slack.requests[0].body, ours=False)
        theirs_mail = _mail(smtp.messages[0][2])

        integrations = integrations_build(config_load(path, env={}), state=None, env={})
        try:
            by_kind = {i.kind: i.channel for i in integrations["team.payments"]}
            assert by_kind["slack"].send(_notification(alerts, now, send_resolved=True)).delivered
            assert by_kind["email"].send(_notification(alerts, now, send_resolved=False)).delivered
        finally:
            integrations_close(integrations)
        ours_slack = _slack_parts(slack.requests[1].body, ours=True)
        ours_mail = _mail(smtp.messages[1][2])

        assert theirs_slack[0].startswith("[FIRING:2] HighPaymentFailureRate product for")
        assert "resolved web-0" in theirs_slack[1]  # the test covers what it means to
        assert ours_slack == theirs_slack
        assert "a&lt;b &amp; &#39;c&#39;&#43;&#34;d&#34;" in theirs_mail[1]
        assert ours_mail == theirs_mail
    finally:
        slack.close()
        smtp.close()
