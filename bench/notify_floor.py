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
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_notify_latency as latency  # noqa: E402


def serve(port: int, target: str, db_path: str) -> None:
    """The floor notifier: POST /api/v2/alerts → rows → webhook sends, until killed."""
    import orjson
    import pycurl

    db = sqlite3.connect(db_path, check_same_thread=False, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute(
        "CREATE TABLE IF NOT EXISTS outbox (id INTEGER PRIMARY KEY, key TEXT UNIQUE,"
        " body BLOB, status TEXT)"
    )
    db_lock, queue_lock = threading.Lock(), threading.Lock()
    queue: list[tuple[str, bytes]] = []
    wake_r, wake_w = socket.socketpair()
    wake_r.setblocking(False)

    def sender() -> None:
        multi, idle, active = pycurl.CurlMulti(), [], {}
        while True:
            with queue_lock:
                taken, queue[:] = list(queue), []
            try:
                wake_r.recv(64)
            except BlockingIOError:
                pass
            for key, body in taken:
                curl = idle.pop() if idle else pycurl.Curl()
                curl.setopt(pycurl.URL, target)
                curl.setopt(pycurl.POSTFIELDS, body)
                curl.setopt(pycurl.HTTPHEADER, ["Content-Type: application/json", "Expect:"])
                curl.setopt(pycurl.WRITEDATA, io.BytesIO())
                multi.add_handle(curl)
                active[curl] = key
            while multi.perform()[0] == pycurl.E_CALL_MULTI_PERFORM:
                pass
            delivered = []
            while True:
                left, ok, failed = multi.info_read()
                for curl in ok + [f[0] for f in failed]:
                    multi.remove_handle(curl)
                    key = active.pop(curl)
                    if curl in ok:
                        delivered.append((key,))
                    idle.append(curl)
                if not left:
                    break
            if delivered:
                with db_lock:
                    db.executemany(
                        "UPDATE outbox SET status = 'delivered' WHERE key = ?", delivered
                    )
            reading, writing, failing = multi.fdset()
            select.select([*reading, wake_r], writing, failing, 1.0)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802 (/-/ready)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_POST(self) -> None:  # noqa: N802
            alerts = orjson.loads(self.rfile.read(int(self.headers["Content-Length"])))
            rows = []
            for alert in alerts:
                labels = alert["labels"]
                key = hashlib.sha256(orjson.dumps(labels, option=orjson.OPT_SORT_KEYS)).hexdigest()
                body = orjson.dumps(
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
                rows.append((key, body, "pending"))
            with db_lock:
                db.execute("BEGIN IMMEDIATE")
                db.executemany(
                    "INSERT OR IGNORE INTO outbox (key, body, status) VALUES (?, ?, ?)", rows
                )
                db.execute("COMMIT")
            with queue_lock:
                queue.extend((key, body) for key, body, _ in rows)
            wake_w.send(b"\0")
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    threading.Thread(target=sender, daemon=True).start()
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


def start_floor(workdir: Path, config_text: str, token: str) -> tuple[subprocess.Popen, str]:
    """In place of `latency.start_monitor`: the floor notifier, sending where the config says."""
    port = latency.free_port()
    target = config_text.split("url: ", 1)[1].split()[0]
    process = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(port), target, str(workdir / "floor.sqlite3")]
    )
    url = f"http://127.0.0.1:{port}"
    latency._ready(url)
    return process, url


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve"]:
        serve(int(sys.argv[2]), sys.argv[3], sys.argv[4])
    else:
        latency.start_monitor = start_floor
        latency.main()  # the verdict is for the floor, not our monitor: no exit status
