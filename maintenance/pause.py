"""Beat's pause flag: while `$VAR_DIR/beat-paused.json` exists, neither Celery beat
(maintenance.beat.PausableScheduler) nor `manage.py beat_inprocess` starts a scheduled task.

A file for the same reason as maintenance mode's: every process on the host sees it without the
database or Redis. A run that falls due while paused is skipped, not queued: the entry runs
again at its next interval (a week's backup is not taken twice when maintenance ends).
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings


def flag_path() -> Path:
    return Path(settings.VAR_DIR) / "beat-paused.json"


def paused() -> bool:
    return flag_path().exists()


def pause(reason: str) -> None:
    path = flag_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"since": datetime.now(UTC).isoformat(), "reason": reason}) + "\n")
    os.replace(tmp, path)


def resume() -> None:
    flag_path().unlink(missing_ok=True)
