"""The write-ahead log: numbered segment files of checksummed frames (``encoding.frame``).

One writer appends every write of the store as it happens (a scrape is one record); a new
segment starts when the current one passes ``segment_bytes`` and at every compaction cut, so
that whole segments can be deleted once a block holds their samples. Records are written with
``write()`` and not synced one by one: a killed process loses nothing (the kernel has the
bytes), a power cut can lose the last seconds; a segment is synced when it is closed.

Reading stops at the first frame that is torn, fails its checksum or cannot be decoded: the
segment is truncated there and later segments are deleted, with a warning (Prometheus repairs
its WAL the same way), so a crash mid-write costs at most that write.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

from monitoring.tsdb.encoding import FrameError, frames

__all__ = ["WriteAheadLog"]

logger = logging.getLogger(__name__)

SEGMENT_BYTES = 64 * 1024 * 1024


class WriteAheadLog:
    def __init__(self, directory: Path, *, segment_bytes: int = SEGMENT_BYTES):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.segment_bytes = segment_bytes
        self._file = None
        self._number = 0
        self._size = 0

    def segments(self) -> list[int]:
        return sorted(int(p.name) for p in self.dir.iterdir() if p.name.isdigit())

    def path(self, number: int) -> Path:
        return self.dir / f"{number:08d}"

    # -- reading ----------------------------------------------------------------------------------
    def records(self, kinds: set[int], first: int = 0) -> Iterator[tuple[int, int, int, bytes]]:
        """``(segment, offset, kind, payload)`` of every intact record in segments >= first;
        a damaged tail is cut off (``cut_off``) and reading ends there."""
        for number in self.segments():
            if number < first:
                continue
            data = self.path(number).read_bytes()
            try:
                for offset, kind, payload in frames(data, kinds):
                    yield number, offset, kind, payload
            except FrameError as exc:
                self.cut_off(number, exc.offset, exc.problem)
                return

    def cut_off(self, number: int, offset: int, problem: str) -> None:
        """Truncate segment ``number`` at ``offset`` and delete every later segment."""
        path = self.path(number)
        later = [n for n in self.segments() if n > number]
        lost = path.stat().st_size - offset + sum(self.path(n).stat().st_size for n in later)
        logger.warning(
            "write-ahead log %s: %s at byte %d; cutting off the rest (%d bytes%s)",
            path,
            problem,
            offset,
            lost,
            f", {len(later)} later segments" if later else "",
        )
        with open(path, "r+b") as f:
            f.truncate(offset)
            os.fsync(f.fileno())
        for n in later:
            self.path(n).unlink()

    # -- writing ----------------------------------------------------------------------------------
    def open_segment(self) -> int:
        """Start a new segment after the last one (a reopened log never appends to a segment
        that may have been repaired); returns its number."""
        self._close_segment()
        self._number = max(self.segments(), default=0) + 1
        self._file = open(self.path(self._number), "xb", buffering=0)  # noqa: SIM115
        self._size = 0
        _sync_dir(self.dir)
        return self._number

    def write(self, data: bytes) -> None:
        if self._file is None:
            self.open_segment()
        elif self._size >= self.segment_bytes:
            self.open_segment()
        self._file.write(data)
        self._size += len(data)

    @property
    def current(self) -> int:
        return self._number

    def remove_before(self, number: int) -> None:
        for n in self.segments():
            if n < number:
                self.path(n).unlink()

    def _close_segment(self) -> None:
        if self._file is not None:
            os.fsync(self._file.fileno())
            self._file.close()
            self._file = None

    def close(self) -> None:
        self._close_segment()


def _sync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
