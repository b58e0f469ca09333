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

# Shares Redis database 11 with other modules: they run on one xdist worker.
pytestmark = pytest.mark.xdist_group("redis-db-11")

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


def test_beat_inprocess_skips_its_entries_while_paused(tmp_path):
    """The embedded mode's beat (no Redis) runs each entry once at start: paused, it skips
    them all, and says so."""
    import subprocess
    import sys

    from tests.gunicorn import ROOT, app_env, single_process
    from tests.wait import wait_for

    env = single_process(app_env(tmp_path))
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"],
        cwd=ROOT, env=env, check=True, timeout=300,
    )  # fmt: skip
    (tmp_path / "beat-paused.json").write_text("{}\n")
    out = tmp_path / "beat.out"
    with open(out, "w") as sink:
        process = subprocess.Popen(
            [sys.executable, "manage.py", "beat_inprocess"],
            cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            wait_for(lambda: out.read_text().count("paused for maintenance") >= 3, 120, "skips")
        finally:
            process.terminate()
            process.wait(timeout=30)
    text = out.read_text()
    for task in ("maintenance.backup", "maintenance.database_maintain"):
        assert f"paused for maintenance, {task} skipped" in text
    assert not (tmp_path / "backups").exists()  # the backup entry did not run
