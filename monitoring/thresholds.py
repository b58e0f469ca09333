"""Numbers from the specification's thresholds file that the collectors and checks need.

`deploy/prometheus/thresholds.yml` (under settings.MONITORING_CONFIG_DIR) is the one place an
operator changes a threshold; when it is absent the specification's defaults apply.
"""

from __future__ import annotations

import functools
from pathlib import Path

import yaml
from django.conf import settings

from config.settings.env import ConfigurationError

DEFAULTS: dict[str, dict[str, float]] = {
    "database": {"connection_utilization": 80, "slow_query_threshold": 1000},
    "redis": {"blocked_clients": 10},
    "application": {"queue_length": 100},
}


@functools.cache
def _load(path: Path) -> dict:
    if not path.exists():
        return {}
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f"line {mark.line + 1}" if mark is not None else "unknown line"
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigurationError(f"{path}: {line}: {problem}") from None
    if not isinstance(data, dict):
        raise ConfigurationError(f"{path}: line 1: expected a mapping of sections")
    return data


def threshold(section: str, key: str) -> float:
    path = Path(settings.MONITORING_CONFIG_DIR) / "thresholds.yml"
    value = (_load(path).get(section) or {}).get(key, DEFAULTS[section][key])
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigurationError(f"{path}: {section}.{key}: expected a number, got {value!r}")
    return float(value)
