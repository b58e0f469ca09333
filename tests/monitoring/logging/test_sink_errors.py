"""A log sink that fails (LOG_DIR read-only, a full disk): the app goes on, the lost lines are
counted in log_write_errors_total, stderr hears of it once a minute, and no half line stays.

The faults are real: /dev/full answers every write with ENOSPC; a file-size limit
(RLIMIT_FSIZE) cuts a write short exactly as a disk that fills up in the middle of a line does;
with root, a 64 KB tmpfs fills up for real and a read-only tmpfs refuses the files (without
root, a directory without write permission).
"""

import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from monitoring.logging import sink_errors
from monitoring.logging.config import logging_config
from monitoring.logging.handlers import AppendFileHandler
from monitoring.metrics import sample_values
from tests.gunicorn import Gunicorn

ROOT = Path(__file__).resolve().parents[3]


def _write_errors() -> float:
    return sum(
        v for name, _, v in sample_values("log_write_errors_total") if name.endswith("total")
    )


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def reports(monkeypatch):
    """The process's reporter, with a clock the test moves and a stream it reads."""
    stream, clock = io.StringIO(), Clock()
    reporter = sink_errors.Reporter(clock=clock, stream=lambda: stream)
    monkeypatch.setattr(sink_errors, "REPORTER", reporter)
    reporter.clock_ = clock
    reporter.text = stream.getvalue
    return reporter


def _logger(handler: logging.Handler) -> logging.Logger:
    logger = logging.getLogger(f"tests.sink.{id(handler)}")
    logger.propagate = False
    logger.addHandler(handler)
    return logger


def test_a_full_disk_loses_lines_quietly_counted_and_reported_once_a_minute(tmp_path, reports):
    (tmp_path / "app.log").symlink_to("/dev/full")
    handler = AppendFileHandler(tmp_path / "app.log")
    logger = _logger(handler)
    before = _write_errors()
    try:
        for n in range(500):
            logger.warning("line %d", n)  # never raises, never a traceback
        assert _write_errors() == before + 500
        [report] = reports.text().splitlines()
        assert f"cannot write to {tmp_path / 'app.log'}: No space left on device" in report
        assert "1 log line lost" in report
        reports.clock_.now += 59.9
        handler.write_line("the access log's direct path")
        assert len(reports.text().splitlines()) == 1  # not yet: once a minute
        reports.clock_.now += 0.1
        logger.warning("a minute later")
        last = reports.text().splitlines()[-1]
        assert "501 log lines lost since the last report" in last
        assert _write_errors() == before + 502
    finally:
        logger.removeHandler(handler)
        handler.close()


# A child process with a file-size limit: its writes stop at LIMIT bytes, the one crossing it
# is cut short (then EFBIG), like a disk filling up in the middle of a line.
CHILD = """
import json, logging, resource, signal, sys
sys.path.insert(0, {root!r})
from monitoring.logging.handlers import AppendFileHandler
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of being killed
resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))
handler = AppendFileHandler(sys.argv[1])
logger = logging.getLogger("child")
logger.addHandler(handler)
logger.propagate = False
for n in range(400):
    logger.warning(json.dumps({{"n": n, "pad": "x" * (50 + n * 37 % 400)}}))
print("done")
"""


