"""Shop signals feed the application counters; the JSON snapshot reports the same numbers."""

import pytest
from django.contrib.auth import get_user_model

from monitoring.http.metrics import observe_request
from monitoring.http.snapshot import application_snapshot, latency_quantile_ms
from shop import signals
from shop.payments.models import Payment
from tests.monitoring.metric_values import sample_value


def test_each_shop_event_moves_its_counter():
    user = get_user_model()(username="u")
    before = application_snapshot()
    signals.user_registered.send(sender=None, user=user)
    signals.login_attempted.send(sender=None, user=user, success=True, username="u")
    signals.login_attempted.send(sender=None, user=None, success=False, username="u")
    signals.login_attempted.send(sender=None, user=None, success=False, username="u")
    signals.order_placed.send(sender=None, order=None)
    signals.order_completed.send(sender=None, order=None)
    signals.order_failed.send(sender=None, order=None, reason="stock")
    signals.reorder_alert_raised.send(sender=None, product=None, stock_quantity=3)
    after = application_snapshot()
    assert after["accounts"]["registrations_total"] == before["accounts"]["registrations_total"] + 1
    assert after["accounts"]["logins_succeeded_total"] == (
        before["accounts"]["logins_succeeded_total"] + 1
    )
    assert after["accounts"]["logins_failed_total"] == before["accounts"]["logins_failed_total"] + 2
    for key in ("placed_total", "completed_total", "failed_total"):
        assert after["orders"][key] == before["orders"][key] + 1
    assert after["reorder_alerts_total"] == before["reorder_alerts_total"] + 1


def test_payments_by_outcome_and_bounded_error_code():
    ok = Payment(provider="stripe", status="succeeded", error_code="")
    declined = Payment(provider="stripe", status="failed", error_code="card_declined")
    odd = Payment(provider="stripe", status="failed", error_code="Weird code!\n" * 9)
    before_ok = sample_value("payments_succeeded_total", provider="stripe")
    before_declined = sample_value("payments_failed_total", error_code="card_declined")
    before_other = sample_value("payments_failed_total", error_code="other")
    for payment in (ok, declined, declined, odd):
        signals.payment_finished.send(sender=None, payment=payment)
    assert sample_value("payments_succeeded_total", provider="stripe") == before_ok + 1
    assert sample_value("payments_failed_total", error_code="card_declined") == before_declined + 2
    assert sample_value("payments_failed_total", error_code="other") == before_other + 1
    assert application_snapshot()["payments"]["failed_by_error_code"]["card_declined"] >= 2


def test_http_snapshot_matches_the_counters():
    before = application_snapshot()["http"]
    for status in (200, 200, 404, 503):
        observe_request("GET", "/snapshot/", status, 0.02, None)
    http = application_snapshot()["http"]
    assert http["requests_total"] == before["requests_total"] + 4
    assert http["client_errors_total"] == before["client_errors_total"] + 1
    assert http["server_errors_total"] == before["server_errors_total"] + 1
    assert http["requests_total"] == sample_value("http_requests_total")
    busiest = [row["requests_total"] for row in http["busiest_routes"]]
    assert len(busiest) <= 10 and busiest == sorted(busiest, reverse=True)
    if len(busiest) < 10:  # few routes seen in this process: ours is among them
        assert {"route": "/snapshot/", "requests_total": 4.0} in http["busiest_routes"]


@pytest.mark.parametrize(
    ("buckets", "expected"),
    [
        # The recording rule's promtool case: 95 % within 5 s gives 5000 ms.
        ({0.1: 30, 5.0: 57, 10.0: 60, float("inf"): 60}, 5000.0),
        ({0.1: 50, 1.0: 90, 10.0: 100, float("inf"): 100}, 5500.0),
        ({1.0: 0, float("inf"): 0}, None),
        ({1.0: 1, float("inf"): 100}, 1000.0),  # beyond the last finite bucket
    ],
)
def test_latency_quantile_follows_prometheus(buckets, expected):
    result = latency_quantile_ms(buckets, 0.95)
    assert result == expected or abs(result - expected) < 1e-6
