"""Beat's maintenance pause on a real Celery beat scheduler and a real Redis broker (db 11):
an entry falling due while paused is not sent; after `resume` it is."""

from __future__ import annotations

import pytest
import redis
from celery import Celery
from django.conf import settings as django_settings

from maintenance import pause
from maintenance.beat import PausableScheduler
from tests.services import require_redis

REDIS = "redis://127.0.0.1:6379/11"


@pytest.mark.redis
def test_a_paused_beat_sends_nothing_and_sends_again_once_resumed(tmp_path, settings):
    require_redis()
    settings.VAR_DIR = tmp_path
    client = redis.Redis.from_url(REDIS)
    client.delete("maintenance-pause-test")
    app = Celery("pause-test", broker=REDIS)
    app.conf.beat_schedule = {
        "x": {"task": "t.x", "schedule": 1.0, "options": {"queue": "maintenance-pause-test"}}
    }
    scheduler = PausableScheduler(app, schedule_filename=str(tmp_path / "beat-schedule"))
    try:
        entry = scheduler.schedule["x"]
        pause.pause("test")
        assert pause.paused() and django_settings.VAR_DIR == tmp_path
        scheduler.apply_entry(entry, producer=scheduler.producer)
        assert client.llen("maintenance-pause-test") == 0
        pause.resume()
        pause.resume()  # idempotent
        scheduler.apply_entry(entry, producer=scheduler.producer)
        assert client.llen("maintenance-pause-test") == 1
    finally:
        scheduler.close()
        client.delete("maintenance-pause-test")
