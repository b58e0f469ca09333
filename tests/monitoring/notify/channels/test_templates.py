"""A receiver's templated fields in the Slack and email channels, and the channel's own message
when a template fails at send time (logged, never a lost alert)."""

import json
import logging
from email import message_from_bytes, policy
from pathlib import Path

from monitoring.notify.amtemplate import TemplateSet
from monitoring.notify.channels import EmailChannel, SlackChannel
from tests.monitoring.notify.channels.sample import notification

OWN_TITLE = "[FIRING:1] HighPaymentFailureRate (critical web-1)"


def _templates(tmp_path: Path) -> TemplateSet:
    path = tmp_path / "t.tmpl"
    path.write_text(
        '{{ define "title" }}{{ .Status | toUpper }}: {{ .CommonLabels.alertname }}{{ end }}'
        '{{ define "text" }}{{ range .Alerts }}• <{{ .GeneratorURL }}|{{ .Labels.instance }}> '
        "{{ .Annotations.summary }}\n{{ end }}{{ end }}"
    )
    templates, errors = TemplateSet.load([path])
    assert errors == []
    return templates


def _slack(receiver, templates: TemplateSet, fields: dict) -> dict:
    channel = SlackChannel(f"{receiver.url}/hook", templates=templates, fields=fields)
    try:
        assert channel.send(notification()).delivered
    finally:
        channel.close()
    return json.loads(receiver.requests[-1].body)


def test_slack_fields_replace_their_part_of_the_message(receiver, tmp_path):
    fields = {
        "title": '{{ template "title" . }}',
        "text": '{{ template "text" . }}',
        "pretext": "{{ .GroupLabels.alertname }} in {{ .CommonLabels.team }}",
        "footer": "receiver {{ .Receiver }}",
        "color": '{{ if eq .Status "firing" }}danger{{ else }}good{{ end }}',
        "channel": "#team-{{ .CommonLabels.team }}",
        "username": "pasargad",
        "icon_emoji": ":rotating_light:",
    }
    payload = _slack(receiver, _templates(tmp_path), fields)
    assert payload["text"] == "FIRING: HighPaymentFailureRate"
    assert (payload["channel"], payload["username"]) == ("#team-product", "pasargad")
    assert payload["icon_emoji"] == ":rotating_light:"
    (attachment,) = payload["attachments"]
    assert (attachment["color"], attachment["fallback"]) == ("danger", payload["text"])
    pretext, header, text, footer = attachment["blocks"]
    assert pretext["text"]["text"] == "HighPaymentFailureRate in product"
    assert header["type"] == "header" and header["text"]["text"] == payload["text"]
    link = "http://monitor.example:9091/graph?g0.expr=payment_failure_rate"
    # mrkdwn as the template wrote it: its <url|text> link is not escaped.
    assert text["text"]["text"] == f"• <{link}|web-1> High payment failure rate\n"
    assert footer["elements"][0]["text"] == "receiver oncall"


def test_slack_title_link_makes_the_title_a_link(receiver):
    fields = {"title": "{{ .Status }}", "title_link": "https://grafana.example/d/x"}
    payload = _slack(receiver, TemplateSet(), fields)
    title, *alert_blocks = payload["attachments"][0]["blocks"]
    assert title["text"]["text"] == "*<https://grafana.example/d/x|firing>*"
    assert alert_blocks  # no `text` field: the channel's own per-alert blocks


def test_a_template_failing_at_send_time_sends_the_own_message(receiver, caplog):
    fields = {"title": "{{ .CommonLabels.SortedPairs.Nope }}", "text": "fine"}
    with caplog.at_level(logging.ERROR, logger="monitoring.notify.amtemplate"):
        payload = _slack(receiver, TemplateSet(), fields)
    assert payload["text"] == OWN_TITLE
    assert payload["attachments"][0]["blocks"][0]["text"]["text"] == OWN_TITLE
    (record,) = [r for r in caplog.records if r.name == "monitoring.notify.amtemplate"]
    assert "sending the channel's own message" in record.getMessage()
    assert "can't evaluate field Nope" in record.getMessage()


def _mail(smtp, templates: TemplateSet, fields: dict, headers: dict | None = None):
    channel = EmailChannel(
        host="127.0.0.1",
        port=smtp.port,
        from_addr="alerts@pasargadprints.com",
        to=["oncall@pasargadprints.com"],
        templates=templates,
        fields=fields,
        headers=headers,
    )
    assert channel.send(notification()).delivered
    return message_from_bytes(smtp.messages[-1][2], policy=policy.default)


def test_email_subject_text_and_html_from_templates(smtp, tmp_path):
    fields = {
        "headers.Subject": '{{ template "title" . }} ({{ len .Alerts }})',
        "text": '{{ template "text" . }}',
        "html": "<p>{{ .CommonAnnotations.description }} &amp; {{ .CommonLabels.shard }}</p>",
    }
    message = _mail(smtp, _templates(tmp_path), fields, headers={"X-Team": "product"})
    assert message["Subject"] == "FIRING: HighPaymentFailureRate (1)"
    assert message["X-Team"] == "product"
    assert message["Message-ID"].startswith("<")  # our own headers stay
    assert message.get_body(("plain",)).get_content().startswith("• <http://monitor.example")
    html = message.get_body(("html",)).get_content()
    assert html.strip() == "<p>More than 10% of payments failed in the last 5 minutes &amp; </p>"


def test_email_keeps_its_own_parts_for_fields_left_out_and_on_failure(smtp, caplog):
    message = _mail(smtp, TemplateSet(), {"headers.Subject": "{{ .Status }}"})
    assert message["Subject"] == "firing"
    assert "HighPaymentFailureRate" in message.get_body(("html",)).get_content()  # our own
    with caplog.at_level(logging.ERROR, logger="monitoring.notify.amtemplate"):
        message = _mail(smtp, TemplateSet(), {"headers.Subject": '{{ template "gone" . }}'})
    assert message["Subject"] == OWN_TITLE
    (record,) = [r for r in caplog.records if r.name == "monitoring.notify.amtemplate"]
    assert 'template "gone" not defined' in record.getMessage()
