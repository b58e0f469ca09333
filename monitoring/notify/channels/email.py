"""Email over SMTP with Django's mail: a text part and an HTML part (multipart/alternative).

The connection is explicit (``get_connection`` with the SMTP backend and this channel's host,
port, credentials and timeout), never the shop's ``EMAIL_BACKEND``: the shop may write its own
mail to files while alerts must reach a server.

Headers: ``Message-ID`` is built from the notification's idempotency key, so a repeat after a
crash carries the same id and mail systems (and people's clients) can drop it;
``In-Reply-To``/``References`` name one id per alert group, so a group's firing and resolved
mails thread together; ``X-Idempotency-Key`` and ``X-Alert-Status`` for filters.

A receiver's templated fields (rendered before ``email_message`` by amtemplate) replace their
part: ``html`` the HTML part (rendered with HTML escaping), ``text`` the text part, a header
(``Subject`` among them) ours of that name.

SMTP's own classes: a 4xx reply is transient (retry), a 5xx one permanent; no answer at all
(refused, reset, timed out) is retried.
"""

from __future__ import annotations

import hashlib
import smtplib
import time
from collections.abc import Mapping
from email.utils import parseaddr
from pathlib import Path

from django.core.mail import EmailMultiAlternatives, get_connection
from django.template import Context, Engine

from monitoring.notify.amtemplate import TemplateSet, render_fields
from monitoring.notify.content import RESOLVED_COLOUR, alert_view, colour, title, web_url
from monitoring.notify.notification import Delivery, Notification

__all__ = ["MAX_ALERTS", "EmailChannel", "email_message"]

MAX_ALERTS = 50  # a mail longer than this is not read; the rest is counted
_SMTP_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
# The templates are read with their own engine: the monitor process has no TEMPLATES of its own.
_TEMPLATES = Engine(
    dirs=[str(Path(__file__).resolve().parent.parent / "templates")], autoescape=True
)


def _domain(address: str) -> str:
    domain = parseaddr(address)[1].rpartition("@")[2]
    return domain or "pasargad-monitor.invalid"


def email_message(
    notification: Notification,
    *,
    from_addr: str,
    to: list[str],
    now_ms: int,
    headers: dict[str, str] | None = None,
    connection=None,
    rendered: Mapping[str, str] | None = None,
) -> EmailMultiAlternatives:
    """The mail; `rendered` holds the receiver's templated fields (``html``, ``text``,
    ``headers.<Name>``), already rendered."""
    n = notification
    r = rendered or {}
    headers = dict(headers or {})
    headers.update({k.split(".", 1)[1]: v for k, v in r.items() if k.startswith("headers.")})
    subject = headers.pop("Subject", None)
    domain = _domain(from_addr)
    thread = hashlib.sha256(f"{n.receiver}\0{n.group_key}".encode()).hexdigest()[:24]
    shown = n.alerts[:MAX_ALERTS]
    context = {
        "title": title(n),
        "alerts": [alert_view(a, n, now_ms) for a in shown],
        "more": len(n.alerts) - len(shown) + n.truncated_alerts,
        "colour": colour(n),
        "resolved_colour": RESOLVED_COLOUR,
        "dashboard_url": web_url(n.dashboard_url),
        "silence_url": web_url(n.silence_url),
        "receiver": n.receiver,
        "key": n.idempotency_key,
    }
    text = r["text"] if "text" in r else None
    message = EmailMultiAlternatives(
        subject=context["title"] if subject is None else subject,
        body=_TEMPLATES.get_template("notify/email.txt").render(Context(context))
        if text is None
        else text,
        from_email=from_addr,
        to=to,
        connection=connection,
        headers={
            "Message-ID": f"<{n.idempotency_key}@{domain}>",
            "In-Reply-To": f"<group-{thread}@{domain}>",
            "References": f"<group-{thread}@{domain}>",
            "X-Idempotency-Key": n.idempotency_key,
            "X-Alert-Status": n.status,
            **headers,
        },
    )
    html = r.get("html")
    if html is None:
        html = _TEMPLATES.get_template("notify/email.html").render(Context(context))
    message.attach_alternative(html, "text/html")
    return message


class EmailChannel:
    kind = "email"

    def __init__(
        self,
        *,
        host: str,
        port: int,
        from_addr: str,
        to: list[str],
        username: str = "",
        password: str = "",
        use_tls: bool = False,
        use_ssl: bool = False,
        timeout_s: float = 10.0,
        headers: dict[str, str] | None = None,
        templates: TemplateSet | None = None,
        fields: Mapping[str, str] | None = None,
    ) -> None:
        self.host, self.port = host, port
        self.from_addr, self.to = from_addr, list(to)
        self.username, self.password = username, password
        self.use_tls, self.use_ssl = use_tls, use_ssl
        self.timeout_s = timeout_s
        self.headers = dict(headers or {})
        self.templates = templates or TemplateSet()
        self.fields = dict(fields or {})  # html, text, headers.<Name>: templates

    def send(self, notification: Notification) -> Delivery:
        if not self.to:
            return Delivery.permanent("email: no recipient address configured")
        connection = get_connection(
            backend=_SMTP_BACKEND,
            fail_silently=False,
            host=self.host,
            port=self.port,
            username=self.username,  # "" (not None): never fall back to the shop's settings
            password=self.password,
            use_tls=self.use_tls,
            use_ssl=self.use_ssl,
            timeout=self.timeout_s,
        )
        message = email_message(
            notification,
            from_addr=self.from_addr,
            to=self.to,
            now_ms=round(time.time() * 1000),
            headers=self.headers,
            connection=connection,
            rendered=render_fields(
                self.templates,
                self.fields,
                notification,
                html_fields=("html",),
                integration="email",
            ),
        )
        try:
            sent = message.send()
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            reason = f"email: every recipient refused: {_replies(exc.recipients)}"
            transient = any(400 <= code < 500 for code in codes)
            return Delivery.retryable(reason) if transient else Delivery.permanent(reason)
        except smtplib.SMTPResponseException as exc:
            reply = exc.smtp_error
            text = reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)
            reason = f"email: SMTP {exc.smtp_code} {text}"
            if 400 <= exc.smtp_code < 500:
                return Delivery.retryable(reason)
            return Delivery.permanent(reason)
        except smtplib.SMTPNotSupportedError as exc:  # e.g. STARTTLS asked of a plain server
            return Delivery.permanent(f"email: {exc}")
        except (smtplib.SMTPException, OSError) as exc:  # disconnected, refused, timed out
            return Delivery.retryable(f"email: {type(exc).__name__}: {exc}")
        if sent != 1:
            return Delivery.retryable("email: the SMTP backend sent nothing")
        return Delivery.ok()

    def close(self) -> None:
        pass  # each send opens and closes its own SMTP connection


def _replies(recipients: dict) -> str:
    return "; ".join(
        f"{addr}: {code} {msg.decode(errors='replace') if isinstance(msg, bytes) else msg}"
        for addr, (code, msg) in recipients.items()
    )
