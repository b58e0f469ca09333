"""The channels' HTTP client (`channels/_http.py`'s `HttpClient` over libcurl's multi
interface) against a raw local TCP server that answers exactly what each test scripts:
connections kept alive and reused, a chunked answer, a kept-alive connection the server dropped
(resent once, never more), `Connection: close`, header injection refused; many requests in
flight at once, a slow one not holding up the others."""

from __future__ import annotations

import socket
import threading

import pytest

from monitoring.notify.channels._http import HttpClient
from tests.wait import wait_for

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"


class RawServer:
    """Accepts connections on 127.0.0.1, reads each request (head and Content-Length body),
    records it with its connection's number, and writes `answer(n)` for the n-th request
    (0-based); `close_after(n)` closes the connection after that answer, without saying so;
    `drop(n)` closes it on reading that request, without answering."""

    def __init__(
        self, answer=lambda n: OK, close_after=lambda n: False, drop=lambda n: False
    ) -> None:
        self.answer, self.close_after, self.drop = answer, close_after, drop
        self.requests: list[tuple[int, bytes, bytes]] = []  # (connection, head, body)
        self.connections = 0
        self.lock = threading.Lock()
        self.listener = socket.create_server(("127.0.0.1", 0))
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.listener.getsockname()[1]}/hook"

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
                number = self.connections
            threading.Thread(target=self._serve, args=(conn, number), daemon=True).start()

    def _serve(self, conn: socket.socket, number: int) -> None:
        stream = conn.makefile("rb")
        with conn, stream:
            while True:
                head = b""
                while not head.endswith(b"\r\n\r\n"):
                    line = stream.readline()
                    if not line:
                        return
                    head += line
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                body = stream.read(length)
                with self.lock:
                    n = len(self.requests)
                    self.requests.append((number, head, body))
                if self.drop(n):
                    return
                conn.sendall(self.answer(n))
                if self.close_after(n):
                    return

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def pool():
    p = HttpClient(timeout_s=5)
    yield p
    p.close()


def _post(pool: HttpClient, server: RawServer, body: bytes = b'{"a":1}'):
    return pool.post(server.url, body, {"Content-Type": "application/json"}, "webhook")


def test_one_connection_serves_every_request_and_the_request_is_whole(pool):
    server = RawServer()
    try:
        for i in range(3):
            assert _post(pool, server, b'{"n":%d}' % i).delivered
        assert server.connections == 1
        assert [body for _, _, body in server.requests] == [b'{"n":0}', b'{"n":1}', b'{"n":2}']
        head = server.requests[0][1].decode()
        assert head.startswith("POST /hook HTTP/1.1\r\n")
        assert f"Host: 127.0.0.1:{server.listener.getsockname()[1]}\r\n" in head
        assert "Content-Type: application/json\r\n" in head
        assert "Content-Length: 7\r\n" in head
    finally:
        server.close()


def test_a_chunked_refusal_is_read_quoted_and_the_connection_kept(pool):
    refusal = (
        b"HTTP/1.1 400 Bad Request\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"4\r\nbad \r\n7\r\npayload\r\n0\r\n\r\n"
    )
    server = RawServer(answer=lambda n: refusal if n == 0 else OK)
    try:
        delivery = _post(pool, server)
        assert delivery.outcome == "permanent"
        assert delivery.reason == "webhook: HTTP 400: bad payload"
        assert _post(pool, server).delivered
        assert server.connections == 1
    finally:
        server.close()


def test_a_kept_alive_connection_the_server_closed_is_replaced(pool):
    # The server closes every connection after its answer, without `Connection: close` (an
    # idle timeout): the next request goes on a fresh connection (libcurl sees the close, or
    # the request gets no answer and goes once more).
    server = RawServer(close_after=lambda n: True)
    try:
        assert _post(pool, server, b"first").delivered
        assert _post(pool, server, b"second").delivered
        assert [body for _, _, body in server.requests] == [b"first", b"second"]
        assert server.connections == 2
    finally:
        server.close()


def test_a_request_dropped_unanswered_on_a_kept_alive_connection_is_sent_once_more(pool):
    # The close races the request: the server reads the second request on the kept-alive
    # connection and closes it unanswered; it goes again, once, on a fresh connection.
    server = RawServer(drop=lambda n: n == 1)
    try:
        assert _post(pool, server, b"first").delivered
        assert _post(pool, server, b"second").delivered
        assert [(c, body) for c, _, body in server.requests] == [
            (1, b"first"),
            (1, b"second"),
            (2, b"second"),
        ]
    finally:
        server.close()


