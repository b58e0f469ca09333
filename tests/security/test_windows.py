"""The shared per-minute counts: exact across processes, sliding across window boundaries."""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
import time
from pathlib import Path

from security.windows import SharedWindows

ROOT = Path(__file__).resolve().parents[2]


def _hammer(path: str, start, results) -> None:
    windows = SharedWindows(path)
    start.wait()
    now = time.time()
    allowed = sum(windows.hit("rl:1.2.3.4", 1000, 3600, now)[0] for _ in range(400))
    results.put(allowed)


def four_forked_processes(path: str) -> list[int]:
    """What each of four forked processes let through of its 400 hits on one key (limit
    1,000), the file mapped by their parent first, as gunicorn's master does."""
    SharedWindows(path).count("x", 60, time.time())
    ctx = multiprocessing.get_context("fork")
    start, results = ctx.Event(), ctx.Queue()
    workers = [ctx.Process(target=_hammer, args=(path, start, results)) for _ in range(4)]
    for w in workers:
        w.start()
    start.set()
    allowed = [results.get(timeout=60) for _ in workers]
    for w in workers:
        w.join(timeout=60)
    return allowed


def test_four_processes_share_one_count_exactly(tmp_path):
    # Forked from a fresh interpreter: a pytest worker has other tests' threads, and a fork
    # taken while one of them holds a lock leaves the child waiting on it for ever.
    out = subprocess.run(
        [sys.executable, "-c", "import sys; from tests.security.test_windows import "
         "four_forked_processes as f; print(sum(f(sys.argv[1])))", str(tmp_path / "c.bin")],
        cwd=ROOT, capture_output=True, text=True, timeout=180, check=True,
    )  # fmt: skip
    assert int(out.stdout) == 1000, out  # 1,600 tried, exactly the limit let through


def test_the_previous_window_counts_by_its_overlap(tmp_path):
    windows = SharedWindows(tmp_path / "c.bin")
    period = 60.0
    start = 6000.0  # a window boundary
    for _ in range(100):
        assert windows.hit("k", 100, period, start + 30)[0]
    allowed, count, wait = windows.hit("k", 100, period, start + 59)
    assert not allowed and count == 100 and wait == 1
    # 15 s into the next window, 3/4 of the last one still overlaps: 75 counted, 25 more pass.
    passed = sum(windows.hit("k", 100, period, start + 75)[0] for _ in range(40))
    assert passed == 25
    allowed, _, wait = windows.hit("k", 100, period, start + 75)
    # The previous window's share shrinks by 100/60 a second: a second later (73.3) two pass.
    assert not allowed and wait == 1
    assert sum(windows.hit("k", 100, period, start + 76)[0] for _ in range(5)) == 2
    assert windows.count("k", period, start + 130) == 27 * (1 - 10 / 60)


def test_other_keys_and_other_limits_are_apart(tmp_path):
    windows = SharedWindows(tmp_path / "c.bin", slots=8)
    now = 1000.0
    for key in ("a", "b", "c"):
        assert windows.hit(key, 2, 60, now)[0] and windows.hit(key, 2, 60, now)[0]
        assert not windows.hit(key, 2, 60, now)[0]
    assert windows.hit("a", 2, 60, now + 121)[0]  # two windows later: forgotten