def test_a_line_the_disk_cuts_short_is_taken_back_whole(tmp_path):
    log = tmp_path / "app.log"
    limit = 20_011  # no line ends exactly there
    child = subprocess.run(
        [sys.executable, "-c", CHILD.format(root=str(ROOT), limit=limit), str(log)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == 0 and child.stdout == "done\n", child.stderr
    text = log.read_text()
    assert text.endswith("\n") and len(text) < limit
    lines = [json.loads(line) for line in text.splitlines()]  # no half line
    assert [line["n"] for line in lines] == list(range(len(lines)))
    # Reported once, no traceback per line.
    assert "Traceback" not in child.stderr
    [report] = child.stderr.splitlines()
    assert "File too large" in report and "1 log line lost" in report


def _can_mount() -> bool:
    if os.geteuid() != 0:
        return False
    probe = Path("/proc/self/status").read_text()
    effective = int(
        next(line for line in probe.splitlines() if line.startswith("CapEff")).split()[1], 16
    )
    return bool(effective & (1 << 21))  # CAP_SYS_ADMIN


@pytest.fixture
def tmpfs(tmp_path):
    """mount(tmpfs) at a fresh directory, unmounted after the test."""
    mounts = []

    def mount(name: str, options: str) -> Path:
        if not _can_mount():
            pytest.skip("mounting a tmpfs needs root with CAP_SYS_ADMIN")
        target = tmp_path / name
        target.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)], check=True)
        mounts.append(target)
        return target

    yield mount
    for target in mounts:
        subprocess.run(["umount", str(target)], check=False)


def test_a_real_full_disk_keeps_whole_lines_only(tmpfs, reports):
    disk = tmpfs("small", "size=64k")
    handler = AppendFileHandler(disk / "app.log")
    logger = _logger(handler)
    before = _write_errors()
    try:
        for n in range(600):
            logger.warning(json.dumps({"n": n, "pad": "y" * (100 + n * 53 % 700)}))
    finally:
        logger.removeHandler(handler)
        handler.close()
    text = (disk / "app.log").read_text()
    written = [json.loads(line) for line in text.splitlines()]  # no half line
    assert text.endswith("\n") and 0 < len(written) < 600
    assert _write_errors() - before == 600 - len(written)
    assert "No space left on device" in reports.text()


def _read_only_dir(tmp_path: Path, tmpfs) -> Path:
    if os.geteuid() == 0:  # root writes through permissions: a read-only file system instead
        return tmpfs("readonly", "ro,size=64k")
    directory = tmp_path / "readonly"
    directory.mkdir()
    directory.chmod(0o500)
    return directory


def test_a_read_only_log_dir_loses_lines_counted(tmp_path, tmpfs, reports):
    log_dir = _read_only_dir(tmp_path, tmpfs)
    # The configuration does not fail for a LOG_DIR it cannot create either.
    logging_config(log_dir=log_dir / "missing")
    handler = AppendFileHandler(log_dir / "app.log", check_interval=0)
    logger = _logger(handler)
    before = _write_errors()
    try:
        for n in range(50):
            logger.error("line %d", n)
    finally:
        logger.removeHandler(handler)
        handler.close()
    assert _write_errors() == before + 50
    [report] = reports.text().splitlines()
    assert "Read-only file system" in report or "Permission denied" in report


@pytest.mark.slow
def test_gunicorn_serves_on_a_full_disk_and_exports_the_count(tmp_path):
    log_dir = tmp_path / "log"
    log_dir.mkdir()
    for name in ("app.log", "access.log"):
        (log_dir / name).symlink_to("/dev/full")
    app = Gunicorn(tmp_path, workers=2, LOG_TO_STDOUT_ONLY="false", LOG_DIR=str(log_dir))
    try:
        app.start()
        with httpx.Client(base_url=app.base_url, timeout=10) as client:
            statuses = [client.get("/api/catalog/products/").status_code for _ in range(100)]
        assert statuses == [200] * 100
        text = app.scrape_text()
    finally:
        app.stop()
    assert text.count("# TYPE log_write_errors_total counter") == 1
    [value] = [
        line.split()[-1] for line in text.splitlines() if line.startswith("log_write_errors_total")
    ]
    assert float(value) >= 100  # an access line per request at least
    output = (tmp_path / "gunicorn.log").read_text()
    assert "Traceback" not in output
    reports = [line for line in output.splitlines() if line.startswith("logging: cannot write")]
    assert 1 <= len(reports) <= 3  # at most one per process (master, two workers) in a minute


def test_the_counter_is_one_family_of_the_app_metrics(client):
    from monitoring.metrics import exposition

    text = exposition().decode()
    assert text.count("# TYPE log_write_errors_total counter") == 1
    assert "\nlog_write_errors_total " in text
