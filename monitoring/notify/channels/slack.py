"""Slack incoming webhook with Block Kit: one attachment coloured by severity (green once
resolved) holding a header, then per alert its summary and description, the facts (severity,
team, value, since, instance), its other labels, and link buttons (runbook, query, dashboard,
silence).

A receiver's templated fields (``title``, ``text``, ``pretext``, ``color``, …; rendered before
``slack_payload`` by amtemplate) replace their part of the message: ``title`` the header
(linked to ``title_link`` when set), ``text`` the per-alert blocks, ``pretext`` a section above,
``footer`` a context line below, ``color``/``fallback`` the attachment's, and ``channel``,
``username``, ``icon_emoji``, ``icon_url`` the message's. Rendered text is Slack mrkdwn as the
template wrote it (not escaped: templates write ``<url|text>`` links).

Slack's limits shape it: at most 50 blocks a message (we show ``MAX_ALERTS`` alerts and say how
many more), 150 characters a header, 3,000 a section's text, 2,000 a field; a button's URL must
be absolute http(s), so a runbook left relative (no ``RUNBOOK_BASE_URL``) is named in text.
Slack answers 200 "ok", 4xx with a reason (``invalid_blocks``, ``no_service``), 429 when
throttling. Webhooks have no idempotency support: the key travels as a header for a proxy or
relay that does.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping

from monitoring.notify.amtemplate import TemplateSet, render_fields
from monitoring.notify.channels._http import Done, HttpClient, wait_for_outcome
from monitoring.notify.content import AlertView, alert_view, colour, title, web_url
from monitoring.notify.notification import Delivery, Notification

__all__ = ["MAX_ALERTS", "SlackChannel", "slack_payload"]

MAX_ALERTS = 10  # 4 blocks each, plus a header and a "more" line: within Slack's 50


def slack_payload(
    notification: Notification,
    *,
    now_ms: int,
    channel: str = "",
    rendered: Mapping[str, str] | None = None,
) -> dict:
    """The message; `rendered` holds the receiver's templated fields, already rendered."""
    r = rendered or {}
    heading = r.get("title") or title(notification)
    blocks: list[dict] = []
    if r.get("pretext"):
        blocks.append(_section(r["pretext"], "pretext"))
    if r.get("title_link") and web_url(r["title_link"]):
        link = f"*<{r['title_link']}|{_esc(heading)}>*"
        blocks.append(_section(link, "title"))  # a header block cannot link
    else:
        header = {"type": "header", "text": {"type": "plain_text", "text": _cut(heading, 150)}}
        if r.get("title"):
            header["block_id"] = "title"  # the template's title: findable by tests and tools
        blocks.append(header)
    if "text" in r:
        if r["text"]:
            blocks.append(_section(r["text"], "text"))
    else:
        blocks.extend(_alerts_blocks(notification, now_ms))
    if r.get("footer"):
        blocks.append(_context(r["footer"]))
    attachment = {
        "color": r.get("color") or colour(notification),
        "fallback": r.get("fallback") or heading,
        "blocks": blocks,
    }
    payload: dict = {
        "text": heading,  # what Slack shows in notifications and old clients
        "attachments": [attachment],
    }
    channel = r.get("channel") or channel
    if channel:
        payload["channel"] = channel
    for key in ("username", "icon_emoji", "icon_url"):
        if r.get(key):
            payload[key] = r[key]
    return payload


def _alerts_blocks(notification: Notification, now_ms: int) -> list[dict]:
    blocks: list[dict] = []
    shown = notification.alerts[:MAX_ALERTS]
    for index, alert in enumerate(shown):
        if index:
            blocks.append({"type": "divider"})
        view = alert_view(alert, notification, now_ms)
        blocks.extend(_alert_blocks(view, notification, index))
    more = len(notification.alerts) - len(shown) + notification.truncated_alerts
    if more:
        blocks.append(_context(f"…and {more} more alert{'s' if more > 1 else ''}"))
    return blocks


def _section(text: str, block_id: str) -> dict:
    return {
        "type": "section",
        "block_id": block_id,
        "text": {"type": "mrkdwn", "text": _cut(text, 3000)},
    }


def _alert_blocks(view: AlertView, notification: Notification, index: int) -> list[dict]:
    status = "Resolved" if view.status == "resolved" else "Firing"
    text = f"*{_esc(view.name)}* ({status}): {_esc(view.summary)}"
    if view.description:
        text += f"\n{_esc(view.description)}"
    if view.escalation:
        text += f"\n*Escalation:* {_esc(view.escalation)}"
    if view.automated_response:
        text += f"\n*Automated response:* {_esc(view.automated_response)}"
    facts = [
        ("Severity", view.severity),
        ("Team", view.team),
        ("Value", view.value),
        ("Since", view.since),
        ("Resolved", view.ended),
        ("Instance", view.instance),
    ]
    section = {
        "type": "section",
        "text": {"type": "mrkdwn", "text": _cut(text, 3000)},
        "fields": [
            {"type": "mrkdwn", "text": _cut(f"*{name}*\n{_esc(value)}", 2000)}
            for name, value in facts
            if value
        ],
    }
    blocks = [section]
    notes = [f"`{_esc(k)}={_esc(v)}`" for k, v in view.labels]
    links = [
        ("Runbook", view.runbook_href),
        ("Query", view.query_href),
        ("Dashboard", web_url(notification.dashboard_url)),
        ("Silence", web_url(notification.silence_url)),
        ("Acknowledge", web_url(view.ack_url)),
    ]
    buttons = [
        {
            "type": "button",
            "text": {"type": "plain_text", "text": name},
            "url": url,
            "action_id": f"{name.lower()}-{index}",  # unique in the message
        }
        for name, url in links
        if url
    ]
    if view.runbook_url and not view.runbook_href:
        notes.append(f"runbook: `{_esc(view.runbook_url)}`")
    if notes:
        blocks.append(_context(" ".join(notes)))
    if buttons:
        blocks.append({"type": "actions", "elements": buttons})
    return blocks


def _context(text: str) -> dict:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": _cut(text, 3000)}]}


def _esc(text: str) -> str:
    """Slack's mrkdwn reserves &, < and > (for its <url|text> links)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class SlackChannel:
    kind = "slack"

    def __init__(
        self,
        webhook_url: str,
        *,
        channel: str = "",
        timeout_s: float = 10.0,
        templates: TemplateSet | None = None,
        fields: Mapping[str, str] | None = None,
    ) -> None:
        self.webhook_url = webhook_url
        self.channel = channel  # only honoured by legacy webhooks; new ones post to their own
        self._client = HttpClient(timeout_s)
        self.templates = templates or TemplateSet()
        self.fields = dict(fields or {})  # the receiver's templated fields, by name

    def start_send(self, notification: Notification, done: Done) -> None:
        rendered = render_fields(self.templates, self.fields, notification, integration="slack")
        payload = slack_payload(
            notification,
            now_ms=round(time.time() * 1000),
            channel=self.channel,
            rendered=rendered,
        )
        body = json.dumps(payload).encode()
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": notification.idempotency_key,
        }
        self._client.start_post(self.webhook_url, body, headers, "slack", done)

    def send(self, notification: Notification) -> Delivery:
        return wait_for_outcome(lambda done: self.start_send(notification, done))

    def close(self) -> None:
        self._client.close()
