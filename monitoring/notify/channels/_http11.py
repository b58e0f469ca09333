"""A minimal HTTP/1.1 client connection: one request written at once, the answer read back
(status, body), kept open for the next request when the server allows it.

Why not http.client: it parses every answer's headers with the email package and writes a
request's head and body apart; for a notification that was most of its cost. This reads the
few headers that matter (Content-Length, Transfer-Encoding, Connection) and nothing else.
"""

from __future__ import annotations

import socket
import ssl

__all__ = ["Closed", "Connection", "ProtocolError"]

_MAX_LINE = 65_536
_MAX_HEADERS = 100
_MAX_BODY = 1 << 20  # a receiver's answer is a few bytes; more is read no further


class ProtocolError(Exception):
    """The server's answer is not HTTP/1.x as this client reads it."""


class Closed(ConnectionError):
    """The server closed the connection before answering (a kept-alive one it dropped)."""


class Connection:
    def __init__(
        self, host: str, port: int, *, timeout_s: float, tls: ssl.SSLContext | None = None
    ) -> None:
        self.host, self.port, self.timeout_s, self.tls = host, port, timeout_s, tls
        self.host_header = host if port in (80, 443) else f"{host}:{port}"
        if ":" in host and not host.startswith("["):  # an IPv6 literal
            self.host_header = f"[{host}]" if port in (80, 443) else f"[{host}]:{port}"
        self._sock: socket.socket | None = None
        self._file = None

    def connect(self) -> None:
        sock = socket.create_connection((self.host, self.port), timeout=self.timeout_s)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no Nagle wait
            if self.tls is not None:
                sock = self.tls.wrap_socket(sock, server_hostname=self.host)
        except BaseException:
            sock.close()
            raise
        self._sock, self._file = sock, sock.makefile("rb")

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        if self._sock is not None:
            self._sock.close()
        self._sock = self._file = None

    def post(self, target: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes, bool]:
        """(status, body, whether the connection can be used again). Raises OSError (the
        socket's), `Closed` or `ProtocolError`; the caller closes the connection then."""
        if self._sock is None:
            self.connect()
        assert self._sock is not None and self._file is not None
        lines = [f"POST {target} HTTP/1.1", f"Host: {self.host_header}"]
        for name, value in headers.items():
            if "\r" in name or "\n" in name or "\r" in value or "\n" in value or ":" in name:
                raise ValueError(f"invalid header {name!r}")
            lines.append(f"{name}: {value}")
        lines.append(f"Content-Length: {len(body)}")
        self._sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        return self._answer()

    def _line(self) -> bytes:
        assert self._file is not None
        line = self._file.readline(_MAX_LINE + 1)
        if len(line) > _MAX_LINE:
            raise ProtocolError("header line too long")
        return line

    def _answer(self) -> tuple[int, bytes, bool]:
        while True:
            status_line = self._line()
            if not status_line:
                raise Closed("the server closed the connection without answering")
            parts = status_line.split(None, 2)
            if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
                raise ProtocolError(f"not an HTTP status line: {status_line[:80]!r}")
            status = int(parts[1])
            length, chunked, close = None, False, parts[0] == b"HTTP/1.0"
            for _ in range(_MAX_HEADERS + 1):
                line = self._line()
                if line in (b"\r\n", b"\n"):
                    break
                if not line:
                    raise Closed("the server closed the connection mid-answer")
                name, _, value = line.partition(b":")
                name, value = name.strip().lower(), value.strip().lower()
                if name == b"content-length":
                    if not value.isdigit():
                        raise ProtocolError("invalid Content-Length")
                    length = int(value)
                elif name == b"transfer-encoding":
                    chunked = value.endswith(b"chunked")
                elif name == b"connection":
                    close = (
                        b"close" in value if parts[0] != b"HTTP/1.0" else b"keep-alive" not in value
                    )
            else:
                raise ProtocolError("too many headers")
            if 100 <= status < 200:
                continue  # an interim answer (100 Continue): the real one follows
            if status in (204, 304):
                return status, b"", not close
            if chunked:
                return status, self._chunked(), not close
            if length is not None:
                if length > _MAX_BODY:
                    return status, self._file.read(_MAX_BODY), False  # type: ignore[union-attr]
                body = self._file.read(length)  # type: ignore[union-attr]
                if len(body) < length:
                    raise Closed("the server closed the connection mid-answer")
                return status, body, not close
            return status, self._file.read(_MAX_BODY), False  # type: ignore[union-attr]

    def _chunked(self) -> bytes:
        assert self._file is not None
        body = bytearray()
        while True:
            size_line = self._line().split(b";", 1)[0].strip()
            try:
                size = int(size_line, 16)
            except ValueError:
                raise ProtocolError("invalid chunk size") from None
            if size == 0:
                while self._line() not in (b"\r\n", b"\n", b""):  # trailers
                    pass
                return bytes(body)
            if len(body) + size > _MAX_BODY:
                raise ProtocolError("answer too large")
            chunk = self._file.read(size)
            if len(chunk) < size:
                raise Closed("the server closed the connection mid-answer")
            body += chunk
            self._line()  # the CRLF after the chunk
