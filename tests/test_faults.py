"""The fault helpers themselves: a fault that does not happen would make a drill pass vacuously."""

from __future__ import annotations

import socket
import threading

import pytest

from tests.faults import tcp_proxy


@pytest.fixture
def echo_server():
    listener = socket.create_server(("127.0.0.1", 0))

    def serve(conn: socket.socket) -> None:
        with conn:
            while data := conn.recv(4096):
                conn.sendall(data)

    def accept() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    yield listener.getsockname()
    listener.close()


def _echo(sock: socket.socket, data: bytes) -> bytes:
    sock.sendall(data)
    return sock.recv(4096)


def test_a_cut_proxy_closes_connections_and_refuses_new_ones_until_restored(echo_server):
    with tcp_proxy(echo_server) as proxy:
        before = socket.create_connection(("127.0.0.1", proxy.port), timeout=10)
        assert _echo(before, b"ping") == b"ping"
        proxy.cut()
        # The open connection ends (EOF or reset), as when the server goes away.
        try:
            assert _echo(before, b"lost") == b""
        except OSError:
            pass
        before.close()
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", proxy.port), timeout=10)
        port = proxy.port
        proxy.restore()
        assert proxy.port == port  # clients configured with the address reconnect
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as after:
            assert _echo(after, b"back") == b"back"
