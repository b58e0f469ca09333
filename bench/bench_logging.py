"""Cost per log record: our JSON logging (context, redaction, counters) vs plain python-json-logger.

Both log the same record through a real logger to /dev/null, side by side in one run, in
interleaved rounds; the median round's CPU time is reported. Goal (issue 4): at most 1.5x the baseline.

    python bench/bench_logging.py [--records 20000] [--rounds 7]
"""

import argparse
import atexit
import logging
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.goals import verdict  # noqa: E402

GOAL = 1.5
EXTRA = {"order_id": "ORDER-12345", "payment_method": "stripe", "error_code": "card_declined"}


def make_logger(name: str, handlers: list[logging.Handler]) -> logging.Logger:
    logger = logging.getLogger(f"bench.{name}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    for handler in handlers:
        logger.addHandler(handler)
    return logger


def per_record_us(logger: logging.Logger, records: int) -> float:
    info = logger.info
    # CPU time of this process: other work on a shared machine does not count against either.
    started = time.process_time()
    for index in range(records):
        info("Payment processing failed for order %s", index, extra=EXTRA)
    return (time.process_time() - started) / records * 1e6


def use_multiprocess_counters() -> None:
    """Counters as under gunicorn: prometheus_client's mmap files. Before its first import."""
    if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        directory = tempfile.mkdtemp(prefix="bench-logging-")
        atexit.register(shutil.rmtree, directory, True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory


def run(records: int, rounds: int) -> dict:
    from pythonjsonlogger.json import JsonFormatter as PlainJsonFormatter

    from monitoring.logging.context import request_id_var, user_id_var
    from monitoring.logging.counters import LogCounterHandler
    from monitoring.logging.formatters import JsonFormatter

    sink = open(os.devnull, "w")  # noqa: SIM115 - closed below
    plain = logging.StreamHandler(sink)
    plain.setFormatter(
        PlainJsonFormatter("{asctime}{levelname}{name}{message}", style="{", timestamp=True)
    )
    ours = logging.StreamHandler(sink)
    ours.setFormatter(JsonFormatter(environment="production"))
    baseline = make_logger("plain", [plain])
    full = make_logger("ours", [ours, LogCounterHandler()])
    # Ours runs inside a request context, as in the web workers.
    rid, uid = request_id_var.set("req-abc123"), user_id_var.set(12345)
    try:
        per_record_us(baseline, records // 10), per_record_us(full, records // 10)  # warm up
        plain_us, ours_us = [], []
        for _ in range(rounds):
            plain_us.append(per_record_us(baseline, records))
            ours_us.append(per_record_us(full, records))
    finally:
        request_id_var.reset(rid)
        user_id_var.reset(uid)
        sink.close()
    plain_median, ours_median = statistics.median(plain_us), statistics.median(ours_us)
    return {
        "records": records,
        "rounds": rounds,
        "plain_us": plain_median,
        "ours_us": ours_median,
        "ratio": ours_median / plain_median,
        "counters": "multiprocess" if os.environ.get("PROMETHEUS_MULTIPROC_DIR") else "in-process",
    }


def report(result: dict) -> str:
    verdict = "meets" if result["ratio"] <= GOAL else "MISSES"
    return "\n".join(
        [
            f"Python {platform.python_version()} on {platform.machine()}, "
            f"{result['records']} records x {result['rounds']} rounds (median round), "
            f"counters: {result['counters']}",
            "",
            "| logging path | CPU µs per record |",
            "|---|---|",
            f"| plain python-json-logger (JsonFormatter) | {result['plain_us']:.2f} |",
            f"| ours: JSON + request context + redaction + counters | {result['ours_us']:.2f} |",
            "",
            f"ratio {result['ratio']:.2f}x: {verdict} the goal of at most {GOAL}x",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(argv)
    use_multiprocess_counters()
    result = run(args.records, args.rounds)
    print(report(result))
    return verdict(result["ratio"] <= GOAL)


if __name__ == "__main__":
    sys.exit(main())