def test_a_receiver_that_never_answers_is_retryable_after_one_resend(pool):
    # The first request is answered, every later one dropped unanswered: the second, sent on
    # the kept-alive connection, goes once more on a fresh one (dropped too), never more.
    server = RawServer(drop=lambda n: n > 0)
    try:
        assert _post(pool, server, b"first").delivered
        delivery = _post(pool, server, b"second")
        assert delivery.retry and "RemoteDisconnected" in delivery.reason
        assert server.url not in delivery.reason
        assert [body for _, _, body in server.requests] == [b"first", b"second", b"second"]
        # On a fresh connection it is not resent (Go's transport resends only a request
        # that went on a reused connection): the pipeline's retry policy takes over.
        fresh = HttpClient(timeout_s=5)
        try:
            assert _post(fresh, server, b"third").retry
        finally:
            fresh.close()
        assert [body for _, _, body in server.requests][3:] == [b"third"]
    finally:
        server.close()


def test_connection_close_is_honoured_and_an_interim_answer_skipped(pool):
    answers = [
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 503 Busy\r\nContent-Length: 4\r\n\r\nbusy",
    ]
    server = RawServer(answer=lambda n: answers[n], close_after=lambda n: n == 0)
    try:
        assert _post(pool, server).delivered
        delivery = _post(pool, server)
        assert delivery.retry and delivery.reason == "webhook: HTTP 503: busy"
        assert server.connections == 2  # the closed one was not used again
    finally:
        server.close()


def test_a_header_with_a_newline_is_refused_before_anything_is_sent(pool):
    server = RawServer()
    try:
        delivery = pool.post(server.url, b"{}", {"X-Evil": "a\r\nInjected: 1"}, "webhook")
        assert delivery.outcome == "permanent" and "invalid header" in delivery.reason
        assert server.requests == []
    finally:
        server.close()


def test_many_requests_are_in_flight_at_once_and_answered_from_one_thread():
    # The server answers nothing until all 50 requests are open at once: a client sending
    # one at a time (or 8 at a time) would never get there.
    count = 50
    everyone_in = threading.Event()
    server = RawServer(answer=lambda n: OK if everyone_in.wait(60) else b"")
    client = HttpClient(timeout_s=60)
    answered: list[tuple[int, bool]] = []
    all_answered = threading.Event()

    def done(delivery) -> None:
        answered.append((threading.get_ident(), delivery.delivered))
        if len(answered) == count:
            all_answered.set()

    try:
        for i in range(count):
            client.start_post(server.url, b"%d" % i, {}, "webhook", done)
        wait_for(lambda: len(server.requests) == count, what="every request open at once")
        assert answered == []  # none answered yet: all of them in flight together
        everyone_in.set()
        assert all_answered.wait(60)
        assert {ok for _, ok in answered} == {True}
        threads = {ident for ident, _ in answered}
        assert len(threads) == 1 and threading.get_ident() not in threads
        assert sorted(int(body) for _, _, body in server.requests) == list(range(count))
    finally:
        everyone_in.set()
        client.close()
        server.close()


def test_a_receiver_that_hangs_does_not_hold_up_another(pool):
    released = threading.Event()
    slow = RawServer(answer=lambda n: OK if released.wait(60) else b"")
    fast = RawServer()
    hung: list = []
    try:
        pool.start_post(slow.url, b"slow", {}, "webhook", hung.append)
        wait_for(lambda: len(slow.requests) == 1, what="the slow request open")
        for _ in range(3):
            assert _post(pool, fast).delivered
        assert hung == []  # still open meanwhile
        released.set()
        wait_for(lambda: len(hung) == 1, what="the slow request answered")
        assert hung[0].delivered
    finally:
        released.set()
        slow.close()
        fast.close()


def test_a_bad_url_is_answered_from_the_clients_thread_not_inside_the_call(pool):
    answers: list[tuple[int, str]] = []
    pool.start_post(
        "ftp://example.com/x",
        b"",
        {},
        "webhook",
        lambda d: answers.append((threading.get_ident(), d.reason)),
    )
    assert answers == [] or answers[0][0] != threading.get_ident()
    wait_for(lambda: len(answers) == 1, what="the refusal")
    assert answers[0][0] != threading.get_ident()
    assert answers[0][1] == "webhook: not an http(s) URL"


def test_after_close_the_thread_ends_and_a_later_request_starts_it_again(pool):
    server = RawServer()
    try:
        assert _post(pool, server).delivered
        pool.close()
        wait_for(lambda: pool._thread is None, what="the client's thread ended")
        assert _post(pool, server).delivered
        assert server.connections == 2  # its connections went with it
    finally:
        server.close()
