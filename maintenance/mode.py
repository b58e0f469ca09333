"""Maintenance mode: one small JSON flag file, shared by every process on the host.

`$VAR_DIR/maintenance.json` (setting MAINTENANCE_FILE) exists while the shop is in maintenance;
its content gives the Retry-After seconds and the message. A file, not a database row or a
cache key, because maintenance is when the database (or Redis) may be down or migrating: every
gunicorn worker, a restarted one included, sees it without a query. Each process stats the file
at most once per MAINTENANCE_CHECK_INTERVAL (1 s) and reads it again only when it was replaced,
so a request costs no I/O and every worker follows a switch within about a second.

The file is replaced atomically (write to a temporary file, then rename), so a reader never sees
half of it. A file that exists but cannot be parsed still means "on" (someone meant
maintenance), with the default seconds and message.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings

# Long enough that clients do not hammer a shop being upgraded, short enough to be back soon.
DEFAULT_RETRY_AFTER = 300
DEFAULT_MESSAGE = "The shop is down for maintenance; please come back shortly."


@dataclass(frozen=True)
class Mode:
    enabled: bool
    retry_after: int = DEFAULT_RETRY_AFTER
    message: str = DEFAULT_MESSAGE
    since: str = ""  # ISO 8601 UTC, when it was switched on


OFF = Mode(enabled=False)


def flag_path() -> Path:
    return Path(
        getattr(settings, "MAINTENANCE_FILE", None) or settings.VAR_DIR / "maintenance.json"
    )


def _check_interval() -> float:
    return float(getattr(settings, "MAINTENANCE_CHECK_INTERVAL", 1.0))


class _Cache:
    """The last state read per flag path, with when it was stat-checked and the file's identity
    (inode, mtime, size): a rename gives a new inode, so a switch is never missed."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.entries: dict[Path, tuple[float, tuple | None, Mode]] = {}

    def get(self, path: Path) -> Mode:
        now = time.monotonic()
        entry = self.entries.get(path)
        if entry is not None and now - entry[0] < _check_interval():
            return entry[2]
        identity = _identity(path)
        if entry is not None and identity == entry[1]:
            mode = entry[2]
        else:
            mode = OFF if identity is None else _parse(path)
        with self.lock:
            self.entries[path] = (now, identity, mode)
        return mode

    def forget(self, path: Path) -> None:
        with self.lock:
            self.entries.pop(path, None)


_cache = _Cache()


def _identity(path: Path) -> tuple | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


def _parse(path: Path) -> Mode:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return OFF  # removed between the stat and the read
    except (OSError, ValueError):
        return Mode(enabled=True)
    if not isinstance(data, dict):
        return Mode(enabled=True)
    retry_after = data.get("retry_after")
    message = data.get("message")
    return Mode(
        enabled=True,
        retry_after=retry_after
        if isinstance(retry_after, int) and retry_after >= 0
        else DEFAULT_RETRY_AFTER,
        message=message if isinstance(message, str) and message else DEFAULT_MESSAGE,
        since=str(data.get("since", "")),
    )


def current() -> Mode:
    """The maintenance state as this process sees it (at most MAINTENANCE_CHECK_INTERVAL old)."""
    return _cache.get(flag_path())


def switch_on(*, retry_after: int = DEFAULT_RETRY_AFTER, message: str = DEFAULT_MESSAGE) -> Mode:
    """Put the shop in maintenance (again: a new Retry-After or message replaces the old)."""
    if retry_after < 0:
        raise ValueError("retry_after must be >= 0")
    previous = read_now()
    since = previous.since if previous.enabled and previous.since else _now()
    mode = Mode(
        enabled=True, retry_after=retry_after, message=message or DEFAULT_MESSAGE, since=since
    )
    path = flag_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".maintenance.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump({k: v for k, v in asdict(mode).items() if k != "enabled"}, f)
            f.write("\n")
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _cache.forget(path)
    return mode


def switch_off() -> None:
    path = flag_path()
    path.unlink(missing_ok=True)
    _cache.forget(path)


def read_now() -> Mode:
    """The state on disk now, bypassing this process's cache (for the command's `status`)."""
    path = flag_path()
    return OFF if _identity(path) is None else _parse(path)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
