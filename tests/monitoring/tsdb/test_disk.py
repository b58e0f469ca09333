"""The durable store: what one process writes, the next one reads back, damage included."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from monitoring.rules.engine import Engine
from monitoring.tsdb.disk import StoreLockedError, open_store
from monitoring.tsdb.store import STALE_NAN, Matcher, SampleStore, is_stale, labels_from

REPO = Path(__file__).resolve().parents[3]
T0 = 1_700_000_000_000
HOUR = 3600


def _lbl(name, **kw):
    return labels_from({"__name__": name, **kw})


def _scrapes(stores, start: int, count: int, *, series: int = 20, step: int = 15_000) -> None:
    """Scrapes of one target into every store: counters, a gauge with NaN, jittered times."""
    rng = np.random.default_rng(start)
    for k in range(start, start + count):
        t = T0 + k * step + int(rng.integers(-7, 8))
        batch = [(_lbl("c_total", i=str(i)), float(k * (i + 1))) for i in range(series)]
        batch.append((_lbl("g"), float("nan") if k % 7 == 0 else float(rng.normal())))
        if k % 50 == 49:  # a counter reset
            batch[0] = (batch[0][0], 0.0)
        for store in stores:
            store.append_scrape("job|http://a/metrics", batch, t)


def _everything(store: SampleStore):
    got = store.select([Matcher("__name__", "=~", ".+")], 0, 2**62)
    return [
        (s.labels, s.timestamps, np.asarray(s.values, np.float64).view(np.uint64).tolist())
        for s in got
    ]


def _raw_meta(store: SampleStore):
    return [
        (r.labels, r.has_nan, r.last_drop)
        for r in store.select_raw([Matcher("__name__", "=~", ".+")], 0, 2**62)
    ]


def test_a_reopened_store_holds_what_was_written_bit_for_bit(tmp_path):
    memory = SampleStore(6 * HOUR)
    disk = open_store(tmp_path, 6 * HOUR, now_ms=T0)
    _scrapes([memory, disk], 0, 120)
    assert disk.compact() is not None  # half in a block, half in the log
    _scrapes([memory, disk], 120, 100)
    for store in (memory, disk):
        store.append(_lbl("single", x="1"), T0 + 10, 5.0)
        store.append_scrape("rule|r", [(_lbl("recorded"), 1.0)], T0 + 100 * 15_000)
        store.append_scrape("rule|r", [], T0 + 101 * 15_000)  # -> staleness marker
        store.mark_source_stale("job|http://a/metrics", T0 + 221 * 15_000)
    disk.close()

    again = open_store(tmp_path, 6 * HOUR, now_ms=T0 + 221 * 15_000)
    assert _everything(again) == _everything(memory)
    assert _raw_meta(again) == _raw_meta(memory)  # creation order, NaN and reset tracking
    assert is_stale(again.select([Matcher("__name__", "=", "recorded")], 0, 2**62)[0].values[-1])
    assert again.label_values("i") == memory.label_values("i")
    assert again.stats() == memory.stats()
    again.close()


def test_staleness_of_a_series_that_vanished_while_the_monitor_was_down(tmp_path):
    disk = open_store(tmp_path, HOUR, now_ms=T0)
    disk.append_scrape("job|t", [(_lbl("a"), 1.0), (_lbl("b"), 2.0)], T0)
    disk.close()
    again = open_store(tmp_path, HOUR, now_ms=T0 + 15_000)
    again.append_scrape("job|t", [(_lbl("a"), 1.0)], T0 + 15_000)  # b is gone
    (b,) = again.select([Matcher("__name__", "=", "b")], 0, 2**62)
    assert b.timestamps == [T0, T0 + 15_000] and is_stale(b.values[-1])
    # New series get refs after the old ones: creation order continues.
    again.append_scrape("job|t", [(_lbl("a"), 1.0), (_lbl("c"), 1.0)], T0 + 30_000)
    names = [dict(s.labels)["__name__"] for s in again.select([], 0, 2**62)]
    assert names == ["a", "b", "c"]
    again.close()


def test_a_restart_keeps_rate_windows(tmp_path):
    store = open_store(tmp_path, HOUR, now_ms=T0)
    for k in range(41):  # 10 minutes at 15 s, +3 a scrape
        store.append_scrape("job|t", [(_lbl("errors_total", job="app"), 3.0 * k)], T0 + k * 15_000)
    at = T0 + 40 * 15_000
    before = Engine(store).instant("increase(errors_total[5m])", at)
    store.close()

    again = open_store(tmp_path, HOUR, now_ms=at)
    after = Engine(again).instant("increase(errors_total[5m])", at)
    assert [s.value for s in after.samples] == [s.value for s in before.samples] == [60.0]
    assert Engine(again).instant("rate(errors_total[5m])", at).samples[0].value == 0.2
    again.close()


def test_a_second_process_cannot_open_the_same_directory(tmp_path):
    store = open_store(tmp_path, HOUR)
    with pytest.raises(StoreLockedError, match=str(tmp_path)):
        open_store(tmp_path, HOUR)
    store.close()
    open_store(tmp_path, HOUR).close()


def _segments(path: Path) -> list[Path]:
    return sorted((path / "wal").iterdir())


def test_a_torn_log_tail_is_cut_off_with_a_warning(tmp_path, caplog):
    store = open_store(tmp_path, HOUR, now_ms=T0)
    _scrapes([store], 0, 10)
    store.close()
    (segment,) = [p for p in _segments(tmp_path) if p.stat().st_size]
    size = segment.stat().st_size
    with open(segment, "r+b") as f:
        f.truncate(size - 100)  # the last record is torn
    with caplog.at_level(logging.WARNING):
        again = open_store(tmp_path, HOUR, now_ms=T0)
    assert "torn record" in caplog.text and str(segment) in caplog.text
    stamps = again.select([Matcher("__name__", "=", "g")], 0, 2**62)[0].timestamps
    assert len(stamps) == 9  # the first nine scrapes survive
    again.close()


def test_garbage_after_the_log_is_cut_off_and_the_store_keeps_working(tmp_path, caplog):
    store = open_store(tmp_path, HOUR, now_ms=T0)
    _scrapes([store], 0, 10)
    store.close()
    segment = [p for p in _segments(tmp_path) if p.stat().st_size][-1]
    good = segment.stat().st_size
    with open(segment, "ab") as f:
        f.write(os.urandom(5000))
    with caplog.at_level(logging.WARNING):
        again = open_store(tmp_path, HOUR, now_ms=T0)
    assert "cutting off the rest" in caplog.text
    assert segment.stat().st_size == good
    _scrapes([again], 10, 5)
    again.close()
    third = open_store(tmp_path, HOUR, now_ms=T0)
    assert len(third.select([Matcher("__name__", "=", "g")], 0, 2**62)[0].timestamps) == 15
    third.close()


def test_a_flipped_bit_in_the_log_fails_its_checksum(tmp_path, caplog):
    store = open_store(tmp_path, HOUR, now_ms=T0)
    _scrapes([store], 0, 10)
    store.close()
    segment = [p for p in _segments(tmp_path) if p.stat().st_size][-1]
    data = bytearray(segment.read_bytes())
    data[len(data) // 2] ^= 0x10
    segment.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING):
        again = open_store(tmp_path, HOUR, now_ms=T0)
    assert "checksum mismatch" in caplog.text
    assert 0 < len(again.select([Matcher("__name__", "=", "g")], 0, 2**62)[0].timestamps) < 10
    again.close()


def test_a_truncated_block_is_skipped_with_a_warning(tmp_path, caplog):
    store = open_store(tmp_path, HOUR, now_ms=T0)
    _scrapes([store], 0, 10)
    meta = store.compact()
    _scrapes([store], 10, 5)
    store.close()
    with open(meta.path, "r+b") as f:
        f.truncate(meta.path.stat().st_size // 2)
    with caplog.at_level(logging.WARNING):
        again = open_store(tmp_path, HOUR, now_ms=T0)
    assert f"block {meta.path} cannot be read" in caplog.text
    assert meta.path.with_suffix(".corrupt").exists()
    # What the log after the block holds is still there.
    assert len(again.select([Matcher("__name__", "=", "g")], 0, 2**62)[0].timestamps) == 5
    again.close()


def test_gc_compacts_and_retention_deletes_blocks_and_log_segments(tmp_path):
    retention_s, block_ms = 600, 120_000  # 10 minutes kept, a block every 2 minutes
    store = open_store(tmp_path, retention_s, now_ms=T0, block_range_ms=block_ms)
    for minute in range(40):
        _scrapes([store], minute * 4, 4)
        store.gc(T0 + (minute + 1) * 60_000)
    now = T0 + 40 * 60_000
    blocks = sorted((tmp_path / "blocks").glob("*.block"))
    assert 4 <= len(blocks) <= 7  # 10 minutes of 2-minute blocks, not 20 of them
    assert len(_segments(tmp_path)) <= 2  # segments before the last cut are gone
    assert min(b.min_t for b in store.blocks) >= now - retention_s * 1000 - 2 * block_ms
    store.close()
    again = open_store(tmp_path, retention_s, now_ms=now)
    stamps = again.select([Matcher("__name__", "=", "g")], 0, 2**62)[0].timestamps
    assert stamps[0] >= now - retention_s * 1000
    assert stamps[-1] == max(store.select([Matcher("__name__", "=", "g")], 0, 2**62)[0].timestamps)
    again.close()


WRITER = """
import sys, time
from monitoring.tsdb.disk import open_store
from monitoring.tsdb.store import labels_from
store = open_store(sys.argv[1], 3600, now_ms=1_700_000_000_000)
k = 0
while True:
    batch = [(labels_from({"__name__": "c_total", "i": str(i)}), float(k)) for i in range(300)]
    store.append_scrape("job|t", batch, 1_700_000_000_000 + k * 1000)
    print(k, flush=True)
    k += 1
    if k % 40 == 0:
        store.compact()
