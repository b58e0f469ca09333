import sqlite3

from monitoring.monitor.state import StateStore
from monitoring.notify.channels import DashboardChannel
from monitoring.notify.channels.webhook import webhook_body
from tests.monitoring.notify.channels.sample import notification, payment_alert, resolved


def test_records_one_row_per_notification_and_drops_a_repeat(tmp_path):
    store = StateStore(tmp_path / "state.sqlite3")
    channel = DashboardChannel(store)
    firing = notification()
    assert channel.send(firing).delivered
    assert channel.send(firing).delivered  # the repeat a crash can cause
    assert channel.send(notification(resolved(payment_alert()))).delivered
    store.close()
    reopened = StateStore(tmp_path / "state.sqlite3")  # recorded durably
    latest, first = reopened.dashboard_notifications()
    assert first.idempotency_key == firing.idempotency_key
    assert (first.status, first.severity, first.receiver) == ("firing", "critical", "oncall")
    assert first.title == "[FIRING:1] HighPaymentFailureRate (critical web-1)"
    assert first.body == {**webhook_body(firing), "values": {firing.alerts[0].fingerprint: 23.456}}
    assert latest.status == "resolved" and latest.id > first.id
    assert reopened.dashboard_notifications(after_id=first.id) == [latest]
    reopened.close()


def test_a_locked_store_is_a_retryable_failure(tmp_path):
    store = StateStore(tmp_path / "state.sqlite3", busy_timeout_s=0.1)
    other = sqlite3.connect(tmp_path / "state.sqlite3", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another writer holds the lock
    try:
        delivery = DashboardChannel(store).send(notification())
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert delivery.retry and "locked" in delivery.reason
    store.close()
