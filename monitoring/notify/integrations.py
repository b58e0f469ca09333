"""A receiver's integrations: the channels its `*_configs` name, built once per configuration.

An integration is Alertmanager's word for one entry of a receiver's `email_configs`,
`slack_configs` or `webhook_configs`; its name is `<type>/<index>` (`email/0`), as Alertmanager
names them in its logs. A webhook to the app's receiver (`…/alertmanager/sms` or `/dashboard`)
is our SMS or dashboard channel when the monitor sends itself (docs/notify.md).

A channel that cannot be built (SMS without its environment) is kept with its problem: a
notification for it fails at delivery, visibly (`NotificationChannelDown`), instead of
vanishing at load.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from monitoring.monitor.state import StateStore
from monitoring.notify.amtemplate import TemplateSet
from monitoring.notify.channels import (
    Channel,
    ChannelConfigError,
    DashboardChannel,
    EmailChannel,
    SlackChannel,
    WebhookChannel,
    channel_from_env,
)
from monitoring.notify.config import (
    SLACK_TEXT_FIELDS,
    Config,
    EmailConfig,
    HTTPConfig,
    SlackConfig,
    WebhookConfig,
)

__all__ = ["Integration", "integrations_build", "integrations_close"]


@dataclass
class Integration:
    receiver: str
    name: str  # "email/0"
    kind: str  # the channel: email, slack, sms, webhook, dashboard
    send_resolved: bool
    max_alerts: int = 0  # 0: all
    channel: Channel | None = None
    problem: str = ""  # why there is no channel


def _http_headers(http: HTTPConfig) -> dict[str, str]:
    if http.basic_auth_username is not None:
        password = http.basic_auth_password or _read(http.basic_auth_password_file)
        pair = f"{http.basic_auth_username}:{password}".encode()
        return {"Authorization": "Basic " + base64.b64encode(pair).decode()}
    credentials = http.authorization_credentials or _read(http.authorization_credentials_file)
    if credentials:
        return {"Authorization": f"{http.authorization_type} {credentials}"}
    return {}


def _read(path: str | None) -> str:
    return Path(path).read_text().strip() if path else ""


def _email(c: EmailConfig, timeout_s: float, templates: TemplateSet) -> EmailChannel:
    # A header without an action stays even when the templates fail (the own message).
    static = {name: value for name, value in c.headers.items() if "{{" not in value}
    fields = {f"headers.{k}": v for k, v in c.headers.items() if k not in static}
    fields |= {key: value for key, value in (("html", c.html), ("text", c.text)) if value}
    host, _, port = c.smarthost.rpartition(":")
    return EmailChannel(
        host=host.strip("[]"),
        port=int(port),
        from_addr=c.from_,
        to=[a.strip() for a in c.to.split(",") if a.strip()],
        username=c.auth_username or "",
        password=c.auth_password or _read(c.auth_password_file),
        use_tls=c.require_tls,
        timeout_s=timeout_s,
        headers=static,
        templates=templates,
        fields=fields,
    )


def _slack(c: SlackConfig, timeout_s: float, templates: TemplateSet) -> SlackChannel:
    fields = {key: value for key in SLACK_TEXT_FIELDS if (value := getattr(c, key)) is not None}
    channel = c.channel if c.channel and "{{" not in c.channel else ""
    return SlackChannel(
        c.api_url or _read(c.api_url_file),
        channel=channel,  # kept when the templates fail and the message is our own
        timeout_s=timeout_s,
        templates=templates,
        fields=fields,
    )


def _webhook(
    c: WebhookConfig, state: StateStore | None, env: Mapping[str, str], timeout_s: float
) -> Channel:
    if c.channel == "sms":
        return channel_from_env("sms", env=env)
    if c.channel == "dashboard":
        if state is None:
            raise ChannelConfigError("the dashboard channel needs the monitor's state file")
        return DashboardChannel(state)
    return WebhookChannel(c.url, timeout_s=timeout_s, headers=_http_headers(c.http_config))


def integrations_build(
    config: Config, *, state: StateStore | None, env: Mapping[str, str] | None = None
) -> dict[str, list[Integration]]:
    """Receiver name → its integrations, in the file's order."""
    env = os.environ if env is None else env
    timeout_s = float(env.get("NOTIFY_TIMEOUT_SECONDS") or 10)
    templates = config.template_set
    built: dict[str, list[Integration]] = {}
    for receiver in config.receivers.values():
        entries = []
        for i, c in enumerate(receiver.email_configs):
            entries.append(("email", i, c, "email", lambda c=c: _email(c, timeout_s, templates)))
        for i, c in enumerate(receiver.slack_configs):
            entries.append(("slack", i, c, "slack", lambda c=c: _slack(c, timeout_s, templates)))
        for i, c in enumerate(receiver.webhook_configs):
            kind = c.channel or "webhook"
            entries.append(("webhook", i, c, kind, lambda c=c: _webhook(c, state, env, timeout_s)))
        integrations = []
        for type_, index, c, kind, make in entries:
            integration = Integration(
                receiver=receiver.name,
                name=f"{type_}/{index}",
                kind=kind,
                send_resolved=c.send_resolved,
                max_alerts=getattr(c, "max_alerts", 0),
            )
            try:
                integration.channel = make()
            except (ChannelConfigError, OSError, ValueError) as exc:
                integration.problem = f"{kind} channel of receiver {receiver.name}: {exc}"
            integrations.append(integration)
        built[receiver.name] = integrations
    return built


def integrations_close(integrations: Mapping[str, list[Integration]]) -> None:
    for entries in integrations.values():
        for integration in entries:
            if integration.channel is not None:
                integration.channel.close()
