"""One probe attempt: an HTTP request judged against its check, as blackbox_exporter's http
prober judges one (status, body text, JSON path, TLS certificate expiry).

Built on the standard library's http.client, not httpx: a probe costs about a third of the
CPU (bench/bench_synthetic.py), which is what lets a hundred checks a second stay under 10 %
of a core. Each probe opens its own connection (and TLS handshake), as blackbox_exporter does,
so it measures what a new visitor meets and sees the certificate currently served; redirects
are followed (up to 10), as browsers and blackbox_exporter do. The timeout bounds the whole
attempt: every connect and read waits at most what is left of it.
"""

from __future__ import annotations

import http.client
import json
import ssl
import time
from calendar import timegm
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

from monitoring.synthetic.config import CheckConfig

__all__ = ["ProbeResult", "der_not_after", "probe_once", "tls_context"]

USER_AGENT = "pasargad-synthetic/1.0"
MAX_BODY = 1 << 20  # bytes read to judge expected_text / json_path
MAX_REDIRECTS = 10
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


@dataclass(frozen=True)
class ProbeResult:
    success: bool
    duration_s: float
    status_code: int = 0  # 0: no HTTP answer (as blackbox_exporter reports it)
    cert_not_after: float | None = None  # unix seconds, https only
    error: str = ""


class _Timeout(Exception):
    pass


def tls_context(*, insecure_skip_verify: bool, ca_file: str | None) -> ssl.SSLContext:
    """The TLS settings of checks with these options (shared: a context is thread-safe)."""
    context = ssl.create_default_context(cafile=ca_file)
    if insecure_skip_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def probe_once(check: CheckConfig, context: ssl.SSLContext | None = None) -> ProbeResult:
    started = time.perf_counter()
    deadline = started + check.timeout_ms / 1000
    status, not_after = 0, None
    try:
        status, not_after, body = _fetch(check, context, deadline)
        error = _judge(check, status, body)
    except (_Timeout, TimeoutError):
        error = f"timeout after {check.timeout_ms} ms"
    except (http.client.HTTPException, OSError, ValueError) as exc:  # ssl.SSLError is OSError
        error = str(exc) or type(exc).__name__
    return ProbeResult(
        success=not error,
        duration_s=time.perf_counter() - started,
        status_code=status,
        cert_not_after=not_after,
        error=error,
    )


def _left(deadline: float) -> float:
    left = deadline - time.perf_counter()
    if left <= 0:
        raise _Timeout
    return left


def _fetch(
    check: CheckConfig, context: ssl.SSLContext | None, deadline: float
) -> tuple[int, float | None, bytes]:
    url, method = check.url, check.method
    body = check.body.encode() if check.body is not None else None
    headers = {"User-Agent": USER_AGENT, "Accept": "*/*", **dict(check.headers)}
    not_after = None
    for _ in range(MAX_REDIRECTS + 1):
        parts = urlsplit(url)
        if parts.scheme == "https":
            context = context or tls_context(insecure_skip_verify=False, ca_file=None)
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                parts.hostname, parts.port, timeout=_left(deadline), context=context
            )
        elif parts.scheme == "http":
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=_left(deadline))
        else:
            raise ValueError(f"cannot follow a redirect to {url!r}")
        try:
            target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            conn.request(method, target, body=body, headers=headers)
            conn.sock.settimeout(_left(deadline))
            response = conn.getresponse()
            if parts.scheme == "https" and not_after is None:
                der = conn.sock.getpeercert(True)  # DER, also when not verified
                not_after = der_not_after(der) if der else None
            location = response.getheader("Location")
            if response.status in _REDIRECTS and location:
                url = urljoin(url, location)
                if response.status == 303 or (response.status in (301, 302) and method == "POST"):
                    method, body = "GET", None  # as browsers do
                continue
            data = b""
            if check.expected_text is not None or check.json_path is not None:
                while len(data) < MAX_BODY:
                    conn.sock.settimeout(_left(deadline))
                    chunk = response.read1(65536)
                    if not chunk:
                        break
                    data += chunk
            return response.status, not_after, data
        finally:
            conn.close()
    raise ValueError(f"more than {MAX_REDIRECTS} redirects")


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
