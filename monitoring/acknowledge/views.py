"""``/ack/<token>``: the one-click link of a notification. GET shows the alert and a button
(what a link previewer fetches: it changes nothing); POST acknowledges. A bad, tampered or
expired token is refused with 400 (403 for a bad signature), an alert no longer firing 409."""

from __future__ import annotations

import os
from datetime import UTC, datetime

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from monitoring.acknowledge import AckError, acknowledge_alert
from monitoring.acknowledge.links import LinkError, ack_token_check
from monitoring.monitor.config import settings_from_env
from monitoring.monitor.state import StateStore
from monitoring.rules.alerting import FIRING

__all__ = ["ack_link"]

TEMPLATE = "monitoring/ack_confirm.html"


def _page(request: HttpRequest, status: int = 200, **context) -> HttpResponse:
    response = render(request, TEMPLATE, context, status=status)
    response["Cache-Control"] = "no-store"
    response["X-Robots-Tag"] = "noindex"
    return response


@require_http_methods(["GET", "POST"])
def ack_link(request: HttpRequest, token: str) -> HttpResponse:
    try:
        fingerprint = ack_token_check(token)
    except LinkError as exc:
        status = 403 if "signature" in str(exc) else 400
        return _page(request, status, error=str(exc))
    store = StateStore(settings_from_env(dict(os.environ)).state_path)
    try:
        alert = next(
            (
                a
                for a in store.alerts_active()
                if a.fingerprint == fingerprint and a.state == FIRING
            ),
            None,
        )
        if alert is None:
            return _page(request, 409, error="This alert is not firing any more.")
        if request.method == "GET":
            user = request.user.get_username() if request.user.is_authenticated else ""
            return _page(
                request,
                alertname=alert.alertname,
                summary=alert.annotations.get("summary", ""),
                by=user,
            )
        by = (request.POST.get("by") or "").strip()
        if request.user.is_authenticated:
            by = by or request.user.get_username()
        by = by or "anonymous"  # one click must do: the name is optional
        try:
            ack = acknowledge_alert(
                fingerprint, f"{by} (link)", request.POST.get("comment", ""), store=store
            )
        except AckError as exc:
            return _page(request, 409, error=str(exc))
        at = datetime.fromtimestamp(ack.at_ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        return _page(request, ack=ack, ack_at=at)
    finally:
        store.close()
