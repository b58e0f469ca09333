"""The Alertmanager API v2 subset on the monitor's port (Alertmanager 0.25's api/v2), so
`amtool` and a real Prometheus talk to the embedded notifier as to Alertmanager:

  GET  /api/v2/status              cluster "disabled", versionInfo, the loaded configuration
  GET  /api/v2/alerts              the firing alerts the pipeline holds (the monitor's own and
                                   received ones), with silencedBy / inhibitedBy / receivers;
                                   filter=, silenced, inhibited, active, unprocessed, receiver
  POST /api/v2/alerts              alerts from a Prometheus (monitoring.notify.received), into
                                   the pipeline: routed, grouped, muted, delivered as our own
  GET  /api/v2/alerts/groups       the pipeline's aggregation groups with those alerts
  GET  /api/v2/silences            filter=
  POST /api/v2/silences            create or update; {"silenceID": …}
  GET  /api/v2/silence/{id}, DELETE /api/v2/silence/{id} (expire; `?by=` names who, an
                                   extension Alertmanager ignores)

Extensions, not in Alertmanager: GET /api/v2/silences/events (the silences' audit trail,
`?silence=<id>`) and GET /api/v2/windows (maintenance windows and what each mutes now,
monitoring.notify.windows).

Errors are Alertmanager's: the status code and the message as a JSON string. `handle_v2` is
called by `api.handle` (behind the monitor's token); handlers are plain functions.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from monitoring.monitor import api_json_v2
from monitoring.monitor.api_json_v2 import AlertView
from monitoring.notify.matchers import Matcher, MatcherError, compile_anchored, parse_matcher
from monitoring.notify.pipeline import HeldAlert
from monitoring.notify.received import AlertRejected
from monitoring.notify.silences import SilenceError, SilenceNotFound
from monitoring.notify.windows import windows_report
from monitoring.rules.alerting import fingerprint

__all__ = ["alert_views", "handle_v2"]

Params = dict[str, list[str]]
_SILENCE = re.compile(r"^/api/v2/silence/([^/]+)$")


class V2Error(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def _json(status: int, data: Any) -> tuple[int, str, bytes]:
    return status, "application/json", json.dumps(data, separators=(",", ":")).encode()


def _body(body: bytes) -> Any:
    try:
        return json.loads(body or b"null")
    except ValueError as exc:
        raise V2Error(400, f"parsing body: {exc}") from None


def _filters(params: Params) -> list[Matcher]:
    try:
        return [parse_matcher(text) for text in params.get("filter", [])]
    except MatcherError as exc:
        raise V2Error(400, str(exc)) from None


def _flag(params: Params, name: str) -> bool:
    value = (params.get(name) or ["true"])[-1].lower()
    if value not in ("true", "false", "1", "0"):
        raise V2Error(400, f'{name} in query must be of type boolean: "{value}"')
    return value in ("true", "1")


def _inhibitions(monitor: Any, firing: list[HeldAlert]):
    """The inhibition index over every firing alert held (the sources), built once a request."""
    return monitor.notifier.inhibitor.index([h.alert.labels for h in firing])


def _views(monitor: Any, held: list[HeldAlert], inhibitions: Any, now_ms: int) -> list[AlertView]:
    """The alerts as the API shows them: what the pipeline decides about each now."""
    notifier = monitor.notifier
    silences = monitor.notifier_state.silences
    views = []
    for h in held:
        labels = h.alert.labels
        source = inhibitions.inhibited_by(labels)
        views.append(
            AlertView(
                labels=dict(labels),
                annotations=dict(h.alert.annotations),
                starts_at_ms=h.alert.starts_at_ms,
                ends_at_ms=h.ends_at_ms,
                updated_at_ms=h.updated_at_ms,
                generator_url=h.alert.generator_url,
                fingerprint=h.alert.fingerprint,
                receivers=tuple(notifier.route.receivers(labels)) if notifier.route else (),
                silenced_by=tuple(silences.is_silenced(labels, now_ms)),
                inhibited_by=(fingerprint(source),) if source is not None else (),
            )
        )
    return views


def alert_views(monitor: Any, now_ms: int) -> list[AlertView]:
    """Every firing alert the pipeline holds (the monitor's own and those received), with
    what it decides about each (receivers, silences, inhibition), by fingerprint."""
    if monitor.notifier is None:
        return []
    held = monitor.notifier.firing()
    views = _views(monitor, held, _inhibitions(monitor, held), now_ms)
    return sorted(views, key=lambda v: v.fingerprint)


def _alert_filter(params: Params) -> Callable[[AlertView], bool]:
    matchers = _filters(params)
    silenced, inhibited = _flag(params, "silenced"), _flag(params, "inhibited")
    active = _flag(params, "active")
    _flag(params, "unprocessed")  # validated; nothing is ever left unprocessed here

    def keep(view: AlertView) -> bool:
        if not active and view.state == "active":
            return False
        if not silenced and view.silenced_by:
            return False
        if not inhibited and view.inhibited_by:
            return False
        return all(m.matches(view.labels.get(m.name, "")) for m in matchers)

    return keep


def _receiver_filter(params: Params) -> Callable[[str], bool]:
    texts = params.get("receiver")
    if not texts:
        return lambda name: True
    try:
        regex = compile_anchored(texts[-1])
    except MatcherError as exc:
        raise V2Error(400, f"failed to parse receiver param: {exc}") from None
    return lambda name: regex.fullmatch(name) is not None


def get_alerts(monitor: Any, params: Params, body: bytes, now_ms: int) -> Any:
    keep, receiver_ok = _alert_filter(params), _receiver_filter(params)
    return [
        api_json_v2.alert_json(v)
        for v in alert_views(monitor, now_ms)
        if keep(v) and (not params.get("receiver") or any(map(receiver_ok, v.receivers)))
    ]


def post_alerts(monitor: Any, params: Params, body: bytes, now_ms: int) -> Any:
    if monitor.notifier is None:
        raise V2Error(503, "the notifier is off (NOTIFY_CONFIG) or has no state file")
    state = monitor.notifier_state
    try:
        valid, problems = state.received.parse(
            _body(body), now_ms=now_ms, resolve_timeout_ms=state.config.resolve_timeout_ms
        )
    except AlertRejected as exc:
        raise V2Error(400, str(exc)) from None
    monitor.notifier.put([alert.notified(now_ms) for alert in valid])
    if problems:
        raise V2Error(400, "; ".join(problems))
    return None


def get_alert_groups(monitor: Any, params: Params, body: bytes, now_ms: int) -> Any:
    """The pipeline's aggregation groups, with the alerts the filters keep (a group left
    without any is not shown, as in Alertmanager)."""
    keep, receiver_ok = _alert_filter(params), _receiver_filter(params)
    if monitor.notifier is None:
        return []
    inhibitions = _inhibitions(monitor, monitor.notifier.firing())
    found = []
    for route, labels, held in monitor.notifier.groups():
        receiver = route.options.receiver
        if not receiver_ok(receiver):
            continue
        views = [v for v in _views(monitor, held, inhibitions, now_ms) if keep(v)]
        if views:
            views.sort(key=lambda v: v.fingerprint)
            found.append((dict(labels), receiver, views))
    found.sort(key=lambda g: (sorted(g[0].items()), g[1]))
    return [api_json_v2.group_json(labels, receiver, views) for labels, receiver, views in found]


def get_silences(monitor: Any, params: Params, body: bytes, now_ms: int) -> Any:
    silences = monitor.notifier_state.silences.query(_filters(params))
    return [api_json_v2.silence_json(s, now_ms) for s in silences]


def post_silences(monitor: Any, params: Params, body: bytes, now_ms: int) -> Any:
    try:
        silence = api_json_v2.silence_parse(_body(body))
    except SilenceError as exc:
        raise V2Error(400, f"failed to convert API silence to internal silence: {exc}") from None
    if silence.starts_at_ms >= silence.ends_at_ms:
        raise V2Error(400, "Failed to create silence: start time must be before end time")
    if silence.ends_at_ms < now_ms:
        raise V2Error(400, "Failed to create silence: end time can't be in the past")
    try:
        return {"silenceID": monitor.notifier_state.silences.set(silence)}
    except SilenceNotFound as exc:
        raise V2Error(404, str(exc)) from None
    except SilenceError as exc:
        raise V2Error(400, str(exc)) from None


def get_status(monitor: Any, params: Params, body: bytes, now_ms: int) -> Any:
    state = monitor.notifier_state
    return api_json_v2.status_json(config_text=state.config.text, started_at=state.started_at)


def get_silence_events(monitor: Any, params: Params, body: bytes, now_ms: int) -> Any:
    """Extension: the silences' audit trail (who created, changed, expired which, when),
    oldest first; `?silence=<id>` for one."""
    events = monitor.notifier_state.silences.events((params.get("silence") or [""])[-1])
    return [e.as_dict() | {"at": api_json_v2.datetime_json(e.at_ms)} for e in events]


def get_windows(monitor: Any, params: Params, body: bytes, now_ms: int) -> Any:
    """Extension: the maintenance windows (recurring time intervals and silences) and the
    alerts each mutes now (monitoring.notify.windows)."""
    config = monitor.notifier_state.config.config
    if config is None:
        raise V2Error(503, "the notifier's configuration did not load")
    alerts = get_alerts(monitor, {}, b"", now_ms)
    silences = get_silences(monitor, {}, b"", now_ms)
    now = datetime.fromtimestamp(now_ms / 1000, UTC)
    return windows_report(config, alerts, silences, now)


_ROUTES_V2: dict[tuple[str, str], Callable[[Any, Params, bytes, int], Any]] = {
    ("GET", "/api/v2/status"): get_status,
    ("GET", "/api/v2/alerts"): get_alerts,
    ("POST", "/api/v2/alerts"): post_alerts,
    ("GET", "/api/v2/alerts/groups"): get_alert_groups,
    ("GET", "/api/v2/silences"): get_silences,
    ("POST", "/api/v2/silences"): post_silences,
    ("GET", "/api/v2/silences/events"): get_silence_events,
    ("GET", "/api/v2/windows"): get_windows,
}


def _silence(
    monitor: Any, method: str, silence_id: str, params: Params, now_ms: int
) -> tuple[int, str, bytes]:
    silences = monitor.notifier_state.silences
    if method == "GET":
        silence = silences.get(silence_id)
        if silence is None:
            return 404, "application/json", b""
        return _json(200, api_json_v2.silence_json(silence, now_ms))
    if method == "DELETE":
        try:
            # `?by=` (an extension) names who expires it, for the audit trail.
            silences.expire(silence_id, actor=(params.get("by") or [""])[-1])
        except SilenceNotFound as exc:
            return _json(404, str(exc))
        return 200, "application/json", b""
    return 405, "text/plain", b"Method Not Allowed\n"


def handle_v2(
    monitor: Any, method: str, path: str, params: Params, body: bytes, now_ms: int
) -> tuple[int, str, bytes]:
    """One /api/v2 request; (status, content type, body). ApiError-free: errors are answered."""
    try:
        match = _SILENCE.match(path)
        if match:
            return _silence(monitor, method, match[1], params, now_ms)
        route = _ROUTES_V2.get((method, path))
        if route is None:
            known = any(p == path for _, p in _ROUTES_V2)
            return (
                (405, "text/plain", b"Method Not Allowed\n")
                if known
                else (
                    404,
                    "text/plain",
                    b"404 page not found\n",
                )
            )
        data = route(monitor, params, body, now_ms)
        if data is None:
            return 200, "application/json", b""
        return _json(200, data)
    except V2Error as exc:
        return _json(exc.status, str(exc))
