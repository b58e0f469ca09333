"""The Alertmanager API v2 subset on the monitor's port (Alertmanager 0.25's api/v2), so
`amtool` and a real Prometheus talk to the embedded notifier as to Alertmanager:

  GET  /api/v2/status              cluster "disabled", versionInfo, the loaded configuration
  GET  /api/v2/alerts              firing alerts (the monitor's own and received ones), with
                                   silencedBy / inhibitedBy / receivers; filter=, silenced,
                                   inhibited, active, unprocessed, receiver
  POST /api/v2/alerts              alerts from a Prometheus (monitoring.notify.received)
  GET  /api/v2/alerts/groups       the same alerts, grouped per route as the route tree says
  GET  /api/v2/silences            filter=
  POST /api/v2/silences            create or update; {"silenceID": …}
  GET  /api/v2/silence/{id}, DELETE /api/v2/silence/{id} (expire)

Errors are Alertmanager's: the status code and the message as a JSON string. `handle_v2` is
called by `api.handle` (behind the monitor's token); handlers are plain functions.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from monitoring.monitor import api_json_v2
from monitoring.monitor.api_json_v2 import AlertView
from monitoring.notify.matchers import Matcher, MatcherError, compile_anchored, parse_matcher
from monitoring.notify.received import AlertRejected
from monitoring.notify.routing import Inhibitor
from monitoring.notify.silences import SilenceError, SilenceNotFound
from monitoring.rules.alerting import FIRING, fingerprint

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


def alert_views(monitor: Any, now_ms: int) -> list[AlertView]:
    """Every firing alert as the notifier sees it now: the monitor's own (as Prometheus would
    send them: endsAt four evaluation intervals ahead) and those received and not resolved."""
    state = monitor.notifier_state
    raw = []
    base = f"http://{monitor.settings.listen_host}:{monitor.settings.listen_port}"
    with monitor.evaluation_lock:
        for group in monitor.groups:
            last = group.last_eval_ms or now_ms
            for rule in group.alerting_rules():
                url = f"{base}/graph?g0.expr={quote(rule.expr)}&g0.tab=1"
                for alert in rule.active_alerts():
                    if alert.state == FIRING:
                        raw.append(
                            (
                                dict(alert.labels),
                                dict(alert.annotations),
                                alert.fired_at_ms or alert.active_at_ms,
                                last + round(4 * group.interval_s * 1000),
                                last,
                                url,
                            )
                        )
    for alert in state.received.received_alerts(now_ms):
        if not alert.resolved(now_ms):
            raw.append(
                (
                    alert.labels,
                    alert.annotations,
                    alert.starts_at_ms,
                    alert.ends_at_ms,
                    alert.updated_at_ms,
                    alert.generator_url,
                )
            )
    notifier = monitor.notifier
    route = notifier.route if notifier is not None else None
    inhibitions = (notifier.inhibitor if notifier else Inhibitor(())).index(
        [labels for labels, *_ in raw]
    )
    views = []
    for labels, notes, starts, ends, updated, url in raw:
        source = inhibitions.inhibited_by(labels)
        views.append(
            AlertView(
                labels=labels,
                annotations=notes,
                starts_at_ms=starts,
                ends_at_ms=ends,
                updated_at_ms=updated,
                generator_url=url,
                fingerprint=fingerprint(labels),
                receivers=tuple(route.receivers(labels)) if route else (),
                silenced_by=tuple(state.silences.is_silenced(labels, now_ms)),
                inhibited_by=(fingerprint(source),) if source is not None else (),
            )
        )
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
    state = monitor.notifier_state
    try:
        problems = state.received.put(
            _body(body), now_ms=now_ms, resolve_timeout_ms=state.config.resolve_timeout_ms
        )
    except AlertRejected as exc:
        raise V2Error(400, str(exc)) from None
    if problems:
        raise V2Error(400, "; ".join(problems))
    return None


def get_alert_groups(monitor: Any, params: Params, body: bytes, now_ms: int) -> Any:
    keep, receiver_ok = _alert_filter(params), _receiver_filter(params)
    route = monitor.notifier.route if monitor.notifier is not None else None
    groups: dict[tuple[str, str], tuple[dict, str, list[AlertView]]] = {}
    if route is not None:
        for view in alert_views(monitor, now_ms):
            if not keep(view):
                continue
            for matched in route.match(view.labels):
                receiver = matched.options.receiver
                if not receiver_ok(receiver):
                    continue
                key = (matched.key() + matched.group_key(view.labels), receiver)
                labels = matched.group_labels(view.labels)
                groups.setdefault(key, (labels, receiver, []))[2].append(view)
    ordered = sorted(groups.values(), key=lambda g: (sorted(g[0].items()), g[1]))
    return [api_json_v2.group_json(labels, receiver, views) for labels, receiver, views in ordered]


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


_ROUTES_V2: dict[tuple[str, str], Callable[[Any, Params, bytes, int], Any]] = {
    ("GET", "/api/v2/status"): get_status,
    ("GET", "/api/v2/alerts"): get_alerts,
    ("POST", "/api/v2/alerts"): post_alerts,
    ("GET", "/api/v2/alerts/groups"): get_alert_groups,
    ("GET", "/api/v2/silences"): get_silences,
    ("POST", "/api/v2/silences"): post_silences,
}


def _silence(monitor: Any, method: str, silence_id: str, now_ms: int) -> tuple[int, str, bytes]:
    silences = monitor.notifier_state.silences
    if method == "GET":
        silence = silences.get(silence_id)
        if silence is None:
            return 404, "application/json", b""
        return _json(200, api_json_v2.silence_json(silence, now_ms))
    if method == "DELETE":
        try:
            silences.expire(silence_id)
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
            return _silence(monitor, method, match[1], now_ms)
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
