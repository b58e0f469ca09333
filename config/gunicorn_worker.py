"""gunicorn's gthread worker, with the public health probe served by threads of its own.

A burst of requests can take every thread of the pool (each waiting on the database, or just
on the CPU); a probe queued behind them would answer late and a load balancer would take a
busy but healthy worker out. Here the poller peeks at a readable connection's first bytes:
`GET /api/health/ ` goes to a small pool kept for probes, everything else to the usual pool.
"""

from __future__ import annotations

import socket
import sys
from concurrent import futures

from gunicorn.workers.gthread import ThreadWorker

PROBE = b"GET /api/health/ "
PROBE_THREADS = 2
# A probe thread waiting for the GIL behind busy request threads gets it after this long at most
# per switch (Python's default is 5 ms; a probe re-takes the GIL after each system call).
SWITCH_INTERVAL = 0.001


class ProbeFirstWorker(ThreadWorker):
    def init_process(self) -> None:
        self.probe_pool = futures.ThreadPoolExecutor(max_workers=PROBE_THREADS)
        sys.setswitchinterval(SWITCH_INTERVAL)
        super().init_process()

    def enqueue_req(self, conn) -> None:
        try:  # the socket is still non-blocking here: what has arrived, without consuming it
            head = conn.sock.recv(len(PROBE), socket.MSG_PEEK)
        except (OSError, ValueError):  # ValueError: a TLS socket takes no flags; not a probe
            head = b""
        if head != PROBE:
            super().enqueue_req(conn)
            return
        conn.init()
        self._wrap_future(self.probe_pool.submit(self.handle, conn), conn)

    def handle_quit(self, sig, frame) -> None:
        self.probe_pool.shutdown(False)
        super().handle_quit(sig, frame)
