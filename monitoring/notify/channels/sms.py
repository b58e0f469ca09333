"""SMS through a Twilio-compatible REST API: ``POST {api_url}/2010-04-01/Accounts/{sid}/
Messages.json`` with HTTP basic auth (sid, token) and the form fields ``To``, ``From``,
``Body``; one request per recipient.

One message, one segment: an on-call phone shows the essentials (status or severity, alert
name, instance, a short summary) and the engineer opens email or Slack for the rest. A segment
is 160 GSM-7 septets (the characters of the ``^{}\\[~]|€`` escape table count two), or 70 UTF-16
units when any character is outside GSM-7 (UCS-2). Typographic punctuation is first replaced by
its GSM-7 look-alike, so one dash does not cost 90 characters; the summary is cut to fit.

Twilio takes no request idempotency key; ours travels as a header for a relay that does.
"""

from __future__ import annotations

import base64
import threading
import unicodedata
from urllib.parse import urlencode

from monitoring.acknowledge.links import ack_url
from monitoring.notify.channels._http import Done, HttpClient, wait_for_outcome
from monitoring.notify.notification import Delivery, Notification

__all__ = ["SMSChannel", "sms_body", "sms_length", "SEGMENT_GSM7", "SEGMENT_UCS2"]

SEGMENT_GSM7 = 160  # septets
SEGMENT_UCS2 = 70  # UTF-16 code units

# GSM 03.38: the basic character set, and the extension table reached by an escape (2 septets).
_GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXTENDED = frozenset("^{}\\[~]|€\f")
_LOOKALIKES = str.maketrans(
    {"‘": "'", "’": "'", "“": '"', "”": '"', "–": "-", "—": "-", "…": "...", "\t": " "}
)
_ELLIPSIS = "..."


def sms_length(text: str) -> tuple[str, int]:
    """(encoding, length in that encoding's units): ("gsm7", septets) or ("ucs2", units)."""
    if all(c in _GSM7_BASIC or c in _GSM7_EXTENDED for c in text):
        return "gsm7", sum(2 if c in _GSM7_EXTENDED else 1 for c in text)
    return "ucs2", len(text.encode("utf-16-le")) // 2


def _fits(text: str) -> bool:
    encoding, length = sms_length(text)
    return length <= (SEGMENT_GSM7 if encoding == "gsm7" else SEGMENT_UCS2)


def _plain(text: str) -> str:
    """Typographic punctuation and accents folded to GSM-7 where a look-alike exists."""
    text = " ".join(text.translate(_LOOKALIKES).split())
    out = []
    for char in text:
        if char in _GSM7_BASIC or char in _GSM7_EXTENDED:
            out.append(char)
            continue
        folded = "".join(
            c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c)
        )
        out.append(folded or char)
    return "".join(out)


def sms_body(notification: Notification) -> str:
    """``CRITICAL HighPaymentFailureRate web-1: Payment failure rate high (+2 more)``, one
    segment: the head (status, name, instance, count) is kept, the summary is cut to fit."""
    alerts = notification.firing or notification.resolved
    first = alerts[0] if alerts else None
    if first is None:
        return "(empty notification)"
    if notification.status == "firing":
        status = (first.labels.get("severity") or "alert").upper()
    else:
        status = "RESOLVED"
    level = first.annotations.get("escalation_level", "")  # a level's message: "L2 CRITICAL"
    head = " ".join(
        x
        for x in (level and f"L{level}", status, first.name, first.labels.get("instance", ""))
        if x
    )
    others = len(alerts) - 1 + notification.truncated_alerts
    tail = f" (+{others} more)" if others else ""
    if notification.status == "firing":
        link = ack_url(first.fingerprint)  # short enough for the segment (~60 characters)
        tail += f" Ack: {link}" if link else ""
    summary = first.annotations.get("summary", "")
    head, summary = _plain(head), _plain(summary)
    body = f"{head}: {summary}{tail}" if summary else head + tail
    if _fits(body):
        return body
    # Cut the summary first, a word boundary when there is one, then the head itself.
    for cut in range(min(len(summary), SEGMENT_GSM7), -1, -1):  # no summary fits in more
        shortened = summary[:cut].rstrip()
        space = shortened.rfind(" ")
        if space > cut // 2:
            shortened = shortened[:space]
        candidate = f"{head}: {shortened}{_ELLIPSIS}{tail}" if shortened else head + tail
        if _fits(candidate):
            return candidate
    for cut in range(min(len(head), SEGMENT_GSM7), 0, -1):
        candidate = head[:cut] + _ELLIPSIS
        if _fits(candidate):
            return candidate
    return _ELLIPSIS


class SMSChannel:
    kind = "sms"

    def __init__(
        self,
        *,
        api_url: str,
        account_sid: str,
        auth_token: str,
        from_number: str,
        to: list[str],
        timeout_s: float = 10.0,
    ) -> None:
        self.url = f"{api_url.rstrip('/')}/2010-04-01/Accounts/{account_sid}/Messages.json"
        self.from_number = from_number
        self.to = list(to)
        self._client = HttpClient(timeout_s)
        credentials = f"{account_sid}:{auth_token}".encode()
        self._authorization = "Basic " + base64.b64encode(credentials).decode()

    def start_send(self, notification: Notification, done: Done) -> None:
        """One message per number, all at once; any failure fails the notification (a retry
        re-sends to every number: a phone may get the message twice, never not at all)."""
        if not self.to:
            self._client.answer(Delivery.permanent("sms: no recipient number configured"), done)
            return
        body = sms_body(notification)
        answers: list[Delivery | None] = [None] * len(self.to)
        lock = threading.Lock()

        def answered(index: int, delivery: Delivery) -> None:
            with lock:
                answers[index] = delivery
                if any(a is None for a in answers):
                    return
            worst = Delivery.ok()
            for a in answers:  # the numbers' order: the first permanent failure, else failure
                if a.outcome == "permanent" or (not a.delivered and worst.delivered):
                    worst = a
            done(worst)

        for index, number in enumerate(self.to):
            form = {"To": number, "From": self.from_number, "Body": body}
            self._client.start_post(
                self.url,
                urlencode(form).encode(),
                {
                    "Content-Type": "application/x-www-form-urlencoded",
                    "Authorization": self._authorization,
                    "Idempotency-Key": f"{notification.idempotency_key}-{number}",
                },
                "sms",
                lambda delivery, index=index: answered(index, delivery),
            )

    def send(self, notification: Notification) -> Delivery:
        return wait_for_outcome(lambda done: self.start_send(notification, done))

    def close(self) -> None:
        self._client.close()
