"""Acknowledgement on the monitor's API (behind its token, as every /api/v1 path):

POST /api/v1/alerts/<fingerprint>/ack   body JSON {"by": "...", "comment": "..."} (or form)
     200 {"status":"success","data":{ack}}; 400 without `by` or bad JSON; 404 not firing
GET  /api/v1/acknowledgements           {"status":"success","data":[ack, ...]} newest first
GET  /api/v1/alerts/<fingerprint>/history  the alert's escalation steps and acks
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict

from monitoring.acknowledge import AckError, acknowledge_alert, acknowledgements, alert_history

__all__ = ["handle_ack"]

_ACK = re.compile(r"^/api/v1/alerts/([0-9a-f]{16})/(ack|history)$")

Answer = tuple[int, str, bytes]


def _json(status: int, body: dict) -> Answer:
    return status, "application/json", json.dumps(body).encode()


def _error(status: int, message: str) -> Answer:
    return _json(status, {"status": "error", "errorType": "bad_data", "error": message})


def handle_ack(monitor, method: str, path: str, params: dict, body: bytes) -> Answer | None:
    """The answer for an acknowledgement path, or None for any other path."""
    store = getattr(monitor, "state", None)
    if path == "/api/v1/acknowledgements":
        if store is None:
            return _error(503, "the monitor has no state file")
        return _json(
            200, {"status": "success", "data": [asdict(a) for a in acknowledgements(store=store)]}
        )
    match = _ACK.match(path)
    if match is None:
        return None
    if store is None:
        return _error(503, "the monitor has no state file")
    fingerprint, what = match.groups()
    if what == "history":
        if method != "GET":
            return _error(405, "GET only")
        events = [asdict(e) for e in alert_history(fingerprint, store=store)]
        return _json(200, {"status": "success", "data": events})
    if method != "POST":
        return _error(405, "POST to acknowledge")
    fields = {k: v[-1] for k, v in params.items() if v}
    if body.strip()[:1] in (b"{", b"["):  # JSON; a form is in params already
        try:
            data = json.loads(body)
        except ValueError as exc:
            return _error(400, f"body is not JSON: {exc}")
        if not isinstance(data, dict):
            return _error(400, "body must be a JSON object")
        fields.update({k: v for k, v in data.items() if isinstance(v, str)})
    by = fields.get("by", "").strip()
    if not by:
        return _error(400, "`by` (who acknowledges) is required")
    try:
        ack = acknowledge_alert(fingerprint, by, fields.get("comment", ""), store=store)
    except AckError as exc:
        return _error(404, str(exc))
    return _json(200, {"status": "success", "data": asdict(ack)})
