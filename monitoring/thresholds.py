"""The specification's thresholds file (`thresholds.yml`): its one loader, for every process.

`thresholds_load(path)` validates the whole file (every section and key of `SCHEMA`, numbers
only, nothing negative, percentages at most 100) and raises `ConfigError` naming `file:line:
problem` for each problem. The monitor refuses a reload with such a file
(`monitoring.monitor.runtime`); the rule files are rendered from it
(`monitoring.monitor.thresholds`).

The web app and the Celery workers read their numbers through `threshold(section, key)`. A file
that fails validation never reaches them: the process logs its problems once and keeps the last
good thresholds, which are, in order, the ones it read itself, the copy the last good read by
any process left in `VAR_DIR/thresholds.last-good.json` (so a worker started after the typo
has them too), or the specification's defaults. A typo must not fail a database connection.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path

from django.conf import settings

from monitoring.configfile import ConfigError, Reader

__all__ = ["DEFAULTS", "SCHEMA", "Thresholds", "threshold", "thresholds_load"]

logger = logging.getLogger("monitoring.thresholds")

Thresholds = dict[str, dict[str, float]]

# The specification's block: every section and key is required, nothing else is accepted.
SCHEMA: dict[str, tuple[str, ...]] = {
    "system": ("cpu_percent", "memory_percent", "disk_percent", "load_average"),
    "database": ("connection_utilization", "slow_query_threshold", "deadlock_threshold"),
    "redis": ("memory_fragmentation", "hit_rate_threshold", "blocked_clients"),
    "application": ("error_rate", "response_time", "queue_length"),
    "business": ("order_failure_rate", "payment_failure_rate", "low_stock_threshold"),
}
# The specification's numbers: what a process uses before any thresholds.yml was read well.
DEFAULTS: Thresholds = {
    "system": {"cpu_percent": 85, "memory_percent": 85, "disk_percent": 85, "load_average": 2.0},
    "database": {
        "connection_utilization": 80,
        "slow_query_threshold": 1000,
        "deadlock_threshold": 5,
    },
    "redis": {"memory_fragmentation": 2.0, "hit_rate_threshold": 85, "blocked_clients": 10},
    "application": {"error_rate": 5.0, "response_time": 5000, "queue_length": 100},
    "business": {"order_failure_rate": 10, "payment_failure_rate": 5, "low_stock_threshold": 10},
}
_PERCENT_KEYS = {
    "cpu_percent",
    "memory_percent",
    "disk_percent",
    "connection_utilization",
    "hit_rate_threshold",
    "error_rate",
    "order_failure_rate",
    "payment_failure_rate",
}
LAST_GOOD_NAME = "thresholds.last-good.json"


def thresholds_load(path: Path | str, text: str | None = None) -> Thresholds:
    """Read and validate the thresholds file; raises ConfigError naming file:line per problem."""
    reader = Reader(path, text)
    reader.raise_if_errors()
    out: Thresholds = {}
    sections = reader.mapping(reader.root, "thresholds", allowed=set(SCHEMA), required=set(SCHEMA))
    for section, node in sections.items():
        keys = SCHEMA[section]
        values = reader.mapping(node, section, allowed=set(keys), required=set(keys))
        out[section] = {}
        for key, value_node in values.items():
            value = reader.number(value_node, f"{section}.{key}")
            if value is None:
                continue
            if value < 0:
                reader.error(value_node, f"{section}.{key}: must not be negative")
            elif key in _PERCENT_KEYS and value > 100:
                reader.error(value_node, f"{section}.{key}: a percentage cannot exceed 100")
            out[section][key] = value
    reader.raise_if_errors()
    return out


class LastGoodThresholds:
    """`thresholds.yml` as this process last read it well, re-read when the file changes.

    `path` is the file; `last_good` the copy shared with the other processes (written after
    each good read, read when this process has not had a good one)."""

    def __init__(self, path: Path, last_good: Path) -> None:
        self.path = path
        self.last_good = last_good
        self._lock = threading.Lock()
        self._version: tuple | None = None
        self._values: Thresholds | None = None

    def current(self) -> Thresholds:
        try:
            stat = self.path.stat()
            version: tuple = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        except FileNotFoundError:
            version = ("absent",)
        with self._lock:
            if version != self._version:
                self._version = version
                self._read(absent=version == ("absent",))
            if self._values is None:
                self._values = self._copy_read() or DEFAULTS
            return self._values

    def _read(self, *, absent: bool) -> None:
        if absent:  # no file: the specification's numbers, as before anyone wrote one
            self._values = DEFAULTS
            return
        try:
            values = thresholds_load(self.path)
        except ConfigError as exc:
            kept = "the last good thresholds" if self._values else "the last good copy or defaults"
            logger.error(
                "thresholds.yml refused, keeping %s: %s",
                kept,
                "; ".join(exc.errors),
                extra={"config_errors": exc.errors},
            )
            return
        self._values = values
        self._copy_write(values)

    def _copy_read(self) -> Thresholds | None:
        try:
            data = json.loads(self.last_good.read_text())
        except (OSError, ValueError):
            return None
        try:  # written by us, but checked as any file: it must hold every key as a number
            return {s: {k: float(data[s][k]) for k in keys} for s, keys in SCHEMA.items()}
        except (KeyError, TypeError, ValueError):
            return None

    def _copy_write(self, values: Thresholds) -> None:
        if self._copy_read() == values:
            return
        temporary = self.last_good.with_name(f".{self.last_good.name}.{os.getpid()}")
        try:
            temporary.write_text(json.dumps(values, indent=2, sort_keys=True))
            os.replace(temporary, self.last_good)  # atomic: a reader never sees half a file
        except OSError as exc:
            logger.warning("could not keep a copy of the thresholds in %s: %s", self.last_good, exc)


_current: LastGoodThresholds | None = None
_current_lock = threading.Lock()


def _thresholds() -> LastGoodThresholds:
    global _current
    path = Path(settings.MONITORING_CONFIG_DIR) / "thresholds.yml"
    with _current_lock:
        if _current is None or _current.path != path:
            _current = LastGoodThresholds(path, Path(settings.VAR_DIR) / LAST_GOOD_NAME)
        return _current


def threshold(section: str, key: str) -> float:
    """One number from the last good thresholds (never raises for a broken file)."""
    return float(_thresholds().current()[section][key])
