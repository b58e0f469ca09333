"""An alert's history as the alerts page shows it: the transitions and the notifications the
monitor's state file holds for that alert, and none of another alert's."""

from __future__ import annotations

from dashboard.history import alert_history
from monitoring.monitor.state import LogEntry, StateStore
from monitoring.rules.alerting import fingerprint
from monitoring.tsdb.store import labels_from
from tests.monitoring.monitor.test_state import CPU, MINUTE, T0, _alert, _persist

OTHER = labels_from({"alertname": "HighCpuUsage", "severity": "warning", "instance": "web2"})


def _notification(store: StateStore, labels, *, status: str, at: int, key: str) -> None:
    alert = {
        "labels": dict(labels), "annotations": {}, "starts_at_ms": T0, "ends_at_ms": 0,
        "status": status, "generator_url": "", "value": None,
    }  # fmt: skip
    store.outbox_enqueue(
        rows=[
            {
                "idempotency_key": key, "receiver": "devops", "integration": "email/0",
                "kind": "email", "payload": {"receiver": "devops", "alerts": [alert]},
                "created_ms": at, "deadline_ms": at + 10 * MINUTE,
            }
        ],
        log=LogEntry("devops", key, frozenset(), frozenset(), 1, at),
    )  # fmt: skip


def test_history_has_transitions_and_notifications_in_order(tmp_path):
    store = StateStore(tmp_path / "state.sqlite3")
    try:
        _persist(store, _alert("pending"), at=T0)
        _persist(store, _alert("firing", fired=T0 + 5 * MINUTE), at=T0 + 5 * MINUTE)
        _notification(store, CPU, status="firing", at=T0 + 5 * MINUTE + 100, key="k1")
        _notification(store, OTHER, status="firing", at=T0 + 6 * MINUTE, key="k2")
        resolved = _alert("inactive", fired=T0 + 5 * MINUTE, resolved=T0 + 9 * MINUTE)
        _persist(store, resolved, at=T0 + 9 * MINUTE)
        store.outbox_delivered(row_id=1, at_ms=T0 + 5 * MINUTE + 900)
    finally:
        store.close()

    history = alert_history(tmp_path / "state.sqlite3", fingerprint(CPU))
    assert history["alert"]["alertname"] == "HighCpuUsage"
    assert history["alert"]["state"] == "inactive"
    assert [
        (e["kind"], e.get("from"), e.get("to"), e.get("status")) for e in history["events"]
    ] == [
        ("transition", "inactive", "pending", None),
        ("transition", "pending", "firing", None),
        ("notification", None, None, "delivered"),  # web1's only: web2's is another alert
        ("transition", "firing", "inactive", None),
    ]
    notified = history["events"][2]
    assert (notified["receiver"], notified["integration"], notified["alert_status"]) == (
        "devops", "email/0", "firing",
    )  # fmt: skip
    assert notified["at_ms"] == T0 + 5 * MINUTE + 900


def test_history_of_an_unknown_alert_is_empty(tmp_path):
    StateStore(tmp_path / "state.sqlite3").close()
    assert alert_history(tmp_path / "state.sqlite3", "0" * 16) == {"alert": None, "events": []}
