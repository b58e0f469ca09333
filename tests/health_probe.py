"""`python -m tests.health_probe URL`: GET URL every 20 ms until SIGTERM, printing each answer's
status and latency (seconds) as a line. A process of its own, so what it measures is the
server's answer time, not the test process's threads competing for the GIL."""

from __future__ import annotations

import http.client
import signal
import sys
import time
from urllib.parse import urlsplit


def main(url: str) -> None:
    parts = urlsplit(url)
    stopping = False

    def stop(signum, frame) -> None:  # noqa: ARG001
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    while not stopping:
        started = time.perf_counter()
        try:
            conn.request("GET", parts.path)
            response = conn.getresponse()
            response.read()
            status = response.status
        except (OSError, http.client.HTTPException):
            conn.close()  # a keep-alive connection the server closed: a new one next time
            status = 0
        print(status, f"{time.perf_counter() - started:.6f}", flush=True)
        time.sleep(0.02)


if __name__ == "__main__":
    main(sys.argv[1])
