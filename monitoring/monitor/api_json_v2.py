"""Every Alertmanager API v2 JSON shape the monitor answers with (Alertmanager 0.25's
api/v2/openapi.yaml), in one place, so amtool and other Alertmanager clients read ours:

- ``silence_json(silence, now_ms)``: a gettableSilence;
- ``alert_json(view)``: a gettableAlert; ``group_json``: an alertGroup;
- ``status_json(...)``: alertmanagerStatus (cluster "disabled", as a single Alertmanager);
- ``silence_parse(document)``: a postableSilence as a ``Silence`` (SilenceError when refused).

Times are strfmt.DateTime's: RFC 3339 with milliseconds, UTC (``2026-12-04T22:41:23.000Z``).
"""

from __future__ import annotations

import platform
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from monitoring.notify.matchers import EQUAL, NOT_EQUAL, NOT_REGEX, REGEX
from monitoring.notify.silences import Silence, SilenceError, matcher_new
from monitoring.rules.gofmt import parse_rfc3339_ms

__all__ = [
    "AlertView",
    "alert_json",
    "datetime_json",
    "group_json",
    "silence_json",
    "silence_parse",
    "status_json",
]

VERSION = "0.25.0"


def datetime_json(t_ms: int) -> str:
    seconds, ms = divmod(int(t_ms), 1000)
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{ms:03d}Z"


def silence_json(silence: Silence, now_ms: int) -> dict:
    return {
        "id": silence.id,
        "status": {"state": silence.state(now_ms)},
        "updatedAt": datetime_json(silence.updated_at_ms),
        "comment": silence.comment,
        "createdBy": silence.created_by,
        "endsAt": datetime_json(silence.ends_at_ms),
        "matchers": [
            {
                "isEqual": m.op in (EQUAL, REGEX),
                "isRegex": m.op in (REGEX, NOT_REGEX),
                "name": m.name,
                "value": m.value,
            }
            for m in silence.matchers
        ],
        "startsAt": datetime_json(silence.starts_at_ms),
    }


def _required(document: Mapping, key: str, kind: type) -> Any:
    value = document.get(key)
    if value is None:
        raise SilenceError(f"{key} in body is required")
    if not isinstance(value, kind) or isinstance(value, bool) != (kind is bool):
        raise SilenceError(f"{key} in body must be of type {kind.__name__}")
    return value


def _time(document: Mapping, key: str) -> int:
    text = _required(document, key, str)
    try:
        t_ms = parse_rfc3339_ms(text)
    except ValueError:
        raise SilenceError(f"{key} in body must be of type date-time: {text!r}") from None
    if t_ms is None:
        raise SilenceError(f"{key} in body is required")
    return t_ms


def silence_parse(document: Any) -> Silence:
    """A postableSilence (id optional; matchers, startsAt, endsAt, createdBy, comment)."""
    if not isinstance(document, Mapping):
        raise SilenceError("the body must be a silence object")
    silence_id = document.get("id") or ""
    if not isinstance(silence_id, str):
        raise SilenceError("id in body must be of type string")
    matchers = []
    for item in _required(document, "matchers", list):
        if not isinstance(item, Mapping):
            raise SilenceError("matchers in body must be objects")
        name, value = _required(item, "name", str), _required(item, "value", str)
        is_regex = _required(item, "isRegex", bool)
        is_equal = item.get("isEqual", True)
        if not isinstance(is_equal, bool):
            raise SilenceError("isEqual in body must be of type bool")
        op = {(True, False): EQUAL, (False, False): NOT_EQUAL, (True, True): REGEX}.get(
            (is_equal, is_regex), NOT_REGEX
        )
        matchers.append(matcher_new(name, op, value))
    return Silence(
        silence_id,
        tuple(matchers),
        _time(document, "startsAt"),
        _time(document, "endsAt"),
        _required(document, "createdBy", str),
        _required(document, "comment", str),
    )


@dataclass(frozen=True)
class AlertView:
    """An alert as the API shows it: the alert plus what the notifier decided about it."""

    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    starts_at_ms: int
    ends_at_ms: int
    updated_at_ms: int
    generator_url: str
    fingerprint: str
    receivers: tuple[str, ...]
    silenced_by: tuple[str, ...]
    inhibited_by: tuple[str, ...]

    @property
    def state(self) -> str:
        return "suppressed" if self.silenced_by or self.inhibited_by else "active"


def alert_json(view: AlertView) -> dict:
    return {
        "annotations": dict(view.annotations),
        "endsAt": datetime_json(view.ends_at_ms),
        "fingerprint": view.fingerprint,
        "receivers": [{"name": name} for name in view.receivers],
        "startsAt": datetime_json(view.starts_at_ms),
        "status": {
            "inhibitedBy": list(view.inhibited_by),
            "silencedBy": list(view.silenced_by),
            "state": view.state,
        },
        "updatedAt": datetime_json(view.updated_at_ms),
        "generatorURL": view.generator_url,
        "labels": dict(view.labels),
    }


def group_json(labels: Mapping[str, str], receiver: str, views: list[AlertView]) -> dict:
    return {
        "alerts": [alert_json(v) for v in views],
        "labels": dict(labels),
        "receiver": {"name": receiver},
    }


def status_json(*, config_text: str, started_at: float) -> dict:
    return {
        "cluster": {"peers": [], "status": "disabled"},
        "config": {"original": config_text},
        "uptime": datetime_json(round(started_at * 1000)),
        "versionInfo": {
            "branch": "",
            "buildDate": "",
            "buildUser": "pasargad monitor",
            "goVersion": f"python{platform.python_version()}",
            "revision": "",
            "version": VERSION,
        },
    }
