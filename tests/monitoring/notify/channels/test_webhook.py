import json
from dataclasses import replace

import pytest

from monitoring.notify.channels import WebhookChannel
from monitoring.notify.channels.webhook import notification_from_webhook, webhook_body
from tests.monitoring.notify.channels.sample import notification, payment_alert, resolved


def test_posts_alertmanagers_webhook_v4_json_with_the_idempotency_key(receiver):
    n = notification(payment_alert("web-1"), resolved(payment_alert("web-2")))
    channel = WebhookChannel(f"{receiver.url}/hook", headers={"Authorization": "Bearer t"})
    try:
        assert channel.send(n).delivered
    finally:
        channel.close()
    (request,) = receiver.requests
    assert (request.method, request.path) == ("POST", "/hook")
    assert request.headers["content-type"] == "application/json"
    assert request.headers["authorization"] == "Bearer t"
    assert request.headers["idempotency-key"] == n.idempotency_key
    annotations = {
        "summary": "High payment failure rate",
        "description": "More than 10% of payments failed in the last 5 minutes",
        "runbook_url": "docs/runbooks/HighPaymentFailureRate.md",
    }
    labels = {
        "alertname": "HighPaymentFailureRate",
        "severity": "critical",
        "team": "product",
        "job": "django",
    }
    assert json.loads(request.body) == {
        "receiver": "oncall",
        "status": "firing",
        "alerts": [
            {
                "status": "firing",
                "labels": {**labels, "instance": "web-1"},
                "annotations": annotations,
                "startsAt": "2026-12-04T22:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://monitor.example:9091/graph?g0.expr=payment_failure_rate",
                "fingerprint": n.alerts[0].fingerprint,
            },
            {
                "status": "resolved",
                "labels": {**labels, "instance": "web-2"},
                "annotations": annotations,
                "startsAt": "2026-12-04T22:00:00Z",
                "endsAt": "2026-12-04T22:10:00Z",
                "generatorURL": "http://monitor.example:9091/graph?g0.expr=payment_failure_rate",
                "fingerprint": n.alerts[1].fingerprint,
            },
        ],
        "groupLabels": {"alertname": "HighPaymentFailureRate"},
        "commonLabels": labels,
        "commonAnnotations": annotations,
        "externalURL": "http://alertmanager.example:9093",
        "version": "4",
        "groupKey": '{}/{severity="critical"}:{alertname="HighPaymentFailureRate"}',
        "truncatedAlerts": 0,
        "idempotencyKey": n.idempotency_key,
    }
    assert len(n.alerts[0].fingerprint) == 16


def test_the_same_notification_sent_twice_carries_the_same_key(receiver):
    channel = WebhookChannel(receiver.url)
    try:
        channel.send(notification())
        channel.send(notification())
    finally:
        channel.close()
    keys = [json.loads(r.body)["idempotencyKey"] for r in receiver.requests]
    assert len(keys) == 2 and keys[0] == keys[1]


def test_a_posted_document_reads_back_as_the_same_notification():
    sent = notification(payment_alert("web-1"), resolved(payment_alert("web-2")))
    document = json.loads(json.dumps(webhook_body(sent)))
    parsed = notification_from_webhook(document)
    assert webhook_body(parsed) == document  # the same key: receiver, group and states agree
    assert parsed.alerts == tuple(replace(a, value=None) for a in sent.alerts)
    for broken, problem in [
        ({**document, "version": "3"}, "version '3'"),
        ({k: v for k, v in document.items() if k != "groupKey"}, "missing field 'groupKey'"),
        ({**document, "alerts": [{**document["alerts"][0], "status": "x"}]}, "status 'x'"),
        ({**document, "alerts": [{**document["alerts"][0], "startsAt": "now"}]}, "RFC 3339"),
        ({**document, "commonLabels": 1, "groupLabels": {"a": 1}}, "groupLabels must map"),
    ]:
        with pytest.raises(ValueError, match=problem):
            notification_from_webhook(broken)
