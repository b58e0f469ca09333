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
  in place until the next day;
- a sink that fails (LOG_DIR read-only, a full disk) never fails the caller: the line is lost,
  counted in `log_write_errors_total` and reported on stderr at most once a minute per process
  (`sink_errors`), not a traceback per line. A line is written whole or not at all: a write
  the disk cut short is truncated away again (unless another process appended after it).
"""

import errno
import logging
import os
import time

from monitoring.logging import sink_errors

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
        self._open_error: OSError | None = None

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._write(self.format(record))
        except OSError as error:  # the sink, not the record: counted, reported once a minute
            sink_errors.write_failed(self.baseFilename, error)
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)

    def write_line(self, line: str) -> None:
        """Append one formatted line (no newline) outside `handle`, e.g. the direct access
        line (monitoring.logging.access_log); a failing sink is counted and reported here,
        other errors are the caller's to report."""
        with self.lock:
            try:
                self._write(line)
            except OSError as error:
                sink_errors.write_failed(self.baseFilename, error)

    def _write(self, line: str) -> None:
        # A line that cannot be encoded (a lone surrogate) is kept, escaped, not dropped.
        data = (line + "\n").encode(self.encoding, "backslashreplace")
        now = time.monotonic()
        if now >= self._next_check:
            self._reopen_if_rotated(now)
        if self._fd < 0:  # the last open failed; tried again at the next check
            raise self._open_error or OSError(errno.EBADF, "log file not open")
        written = os.write(self._fd, data)
        if written < len(data):  # only on a full disk or a signal; never in one line
            self._write_rest(data, written)

    def _write_rest(self, data: bytes, written: int) -> None:
        """Finish a short write, or take its start back: no half line stays in the file."""
        total = written
        try:
            while total < len(data):
                total += os.write(self._fd, data[total:])
        except OSError:
            try:
                end = os.lseek(self._fd, 0, os.SEEK_CUR)  # just after our bytes (O_APPEND)
                if os.fstat(self._fd).st_size == end:  # nobody appended after them
                    os.ftruncate(self._fd, end - total)
            except OSError:
                pass
            raise

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
        try:
            fd = os.open(self.baseFilename, _FLAGS, 0o644)
        except OSError as error:
            self._open_error = error  # the old descriptor, if any, is kept meanwhile
            raise
        self._open_error = None
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
