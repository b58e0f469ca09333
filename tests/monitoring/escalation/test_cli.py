"""`manage.py monitor ack`: by name or fingerprint, into the state file the monitor reads."""

from __future__ import annotations

import io
import time

import pytest
from django.core.management import call_command

from monitoring.acknowledge import acknowledgements
from monitoring.monitor.state import StateStore
from monitoring.notify.notification import NotifiedAlert

NOW = int(time.time() * 1000)


def _alert(name: str, instance: str) -> NotifiedAlert:
    return NotifiedAlert(
        labels={"alertname": name, "severity": "critical", "instance": instance},
        annotations={},
        starts_at_ms=NOW,
    )


def test_ack_by_name_and_fingerprint_and_list(tmp_path, monkeypatch):
    path = tmp_path / "state.sqlite3"
    monkeypatch.setenv("MONITOR_STATE_PATH", str(path))
    store = StateStore(path)
    a, b, c = _alert("RedisDown", "r1"), _alert("RedisDown", "r2"), _alert("DatabaseDown", "db")
    store.alerts_received([a, b, c], at_ms=NOW)
    out = io.StringIO()
    call_command(
        "monitor", "ack", "RedisDown", c.fingerprint, "--by", "dana", "--comment", "x", stdout=out
    )
    assert out.getvalue().count("acknowledged") == 3
    assert {k.fingerprint for k in acknowledgements(store=store)} == {
        a.fingerprint,
        b.fingerprint,
        c.fingerprint,
    }
    listing = io.StringIO()
    call_command("monitor", "ack", "--list", stdout=listing)
    assert "RedisDown" in listing.getvalue() and "by dana" in listing.getvalue()
    err = io.StringIO()
    with pytest.raises(SystemExit) as exited:
        call_command("monitor", "ack", "NoSuchAlert", "--by", "dana", stderr=err)
    assert exited.value.code == 1 and "no firing alert named NoSuchAlert" in err.getvalue()
    store.close()
