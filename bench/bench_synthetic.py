"""The synthetic prober's own cost: N checks at a 1 s interval, CPU of the probing process.

A target server runs in a separate process (its CPU is not counted): a threading HTTP server
answering 200 with a small page, over HTTP/1.1 with a new connection per probe (the prober
opens one per probe, as blackbox_exporter does). The prober (monitoring.synthetic.Prober,
one thread per check, every check with `expected_text` so the body is read and judged) writes
into an in-memory SampleStore, as in the monitor. Measured: process CPU time (all threads) per
wall-clock second over a steady window after a warm-up, for 10 and for 100 checks, to show
how it grows. Goal (issue 15): 100 checks at 1 s use under 10 % of one core.

    python bench/bench_synthetic.py [--seconds 20] [--checks 10,100]
"""

import argparse
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.goals import verdict  # noqa: E402

GOAL_PERCENT = 10.0
SERVER = """
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
BODY = b"<!doctype html><title>Pasargad Prints</title>" + b"x" * 2000
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)
    def log_message(self, *a):
        pass
s = ThreadingHTTPServer(("127.0.0.1", 0), H)
s.daemon_threads = True
s.request_queue_size = 256
print(s.server_address[1], flush=True)
s.serve_forever()
"""


def measure(n: int, seconds: float, port: int) -> tuple[float, int]:
    from monitoring.synthetic import CheckConfig, Prober
    from monitoring.tsdb.store import SampleStore

    checks = [
        CheckConfig(
            name=f"check_{i}",
            url=f"http://127.0.0.1:{port}/page/{i}",
            expected_status=200,
            timeout_ms=5000,
            interval_s=1.0,
            expected_text="Pasargad Prints",
        )
        for i in range(n)
    ]
    store = SampleStore(retention_seconds=3600)
    prober = Prober(store, checks)
    prober.start()
    try:
        time.sleep(3.0)  # warm-up: every check's loop started and probed once
        attempts0 = sum(s.attempts for s in prober.states())
        cpu0, wall0 = time.process_time(), time.monotonic()
        time.sleep(seconds)
        cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
        attempts = sum(s.attempts for s in prober.states()) - attempts0
        failed = [s.check.name for s in prober.states() if not s.up]
    finally:
        prober.close()
    if failed:
        raise SystemExit(f"{len(failed)} checks went down during the benchmark: {failed[:5]}")
    return cpu / wall * 100, attempts


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--checks", default="10,100")
    args = parser.parse_args()
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER], stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    try:
        port = int(server.stdout.readline())
        results = {}
        for n in (int(x) for x in args.checks.split(",")):
            results[n] = measure(n, args.seconds, port)
    finally:
        server.terminate()
        server.wait()
    print(f"python {platform.python_version()}, {os.cpu_count()} cores, {args.seconds:g} s window")
    print("| checks at 1 s | probes per s | CPU % of one core | CPU ms per probe |")
    print("|---|---|---|---|")
    for n, (percent, attempts) in results.items():
        rate = attempts / args.seconds
        per_probe = percent * 10 / rate if rate else float("nan")
        print(f"| {n} | {rate:.1f} | {percent:.2f} | {per_probe:.3f} |")
    hundred = results.get(100)
    if hundred is None:
        return 0
    return verdict(hundred[0] < GOAL_PERCENT, f"100 checks use {hundred[0]:.1f} % of a core")


if __name__ == "__main__":
    sys.exit(main())
