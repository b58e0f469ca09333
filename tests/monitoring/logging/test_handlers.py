"""AppendFileHandler: one O_APPEND write per line, rotation noticed within a second.

The logrotate run itself is in test_deploy.py; here: lines of several processes, a deleted
file, no file before the first line.
"""

import json
import logging
import subprocess
import sys
from pathlib import Path

from monitoring.logging.handlers import AppendFileHandler
from tests.wait import wait_for

ROOT = Path(__file__).resolve().parents[3]
PROCESSES = 4
LINES = 1500

# Each child says it is ready, then waits for the go file, so all of them write at the same time,
# then appends lines of 100 to 4000 bytes (under PIPE_BUF, as a traceback line could be) through
# the handler.
CHILD = """
import logging, os, sys, time
sys.path.insert(0, {root!r})
from monitoring.logging.handlers import AppendFileHandler
writer, path, go, lines = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
handler = AppendFileHandler(path)
logger = logging.getLogger("child")
logger.addHandler(handler)
logger.propagate = False
open(go + ".ready" + str(writer), "w").close()
while not os.path.exists(go):
    time.sleep(0.001)
for n in range(lines):
    size = 100 + (n * 997 + writer * 131) % 3900
    logger.warning('{{"writer":%d,"n":%d,"pad":"%s"}}', writer, n, "x" * size)
handler.close()
"""


def test_lines_of_several_processes_never_interleave(tmp_path):
    log, go = tmp_path / "shared.log", tmp_path / "go"
    script = CHILD.format(root=str(ROOT))
    children = [
        subprocess.Popen([sys.executable, "-c", script, str(w), str(log), str(go), str(LINES)])
        for w in range(PROCESSES)
    ]
    try:
        # All interpreters started (however loaded the machine), so their writes overlap.
        wait_for(
            lambda: all((tmp_path / f"go.ready{w}").exists() for w in range(PROCESSES)),
            timeout=120,
            what="every writer ready",
        )
        go.touch()
        assert [child.wait(timeout=60) for child in children] == [0] * PROCESSES
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
    # json.loads fails on any line that holds parts of two writes.
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(lines) == PROCESSES * LINES
    for writer in range(PROCESSES):
        own = [line for line in lines if line["writer"] == writer]
        assert [line["n"] for line in own] == list(range(LINES))  # in order, none lost
        assert all(
            len(line["pad"]) == 100 + (line["n"] * 997 + writer * 131) % 3900 for line in own
        )
    writers = [line["writer"] for line in lines]
    switches = sum(a != b for a, b in zip(writers, writers[1:], strict=False))
    assert switches > PROCESSES  # they did write at the same time (else this proves little)


def _logger(handler: logging.Handler) -> logging.Logger:
    logger = logging.getLogger(f"tests.handlers.{id(handler)}")
    logger.propagate = False
    logger.addHandler(handler)
    return logger


def test_a_deleted_file_is_recreated_at_the_first_check_after_it(tmp_path):
    # The file is looked at once per check interval, not per line: within the interval lines
    # still go to the deleted file; at the first check after it, the file is created again.
    # (Two handlers, an hour's interval and none, so no clock of a loaded machine decides.)
    path = tmp_path / "app.log"
    hourly = AppendFileHandler(path, check_interval=3600)
    always = AppendFileHandler(path, check_interval=0)
    late, prompt = _logger(hourly), _logger(always)
    try:
        late.warning("first")
        prompt.warning("first")
        path.unlink()
        late.warning("into the deleted file")
        assert not path.exists()
        prompt.warning("again")
        assert path.read_text() == "again\n"
    finally:
        for logger, handler in ((late, hourly), (prompt, always)):
            logger.removeHandler(handler)
            handler.close()


def test_no_file_until_the_first_line_and_nothing_buffered(tmp_path):
    path = tmp_path / "access.log"
    handler = AppendFileHandler(path)
    logger = _logger(handler)
    try:
        assert not path.exists()  # idle processes leave no empty files behind
        logger.warning("one line")
        assert path.read_text() == "one line\n"  # on disk at once: no flush, no loss at exit
    finally:
        logger.removeHandler(handler)
        handler.close()