"""


def test_a_process_killed_mid_writing_loses_nothing_it_finished(tmp_path, caplog):
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(tmp_path)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        done = -1
        while done < 150 and time.monotonic() < deadline:
            done = int(proc.stdout.readline())
        assert done >= 150, "the writer did not get going"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    with caplog.at_level(logging.WARNING):
        store = open_store(tmp_path, 3600, now_ms=T0 + 200_000)
    series = store.select([Matcher("__name__", "=", "c_total")], 0, 2**62)
    assert len(series) == 300
    for s in series:
        # Every scrape it reported done is there, in order, and nothing else.
        assert len(s.timestamps) >= done + 1
        assert s.timestamps == [T0 + k * 1000 for k in range(len(s.timestamps))]
        assert s.values == [float(k) for k in range(len(s.timestamps))]
    store.close()


def test_stale_markers_survive_compaction_bit_for_bit(tmp_path):
    store = open_store(tmp_path, HOUR, now_ms=T0)
    store.append(_lbl("x"), T0, float("nan"))
    store.append(_lbl("x"), T0 + 1, STALE_NAN)
    store.compact()
    store.close()
    again = open_store(tmp_path, HOUR, now_ms=T0)
    (x,) = again.select([Matcher("__name__", "=", "x")], 0, 2**62)
    assert not is_stale(x.values[0]) and x.values[0] != x.values[0]
    assert is_stale(x.values[1])
    again.close()


def test_series_that_come_and_go_replay_in_order(tmp_path):
    """Scrapes whose series lists differ (a series appears, vanishes, returns) replay through
    the sorting path, steady ones through the transposing one: both as written."""
    memory = SampleStore(HOUR)
    disk = open_store(tmp_path, HOUR, now_ms=T0)
    for k in range(60):
        batch = [(_lbl("steady", i=str(i)), float(k + i)) for i in range(5)]
        if k % 7 < 4:
            batch.append((_lbl("flapping"), float(k)))
        if k >= 30:
            batch.insert(0, (_lbl("late"), 1.0))
        for store in (memory, disk):
            store.append_scrape("job|a", batch, T0 + k * 1000)
            store.append_scrape("job|b", [(_lbl("other"), float(k))], T0 + k * 1000 + 1)
    disk.close()
    again = open_store(tmp_path, HOUR, now_ms=T0 + 60_000)
    assert _everything(again) == _everything(memory)
    assert _raw_meta(again) == _raw_meta(memory)
    again.close()


def test_steady_targets_replay_through_the_transposing_path(tmp_path):
    memory = SampleStore(HOUR)
    disk = open_store(tmp_path, HOUR, now_ms=T0)
    for k in range(40):
        for store in (memory, disk):
            a = [(_lbl("a", i=str(i)), float(k * i)) for i in range(4)]
            store.append_scrape("job|a", a, T0 + k * 1000)
            store.append_scrape("job|b", [(_lbl("b"), -float(k))], T0 + k * 1000 + 3)
    disk.close()
    again = open_store(tmp_path, HOUR, now_ms=T0 + 40_000)
    assert _everything(again) == _everything(memory)
    assert _raw_meta(again) == _raw_meta(memory)
    again.close()


def test_a_series_spanning_more_than_24_days_is_reopened_whole(tmp_path):
    """A retention past the 24 days of 32-bit offsets: every sample is written and read back
    (they used to be dropped at open with a warning)."""
    retention = 40 * 24 * HOUR
    memory = SampleStore(retention)
    disk = open_store(tmp_path, retention, now_ms=T0)
    step = 3_600_000
    for k in range(30 * 24):
        for store in (memory, disk):
            store.append_scrape("job|http://a/metrics", [(_lbl("up"), float(k))], T0 + k * step)
        if k in (400, 700):  # in blocks before and after the span passes 24 days, then a log
            assert disk.compact() is not None
    disk.close()
    again = open_store(tmp_path, retention, now_ms=T0 + 30 * 24 * step)
    assert _everything(again) == _everything(memory)
    assert len(_everything(again)[0][1]) == 30 * 24
    again.close()
