import math
import tracemalloc

from monitoring.tsdb.store import STALE_NAN, Matcher, SampleStore, is_stale, labels_from


def _lbl(name, **kw):
    return labels_from({"__name__": name, **kw})


def test_append_and_select_window():
    store = SampleStore()
    for i in range(10):
        store.append(_lbl("up", job="a"), i * 15_000, float(i))
    got = store.select([Matcher("__name__", "=", "up")], 30_000, 60_000)
    assert len(got) == 1
    assert got[0].timestamps == [30_000, 45_000, 60_000]
    assert got[0].values == [2.0, 3.0, 4.0]


def test_out_of_order_samples_are_ignored():
    store = SampleStore()
    assert store.append(_lbl("x"), 1000, 1.0)
    assert not store.append(_lbl("x"), 1000, 2.0)
    assert not store.append(_lbl("x"), 500, 2.0)
    assert store.select([Matcher("__name__", "=", "x")], 0, 2000)[0].values == [1.0]


def test_matchers_are_anchored_and_all_four_work():
    store = SampleStore()
    for code in ("200", "404", "500"):
        store.append(_lbl("req", code=code), 0, 1)
    store.append(_lbl("req"), 0, 1)

    def codes(*ms):
        return sorted(dict(s.labels).get("code", "") for s in store.select(ms, 0, 0))

    name = Matcher("__name__", "=", "req")
    assert codes(name, Matcher("code", "=~", "2..|5..")) == ["200", "500"]
    assert codes(name, Matcher("code", "=~", "0")) == []  # anchored: no substring match
    assert codes(name, Matcher("code", "!~", "[45]..")) == ["", "200"]
    assert codes(name, Matcher("code", "!=", "200")) == ["", "404", "500"]
    assert codes(name, Matcher("code", "=", "")) == [""]


def test_scrape_marks_vanished_series_stale():
    store = SampleStore()
    store.append_scrape("t1", [(_lbl("a"), 1.0), (_lbl("b"), 2.0)], 1000)
    store.append_scrape("t1", [(_lbl("a"), 1.5)], 2000)
    b = store.select([Matcher("__name__", "=", "b")], 0, 5000)[0]
    assert b.timestamps == [1000, 2000] and is_stale(b.values[-1])
    store.mark_source_stale("t1", 3000)
    a = store.select([Matcher("__name__", "=", "a")], 0, 5000)[0]
    assert is_stale(a.values[-1])
    assert not is_stale(math.nan) and is_stale(STALE_NAN)


def test_gc_drops_old_samples_and_empty_series():
    store = SampleStore(retention_seconds=60)
    store.append(_lbl("old"), 0, 1)
    store.append(_lbl("new"), 0, 1)
    store.append(_lbl("new"), 100_000, 2)
    assert store.gc(now_ms=120_000) == 1
    assert store.label_values("__name__") == ["new"]
    assert store.select([Matcher("__name__", "=", "new")], 0, 200_000)[0].values == [2.0]


def test_label_names_values_and_series():
    store = SampleStore()
    store.append(_lbl("up", job="a", instance="x"), 0, 1)
    store.append(_lbl("up", job="b"), 5000, 1)
    assert store.label_names() == ["__name__", "instance", "job"]
    assert store.label_values("job") == ["a", "b"]
    assert store.series([Matcher("job", "=", "b")], 0, 10_000) == [_lbl("up", job="b")]
    assert store.series([Matcher("job", "=", "b")], 0, 1000) == []


def test_memory_is_compact():
    # 12 bytes a sample is what lets 10,000 series x 6 h fit in 300 MB (bench/bench_rules.py).
    tracemalloc.start()
    store = SampleStore()
    for s in range(100):
        lbl = _lbl("m", i=str(s))
        for t in range(1440):
            store.append(lbl, t * 15_000, float(t))
    current, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert current / (100 * 1440) < 20


def test_gc_batches_the_copying_but_bounds_the_overshoot():
    store = SampleStore(retention_seconds=160)
    for t in range(320):  # one sample a second
        store.append(_lbl("m"), t * 1000, float(t))
    store.gc(now_ms=319_000)  # 159 expired of 320: copied now (more than a sixteenth)
    assert store.select([Matcher("__name__", "=", "m")], 0, 10**9)[0].timestamps[0] == 159_000
    store.gc(now_ms=324_000)  # 5 more expired of 161: under a sixteenth, kept for now
    assert store.select([Matcher("__name__", "=", "m")], 0, 10**9)[0].timestamps[0] == 159_000
    store.gc(now_ms=330_000)  # 11 of 161: over a sixteenth, dropped
    assert store.select([Matcher("__name__", "=", "m")], 0, 10**9)[0].timestamps[0] == 170_000


def test_a_series_spanning_more_than_24_days_keeps_every_sample():
    """Offsets start as 32-bit milliseconds (24.8 days); a longer span, from a long retention
    or a rule unit test's series, widens them instead of refusing the sample."""
    store = SampleStore(retention_seconds=60 * 86400)
    hour = 3_600_000
    times = [i * hour for i in range(30 * 24)]
    assert all(store.append(_lbl("up"), t, float(i)) for i, t in enumerate(times))
    (got,) = store.select([Matcher("__name__", "=", "up")], 0, times[-1])
    assert got.timestamps == times and got.values == [float(i) for i in range(len(times))]
    (late,) = store.select([Matcher("__name__", "=", "up")], times[-2], times[-1])
    assert late.timestamps == times[-2:]
