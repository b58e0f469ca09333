"""Broken dependencies for fault tests: a closed port and a server that accepts and never answers."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager


def closed_port() -> int:
    """A port nothing listens on (bound, then released: connecting is refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class HungServer:
    """Accepts connections on 127.0.0.1 and never sends a byte: a hung Redis or PostgreSQL."""

    def __init__(self) -> None:
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self._listener.settimeout(0.1)
        self.port: int = self._listener.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted.append(conn)  # held open, never read from or written to

    def clients_gone(self) -> int:
        """How many accepted connections the client has closed (TCP CLOSE_WAIT here): a client
        that gave up on its own timeout, as libpq does after its connect timeout."""
        close_wait = 8  # Linux's TCP_CLOSE_WAIT, the first byte of struct tcp_info
        return sum(
            conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0] == close_wait
            for conn in self.accepted
        )

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        for conn in self.accepted:
            conn.close()
        self._listener.close()


@contextmanager
def hung_server() -> Iterator[HungServer]:
    server = HungServer()
    try:
        yield server
    finally:
        server.close()


def sample_value(metric, name: str, **labels: str) -> float | None:
    """A sample of one metric object (counter, histogram...), whatever registry holds it."""
    for family in metric.collect():
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    return None
