"""`AppendFileHandler`: log lines appended to a file shared by many processes, rotated outside.

Every gunicorn worker, Celery worker and the monitor append to the same `app.log` and
`access.log`, and logrotate renames them daily (deploy/logrotate/pasargad). Compared with the
standard library's WatchedFileHandler, which stats the path, writes into a Python buffer and
flushes on every line:

- each line is written by one `os.write` of the whole encoded line to a descriptor opened with
  O_APPEND: the kernel appends it whole at the end of the file, so lines of several processes
  never interleave, and there is no Python buffer to flush (nothing is lost at exit or in a
  killed worker);
- the path is checked for rotation at most once a `check_interval` (1 s), not on every line: a
  renamed or deleted file is noticed, and a new one opened, on the first line after that. The
  lines of that last second go to the renamed file, which logrotate's `delaycompress` leaves
  in place until the next day.
"""

import logging
import os
import time

CHECK_INTERVAL_SECONDS = 1.0
_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC


class AppendFileHandler(logging.Handler):
    def __init__(
        self,
        filename: str | os.PathLike,
        encoding: str = "utf-8",
        check_interval: float = CHECK_INTERVAL_SECONDS,
        level: int = logging.NOTSET,
    ) -> None:
        super().__init__(level)
        self.baseFilename = os.path.abspath(filename)
        self.encoding = encoding
        self.check_interval = check_interval
        self._fd = -1
        self._identity: tuple[int, int] | None = None  # (device, inode) of the open file
        self._next_check = 0.0  # opened on the first line (no empty files from idle processes)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._write(self.format(record))
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)

    def write_line(self, line: str) -> None:
        """Append one formatted line (no newline) outside `handle`, e.g. the direct access
        line (monitoring.logging.access_log); errors are the caller's to report."""
        with self.lock:
            self._write(line)

    def _write(self, line: str) -> None:
        # A line that cannot be encoded (a lone surrogate) is kept, escaped, not dropped.
        data = (line + "\n").encode(self.encoding, "backslashreplace")
        now = time.monotonic()
        if now >= self._next_check:
            self._reopen_if_rotated(now)
        written = os.write(self._fd, data)
        while written < len(data):  # only on a full disk or a signal; never in one line
            data = data[written:]
            written = os.write(self._fd, data)

    def _reopen_if_rotated(self, now: float) -> None:
        """Called under the handler's lock (Handler.handle): no thread writes to a descriptor
        another one is closing."""
        self._next_check = now + self.check_interval
        try:
            stat = os.stat(self.baseFilename)
            current = (stat.st_dev, stat.st_ino)
        except FileNotFoundError:
            current = None
        if self._fd >= 0 and current == self._identity:
            return
        fd = os.open(self.baseFilename, _FLAGS, 0o644)
        stat = os.fstat(fd)
        self._close_fd()
        self._fd, self._identity = fd, (stat.st_dev, stat.st_ino)

    def _close_fd(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd, self._identity = -1, None

    def close(self) -> None:
        self.acquire()
        try:
            self._close_fd()
            self._next_check = 0.0
        finally:
            self.release()
            super().close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.baseFilename} ({logging.getLevelName(self.level)})>"
