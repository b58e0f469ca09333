"""One probe attempt: an HTTP request judged against its check, as blackbox_exporter's http
prober judges one (status, body text, JSON path, TLS certificate expiry)."""

from __future__ import annotations

import json
import ssl
import time
from calendar import timegm
from dataclasses import dataclass

import httpx

from monitoring.synthetic.config import CheckConfig

__all__ = ["ProbeResult", "client_for", "der_not_after", "probe_once"]

USER_AGENT = "pasargad-synthetic/1.0"
MAX_BODY = 1 << 20  # bytes read to judge expected_text / json_path


@dataclass(frozen=True)
class ProbeResult:
    success: bool
    duration_s: float
    status_code: int = 0  # 0: no HTTP answer (as blackbox_exporter reports it)
    cert_not_after: float | None = None  # unix seconds, https only
    error: str = ""


def client_for(*, insecure_skip_verify: bool, ca_file: str | None) -> httpx.Client:
    """A client for checks with these TLS options. No keep-alive: each probe opens its own
    connection (and TLS handshake), as blackbox_exporter does, so it measures what a new
    visitor meets and sees the certificate currently served."""
    if insecure_skip_verify:
        verify: ssl.SSLContext | bool = False
    elif ca_file:
        verify = ssl.create_default_context(cafile=ca_file)
    else:
        verify = True
    return httpx.Client(
        verify=verify,
        follow_redirects=True,
        limits=httpx.Limits(max_keepalive_connections=0),
        headers={"User-Agent": USER_AGENT},
    )


def probe_once(client: httpx.Client, check: CheckConfig) -> ProbeResult:
    started = time.perf_counter()
    status, not_after = 0, None
    try:
        with client.stream(
            check.method,
            check.url,
            headers=dict(check.headers),
            content=check.body.encode() if check.body is not None else None,
            timeout=check.timeout_ms / 1000,
        ) as response:
            status = response.status_code
            not_after = _cert_not_after(response)
            body = b""
            if check.expected_text is not None or check.json_path is not None:
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) >= MAX_BODY:
                        break
        error = _judge(check, status, body)
    except httpx.TimeoutException:
        error = f"timeout after {check.timeout_ms} ms"
    except (httpx.HTTPError, ssl.SSLError, OSError) as exc:
        error = str(exc) or type(exc).__name__
    return ProbeResult(
        success=not error,
        duration_s=time.perf_counter() - started,
        status_code=status,
        cert_not_after=not_after,
        error=error,
    )


def _judge(check: CheckConfig, status: int, body: bytes) -> str:
    """Why the answer fails the check ('' when it passes)."""
    if status != check.expected_status:
        return f"status {status}, expected {check.expected_status}"
    if check.expected_text is not None and check.expected_text.encode() not in body:
        return f"body does not contain {check.expected_text!r}"
    if check.json_path is not None:
        try:
            value = json.loads(body)
            for step in check.json_path:
                value = value[step]
        except (ValueError, KeyError, IndexError, TypeError):
            return "body has no value at json_path"
        if check.json_value is not None and _text(value) != check.json_value:
            return f"json_path value {_text(value)!r}, expected {check.json_value!r}"
    return ""


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else json.dumps(value)


def _cert_not_after(response: httpx.Response) -> float | None:
    stream = response.extensions.get("network_stream")
    ssl_object = stream.get_extra_info("ssl_object") if stream is not None else None
    if ssl_object is None:
        return None
    der = ssl_object.getpeercert(True)  # DER, also when not verified
    return der_not_after(der) if der else None


# -- the certificate's notAfter, read from its DER (the standard library parses a certificate
# only when it verified it; insecure_skip_verify probes must still report expiry) ------------
def _tlv(data: bytes, at: int) -> tuple[int, int, int]:
    """(tag, start of value, end of value) of the DER element at ``at``."""
    tag, length = data[at], data[at + 1]
    at += 2
    if length & 0x80:
        count = length & 0x7F
        length = int.from_bytes(data[at : at + count], "big")
        at += count
    return tag, at, at + length


def der_not_after(der: bytes) -> float | None:
    """Certificate ::= SEQ { tbs SEQ { [0] version?, serial, sigAlg, issuer, validity SEQ {
    notBefore, notAfter }, … } }: notAfter in unix seconds, None when it is not that shape."""
    try:
        _, cert_start, _ = _tlv(der, 0)
        _, at, _ = _tlv(der, cert_start)  # tbsCertificate
        tag, _, end = _tlv(der, at)
        if tag == 0xA0:  # explicit version
            at = end
        for _ in range(3):  # serial, signature algorithm, issuer
            _, _, at = _tlv(der, at)
        _, validity, _ = _tlv(der, at)
        _, _, after_not_before = _tlv(der, validity)
        tag, start, end = _tlv(der, after_not_before)
        text = der[start:end].decode("ascii").rstrip("Z")
        if tag == 0x17:  # UTCTime YYMMDDHHMMSS
            year = int(text[:2])
            text = f"{1900 + year if year >= 50 else 2000 + year}{text[2:]}"
        elif tag != 0x18:  # GeneralizedTime YYYYMMDDHHMMSS
            return None
        parts = (text[0:4], text[4:6], text[6:8], text[8:10], text[10:12], text[12:14])
        return float(timegm(tuple(int(p) for p in parts) + (0, 0, 0)))
    except (IndexError, ValueError):
        return None
