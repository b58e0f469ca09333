from dataclasses import replace
from urllib.parse import unquote

from monitoring.notify.notification import FIRING, RESOLVED, Delivery, NotifiedAlert
from tests.monitoring.notify.channels.sample import notification, payment_alert, resolved


def test_idempotency_key_is_stable_for_the_same_group_states_and_sequence():
    first = notification(payment_alert("web-1"), payment_alert("web-2"))
    again = notification(payment_alert("web-2"), payment_alert("web-1"))  # another order
    assert first.idempotency_key == again.idempotency_key
    assert len(first.idempotency_key) == 32 and int(first.idempotency_key, 16) >= 0


def test_idempotency_key_changes_with_state_sequence_receiver_and_episode():
    base = notification(payment_alert("web-1"), payment_alert("web-2"))
    others = [
        notification(resolved(payment_alert("web-1")), payment_alert("web-2")),
        notification(payment_alert("web-1")),
        replace(base, sequence=1),  # a repeat_interval re-send is a new notification
        replace(base, receiver="email-devops"),
        notification(payment_alert("web-1", starts_at_ms=1), payment_alert("web-2")),
    ]
    keys = {base.idempotency_key, *(n.idempotency_key for n in others)}
    assert len(keys) == 1 + len(others)


def test_status_and_common_labels():
    both = notification(payment_alert("web-1"), resolved(payment_alert("web-2")))
    assert both.status == FIRING
    assert notification(resolved(payment_alert())).status == RESOLVED
    assert both.common_labels == {
        "alertname": "HighPaymentFailureRate",
        "severity": "critical",
        "team": "product",
        "job": "django",
    }
    assert both.common_annotations["summary"] == "High payment failure rate"


def test_silence_url_prefills_alertmanagers_form_with_the_common_labels():
    url = notification().silence_url
    assert url.startswith("http://alertmanager.example:9093/#/silences/new?filter=")
    assert unquote(url.split("filter=")[1]) == (
        '{alertname="HighPaymentFailureRate",instance="web-1",job="django",'
        'severity="critical",team="product"}'
    )
    assert replace(notification(), external_url="").silence_url == ""


def test_delivery_outcomes():
    assert Delivery.ok().delivered and not Delivery.ok().retry
    assert Delivery.retryable("x").retry and not Delivery.retryable("x").delivered
    failed = Delivery.permanent("bad")
    assert (failed.delivered, failed.retry, failed.reason) == (False, False, "bad")


def test_the_idempotency_key_derivation_does_not_change():
    """Receivers compare keys across monitor upgrades: a new derivation would make the one
    repeat after an upgrade look new. Change this value only on purpose."""
    assert notification().idempotency_key == "3dcf9bd57662f53f223673d1043a1310"


def test_the_idempotency_key_text_is_json_dumps_of_the_states():
    """The key's text is written out without the general JSON encoder; it must stay the
    exact text `json.dumps` made (keys compared across restarts and upgrades)."""
    import json

    from monitoring.notify.notification import _key_text

    alerts = (
        NotifiedAlert({"alertname": 'Ä "q" \\ \n'}, {}, 1_733_300_000_123),
        NotifiedAlert({"alertname": "b"}, {}, 5, ends_at_ms=9, status=RESOLVED),
        NotifiedAlert({"alertname": "c\u2028😀"}, {}, 0),
    )
    for receiver, group_key, sequence, group in [
        ("team-ops", '{}/{severity="critical"}:{alertname="Ä\\"x"}', 3, alerts),
        ("e", "", 0, ()),
        ("pager\t", "{}:{}", 12345, alerts[1:]),
    ]:
        states = sorted((a.fingerprint, a.status, a.starts_at_ms) for a in group)
        expected = json.dumps([receiver, group_key, sequence, states])
        assert _key_text(receiver, group_key, sequence, group) == expected
