"""Diagnostic (no goal): the floor of a notifier in one Python process, beside Alertmanager.

Runs `bench_notify_latency.py`'s rounds with our monitor replaced by the least a durable
webhook notifier in Python does: parse the POSTed alerts, write one outbox row each (SQLite,
WAL, committed before any send), build Alertmanager's webhook body and send every row at once
through libcurl's multi interface in one thread, then mark the rows delivered. No routing,
grouping, inhibition, silences, time intervals, notification log, retries, idempotency key
or metrics: what is left is the interpreter's share of the work, on the same two cores,
beside the same Alertmanager, into the same receiver. When this floor ties Alertmanager and
the monitor does not, the gap is the pipeline's own work per alert, not Python's HTTP, JSON
or SQLite, and not the machine.

    python bench/notify_floor.py [--sizes 1,10,100] [--rounds 5]
"""

from __future__ import annotations

import hashlib
import io
import select
import socket
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_notify_latency as latency  # noqa: E402


class CurlSender:
    """Sends queued POSTs through libcurl's multi interface from one thread, and hands the
    marks of the delivered ones to `delivered(marks)`, a batch at a time (each floor's own
    UPDATE). Queue items: (mark, url, body, header lines)."""

    def __init__(self, delivered: Callable[[list], None]) -> None:
        self.delivered = delivered
        self._lock = threading.Lock()
        self._queue: list[tuple[object, str, bytes, list[str]]] = []
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)

    def send(self, items: list[tuple[object, str, bytes, list[str]]]) -> None:
        with self._lock:
            self._queue.extend(items)
        self._wake_w.send(b"\0")

    def run(self) -> None:
        import pycurl

        multi, idle, active = pycurl.CurlMulti(), [], {}
        multi.setopt(pycurl.M_MAXCONNECTS, 256)
        while True:
            with self._lock:
                taken, self._queue = self._queue, []
            try:
                self._wake_r.recv(64)
            except BlockingIOError:
                pass
            for mark, url, body, headers in taken:
                curl = idle.pop() if idle else pycurl.Curl()
                curl.setopt(pycurl.URL, url)
                curl.setopt(pycurl.POSTFIELDS, body)
                curl.setopt(pycurl.HTTPHEADER, headers)
                curl.setopt(pycurl.WRITEDATA, io.BytesIO())
                multi.add_handle(curl)
                active[curl] = mark
            while multi.perform()[0] == pycurl.E_CALL_MULTI_PERFORM:
                pass
            delivered = []
            while True:
                left, ok, failed = multi.info_read()
                for curl in ok + [f[0] for f in failed]:
                    multi.remove_handle(curl)
                    mark = active.pop(curl)
                    if curl in ok and 200 <= curl.getinfo(pycurl.RESPONSE_CODE) < 300:
                        delivered.append(mark)
                    idle.append(curl)
                if not left:
                    break
            if delivered:
                self.delivered(delivered)
            reading, writing, failing = multi.fdset()
            select.select([*reading, self._wake_r], writing, failing, 1.0)


def serve_alerts(port: int, take: Callable[[bytes], None], sender: CurlSender) -> None:
    """The API side of a floor: `/-/ready`, and `POST /api/v2/alerts` handed to `take` (which
    answers once its rows are committed), until killed."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802 (/-/ready)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_POST(self) -> None:  # noqa: N802
            take(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    threading.Thread(target=sender.run, daemon=True).start()
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


def serve(port: int, target: str, db_path: str) -> None:
    """The floor notifier: POST /api/v2/alerts → rows → webhook sends, until killed."""
    import orjson

    db = sqlite3.connect(db_path, check_same_thread=False, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute(
        "CREATE TABLE IF NOT EXISTS outbox (id INTEGER PRIMARY KEY, key TEXT UNIQUE,"
        " body BLOB, status TEXT)"
    )
    db_lock = threading.Lock()
    headers = ["Content-Type: application/json", "Expect:"]

    def delivered(keys: list) -> None:
        with db_lock:
            db.executemany(
                "UPDATE outbox SET status = 'delivered' WHERE key = ?", [(k,) for k in keys]
            )

    sender = CurlSender(delivered)

    def take(body: bytes) -> None:
        rows = []
        for alert in orjson.loads(body):
            labels = alert["labels"]
            key = hashlib.sha256(orjson.dumps(labels, option=orjson.OPT_SORT_KEYS)).hexdigest()
            message = orjson.dumps(
                {
                    "version": "4",
                    "status": "firing",
                    "receiver": "bench",
                    "groupKey": key,
                    "alerts": [
                        {
                            "status": "firing",
                            "labels": labels,
                            "annotations": alert.get("annotations", {}),
                        }
                    ],
                }
            )
            rows.append((key, message, "pending"))
        with db_lock:
            db.execute("BEGIN IMMEDIATE")
            db.executemany(
                "INSERT OR IGNORE INTO outbox (key, body, status) VALUES (?, ?, ?)", rows
            )
            db.execute("COMMIT")
        sender.send([(key, target, message, headers) for key, message, _ in rows])

    serve_alerts(port, take, sender)


def start_serving(script: str, args: list[str], env: dict | None = None):
    """Start `script --serve PORT *args` and wait until it answers: (process, its URL)."""
    port = latency.free_port()
    process = subprocess.Popen([sys.executable, script, "--serve", str(port), *args], env=env)
    url = f"http://127.0.0.1:{port}"
    latency._ready(url)
    return process, url


def run(serve, start) -> None:
    """`--serve PORT ARGS…`: serve; otherwise the latency bench with `start` in place of the
    monitor (the verdict printed is for the stand-in: no exit status)."""
    if sys.argv[1:2] == ["--serve"]:
        serve(int(sys.argv[2]), *sys.argv[3:])
    else:
        latency.start_monitor = start
        latency.main()


def start_floor(workdir: Path, config_text: str, token: str) -> tuple[subprocess.Popen, str]:
    """In place of `latency.start_monitor`: the floor notifier, sending where the config says."""
    target = config_text.split("url: ", 1)[1].split()[0]
    return start_serving(__file__, [target, str(workdir / "floor.sqlite3")])


if __name__ == "__main__":
    run(serve, start_floor)
