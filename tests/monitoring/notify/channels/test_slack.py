import json
from dataclasses import replace

from monitoring.notify.channels import SlackChannel
from monitoring.notify.channels.slack import MAX_ALERTS, slack_payload
from tests.monitoring.notify.channels.sample import (
    STARTS_MS,
    notification,
    payment_alert,
    resolved,
)


def _sent(receiver, n) -> dict:
    channel = SlackChannel(f"{receiver.url}/services/T0/B0/secret", channel="#alerts-critical")
    try:
        assert channel.send(n).delivered
    finally:
        channel.close()
    (request,) = receiver.requests
    assert (request.method, request.path) == ("POST", "/services/T0/B0/secret")
    assert request.headers["content-type"] == "application/json"
    assert request.headers["idempotency-key"] == n.idempotency_key
    return json.loads(request.body)


def test_block_kit_message_for_a_critical_alert(receiver):
    n = notification()
    payload = _sent(receiver, n)
    title = "[FIRING:1] HighPaymentFailureRate (critical web-1)"
    assert payload["text"] == title
    assert payload["channel"] == "#alerts-critical"
    (attachment,) = payload["attachments"]
    assert attachment["color"] == "#d00000"
    assert attachment["fallback"] == title
    header, section, context, actions = attachment["blocks"]
    assert header == {"type": "header", "text": {"type": "plain_text", "text": title}}
    assert section["type"] == "section"
    assert section["text"] == {
        "type": "mrkdwn",
        "text": "*HighPaymentFailureRate* (Firing): High payment failure rate\n"
        "More than 10% of payments failed in the last 5 minutes",
    }
    fields = [f["text"] for f in section["fields"]]
    assert fields[:3] == ["*Severity*\ncritical", "*Team*\nproduct", "*Value*\n23.46"]
    assert fields[3].startswith("*Since*\n2026-12-04 22:00:00 UTC (")
    assert fields[4] == "*Instance*\nweb-1"
    assert all(f["type"] == "mrkdwn" for f in section["fields"])
    assert context == {"type": "context", "elements": [{"type": "mrkdwn", "text": "`job=django`"}]}
    assert actions["type"] == "actions"
    buttons = {b["text"]["text"]: b["url"] for b in actions["elements"]}
    assert buttons == {
        "Runbook": "https://git.example/pasargad/blob/main/docs/runbooks/HighPaymentFailureRate.md",
        "Query": "http://monitor.example:9091/graph?g0.expr=payment_failure_rate",
        "Dashboard": "http://shop.example/monitoring/dashboard/",
        "Silence": n.silence_url,
    }
    assert all(b["type"] == "button" and b["action_id"] for b in actions["elements"])


def test_resolved_is_green_and_a_relative_runbook_is_named_in_text(receiver):
    n = replace(notification(resolved(payment_alert())), runbook_base_url="")
    payload = _sent(receiver, n)
    (attachment,) = payload["attachments"]
    assert attachment["color"] == "#2eb886"
    assert payload["text"] == "[RESOLVED] HighPaymentFailureRate (critical web-1)"
    _, section, context, actions = attachment["blocks"]
    assert "(Resolved)" in section["text"]["text"]
    assert any(
        f["text"].startswith("*Resolved*\n2026-12-04 22:10:00 UTC") for f in section["fields"]
    )
    assert "runbook: `docs/runbooks/HighPaymentFailureRate.md`" in context["elements"][0]["text"]
    assert "Runbook" not in {b["text"]["text"] for b in actions["elements"]}


def test_mrkdwn_is_escaped_and_many_alerts_stay_within_slacks_block_limit():
    evil = payment_alert(annotations={"summary": "<!channel> & <http://x|click>"})
    payload = slack_payload(notification(evil), now_ms=STARTS_MS)
    text = payload["attachments"][0]["blocks"][1]["text"]["text"]
    assert "&lt;!channel&gt; &amp; &lt;http://x|click&gt;" in text
    many = notification(*(payment_alert(f"web-{i}") for i in range(MAX_ALERTS + 5)))
    blocks = slack_payload(many, now_ms=STARTS_MS)["attachments"][0]["blocks"]
    assert len(blocks) <= 50
    assert blocks[-1]["elements"][0]["text"] == "…and 5 more alerts"
