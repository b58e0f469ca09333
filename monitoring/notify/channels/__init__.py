"""Notification channels: each sends one ``Notification`` once and answers a ``Delivery``.

A channel is any object with ``kind``, ``send(notification) -> Delivery`` and ``close()``
(``Channel``); it never retries, waits or deduplicates (pipeline stages do). HTTP channels take
a timeout and post through libcurl's multi interface (``_http.HttpClient``, one thread a
channel, many requests in flight); they also have ``start_send(notification, done)``, which
returns at once and calls ``done(delivery)`` later from the client's thread (``send`` waits for
it): the outbox's deliverer uses it, so a send in flight holds no thread. Email takes an SMTP
host and port, dashboard the state store: tests give them real local servers.

``channel_from_env(kind)`` builds one from the deployment's environment, for
``manage.py monitor notify-test``; the notifier's configuration builds its receivers' channels
with the same constructors.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Protocol

from monitoring.notify.channels.dashboard import DashboardChannel
from monitoring.notify.channels.email import EmailChannel
from monitoring.notify.channels.slack import SlackChannel
from monitoring.notify.channels.sms import SMSChannel
from monitoring.notify.channels.webhook import WebhookChannel
from monitoring.notify.notification import Delivery, Notification

__all__ = [
    "KINDS",
    "Channel",
    "ChannelConfigError",
    "DashboardChannel",
    "EmailChannel",
    "SMSChannel",
    "SlackChannel",
    "WebhookChannel",
    "channel_from_env",
]

KINDS = ("email", "slack", "sms", "webhook", "dashboard")


class Channel(Protocol):
    kind: str  # HTTP channels also have start_send (above)

    def send(self, notification: Notification) -> Delivery: ...

    def close(self) -> None:
        """Release what the channel holds (an HTTP connection pool); sending after is an error."""


class ChannelConfigError(ValueError):
    """A channel cannot be built: a setting is missing (named in the message)."""


def _need(env: Mapping[str, str], *names: str) -> list[str]:
    missing = [name for name in names if not env.get(name)]
    if missing:
        raise ChannelConfigError(f"set {', '.join(missing)} in the environment")
    return [env[name] for name in names]


def _list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def channel_from_env(
    kind: str, *, to: list[str] | None = None, env: Mapping[str, str] | None = None
) -> Channel:
    """A channel from the environment (see docs/notify-channels.md); `to` replaces the
    configured recipients (addresses, phone numbers, or the webhook's URL)."""
    env = os.environ if env is None else env
    timeout_s = float(env.get("NOTIFY_TIMEOUT_SECONDS") or 10)
    if kind == "email":
        from django.conf import settings

        return EmailChannel(
            host=env.get("EMAIL_HOST") or settings.EMAIL_HOST,
            port=int(env.get("EMAIL_PORT") or settings.EMAIL_PORT),
            from_addr=env.get("ALERT_EMAIL_FROM") or "alerts@pasargadprints.com",
            to=to or _list(env.get("ALERT_EMAIL_TO") or "devops@pasargadprints.com"),
            username=env.get("EMAIL_HOST_USER", ""),
            password=env.get("EMAIL_HOST_PASSWORD", ""),
            use_tls=env.get("EMAIL_USE_TLS", "").lower() in ("1", "true", "yes"),
            timeout_s=timeout_s,
        )
    if kind == "slack":
        (url,) = _need(env, "SLACK_WEBHOOK_URL")
        return SlackChannel(url, timeout_s=timeout_s)
    if kind == "sms":
        api_url, sid, token, sender = _need(
            env, "SMS_API_URL", "SMS_ACCOUNT_SID", "SMS_AUTH_TOKEN", "SMS_FROM"
        )
        numbers = to or _list(_need(env, "ONCALL_SMS_TO")[0])
        return SMSChannel(
            api_url=api_url,
            account_sid=sid,
            auth_token=token,
            from_number=sender,
            to=numbers,
            timeout_s=timeout_s,
        )
    if kind == "webhook":
        urls = to or _list(_need(env, "NOTIFY_WEBHOOK_URL")[0])
        if len(urls) != 1:
            raise ChannelConfigError("a webhook channel posts to one URL")
        return WebhookChannel(urls[0], timeout_s=timeout_s)
    if kind == "dashboard":
        from monitoring.monitor.config import settings_from_env
        from monitoring.monitor.state import StateStore

        return DashboardChannel(StateStore(settings_from_env(dict(env)).state_path))
    raise ChannelConfigError(f"unknown channel {kind!r}: one of {', '.join(KINDS)}")
