"""monitoring.metrics: the multiprocess reader agrees with prometheus_client's, and is careful."""

import json
import os
import struct
import subprocess
import sys

import prometheus_client
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.mmap_dict import MmapedDict, mmap_key
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from monitoring import metrics
from monitoring.metrics import prepare_multiprocess_dir
from monitoring.multiprocess_reader import FILE_NAME, GAUGE_MODES, HEADER_BYTES, MultiprocessReader

BUCKETS = ["0.1", "1.0", "+Inf"]


class Writer:
    """Writes files exactly as prometheus_client's multiprocess values do (its own MmapedDict)."""

    def __init__(self, directory, kind, pid):
        self.file = MmapedDict(str(directory / f"{kind}_{pid}.db"))

    def set(self, family, sample, labels, value, timestamp=0.0, help_text="Help."):
        key = mmap_key(family, sample, list(labels), list(labels.values()), help_text)
        self.file.write_value(key, value, timestamp)


def write_worker(directory, pid, n):
    counters = Writer(directory, "counter", pid)
    histograms = Writer(directory, "histogram", pid)
    for route in ("/a/", "/b/<int:pk>/"):
        counters.set("http_requests", "http_requests_total", {"route": route}, n)
        for i, le in enumerate(BUCKETS):
            labels = {"route": route, "le": le}
            histograms.set("latency", "latency_bucket", labels, n * (i + 1))
        histograms.set("latency", "latency_sum", {"route": route}, n * 0.5)
    return counters, histograms


def samples(text):
    return sorted(
        (s.name, tuple(sorted(s.labels.items())), s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
    )


def reference(directory):
    registry = CollectorRegistry()
    MultiProcessCollector(registry, str(directory))
    return generate_latest(registry).decode()


def test_same_samples_as_prometheus_client(tmp_path):
    for pid, n in ((101, 1), (102, 2), (103, 5)):
        write_worker(tmp_path, pid, n)
    gauges = {pid: Writer(tmp_path, "gauge_livesum", pid) for pid in (101, 102)}
    for pid, gauge in gauges.items():
        gauge.set("inflight", "inflight", {}, pid - 100)
    for mode in ("max", "min", "mostrecent", "all"):
        for pid in (101, 102):
            Writer(tmp_path, f"gauge_{mode}", pid).set(
                f"g_{mode}", f"g_{mode}", {"k": "v"}, pid, timestamp=1000 - pid
            )
    ours = MultiprocessReader(tmp_path).text()
    assert samples(ours) == samples(reference(tmp_path))
    assert 'http_requests_total{route="/a/"} 8.0' in ours
    assert (
        'latency_bucket{route="/a/",le="+Inf"} 48.0' in ours
    )  # (1 + 2 + 3) * (1 + 2 + 5), cumulative
    assert 'g_mostrecent{k="v"} 101.0' in ours  # 101's timestamp is the latest


def test_rereads_values_and_picks_up_new_series(tmp_path):
    counters, _ = write_worker(tmp_path, 201, 1)
    reader = MultiprocessReader(tmp_path)
    reader.text()
    counters.set("http_requests", "http_requests_total", {"route": "/a/"}, 41)
    counters.set("http_requests", "http_requests_total", {"route": "/new/"}, 3)
    write_worker(tmp_path, 202, 1)  # a worker born after the first scrape
    assert samples(reader.text()) == samples(reference(tmp_path))


def test_a_recreated_file_is_parsed_afresh(tmp_path):
    write_worker(tmp_path, 301, 7)
    reader = MultiprocessReader(tmp_path)
    reader.text()
    for path in tmp_path.iterdir():
        path.unlink()
    counters = Writer(tmp_path, "counter", 301)  # same pid, new run
    counters.set("other", "other_total", {}, 1)
    assert samples(reader.text()) == [("other_total", (), 1.0)]


def test_a_corrupt_file_is_skipped_not_fatal(tmp_path):
    write_worker(tmp_path, 401, 1)
    (tmp_path / "counter_402.db").write_bytes(
        (40).to_bytes(4, "little") + b"\0" * 4 + (20).to_bytes(4, "little") + b"{not json" * 4
    )
    text = MultiprocessReader(tmp_path).text()
    assert 'http_requests_total{route="/a/"} 1.0' in text


def test_label_values_are_escaped(tmp_path):
    Writer(tmp_path, "counter", 501).set("odd", "odd_total", {"v": 'a"b\\c\nd'}, 1)
    text = MultiprocessReader(tmp_path).text()
    assert samples(text) == samples(reference(tmp_path))


def test_prepare_drops_files_of_dead_processes_only(tmp_path):
    dead_pid = 2**22 + 17  # above the default pid_max: never a live process
    write_worker(tmp_path, dead_pid, 1)
    write_worker(tmp_path, os.getpid(), 1)
    prepare_multiprocess_dir(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        f"counter_{os.getpid()}.db",
        f"histogram_{os.getpid()}.db",
    ]


def test_in_process_primitives_render_without_a_directory():
    assert metrics.multiprocess_dir() is None  # tests run single-process
    counter = metrics.Counter("test_widgets_total", "Widgets.", ["colour"])
    counter.labels("blue").inc(3)
    histogram = metrics.Histogram("test_wait_seconds", "Wait.", buckets=(1, 5))
    histogram.observe(2)
    text = metrics.exposition().decode()
    assert 'test_widgets_total{colour="blue"} 3.0' in text
    assert 'test_wait_seconds_bucket{le="5.0"} 1.0' in text


def test_duplicate_names_are_refused():
    metrics.Counter("test_dupe_total", "One.")
    with pytest.raises(ValueError, match="test_dupe"):
        metrics.Gauge("test_dupe", "Two.")


def test_a_failing_collector_costs_only_its_own_metrics():
    from prometheus_client.core import GaugeMetricFamily

    class Broken:
        def collect(self):
            yield GaugeMetricFamily("test_half_written", "Never shown.", value=1)
            raise RuntimeError("source went away")

    class Fine:
        def collect(self):
            yield GaugeMetricFamily("test_fine_value", "Shown.", value=7)

    broken, fine = Broken(), Fine()
    metrics.register_collector(broken)
    metrics.register_collector(fine)
    try:
        text = metrics.exposition().decode()
        assert "test_fine_value 7.0" in text
        assert "test_half_written" not in text
        # Counted during that scrape, so shown from the next one on.
        again = metrics.exposition().decode()
        assert 'monitoring_collector_errors_total{collector="Broken"} 1.0' in again
    finally:
        metrics.REGISTRY.remove_collector(broken)
        metrics.REGISTRY.remove_collector(fine)


def test_public_surface_is_small_and_documented():
    documented = metrics.__doc__
    for name in metrics.__all__:
        assert f"``{name}" in documented, name
    assert len(metrics.__all__) <= 12


def test_a_vanished_file_takes_only_its_own_series_along(tmp_path):
    write_worker(tmp_path, 601, 1)
    only_in_602 = Writer(tmp_path, "histogram", 602)
    for le in BUCKETS:
        only_in_602.set("solo", "solo_bucket", {"le": le}, 1)
    only_in_602.set("solo", "solo_sum", {}, 0.5)
    reader = MultiprocessReader(tmp_path)
    assert "solo_bucket" in reader.text()
    (tmp_path / "histogram_602.db").unlink()
    text = reader.text()
    assert "solo" not in text
    assert samples(text) == samples(reference(tmp_path))


# --- prometheus_client internals monitoring.multiprocess_reader relies on -------------------
# Real prometheus_client, in multiprocess mode, in a fresh process: every kind and gauge mode.
_WRITE_EVERY_KIND = """
import prometheus_client as p
p.Counter("pin_events", "Events.", ["kind"]).labels("a").inc(3)
for mode in sorted(p.Gauge._MULTIPROC_MODES):
    p.Gauge("pin_g_" + mode, "G.", ["k"], multiprocess_mode=mode).labels("v").set(2)
p.Histogram("pin_wait_seconds", "Wait.", buckets=(1,)).observe(0.5)
p.Summary("pin_size", "Size.").observe(4)
"""


def _layout(data: bytes) -> list[tuple[str, float, float]]:
    """The mmap layout as the reader assumes it: used bytes, padding, then per entry a key
    length, the key padded to 8 bytes, a value and a timestamp (doubles)."""
    used = int.from_bytes(data[0:4], "little")
    pos, entries = HEADER_BYTES, []
    while pos < used:
        length = int.from_bytes(data[pos : pos + 4], "little")
        key = data[pos + 4 : pos + 4 + length].decode()
        pos += 4 + length + (8 - (4 + length) % 8)
        value, timestamp = struct.unpack_from("<dd", data, pos)
        entries.append((key, value, timestamp))
        pos += 16
    return entries


@pytest.fixture
def written_by_prometheus_client(tmp_path):
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    subprocess.run([sys.executable, "-c", _WRITE_EVERY_KIND], env=env, check=True, timeout=60)
    return tmp_path


def test_prometheus_client_internals_the_reader_relies_on(written_by_prometheus_client):
    """An upgrade of prometheus_client that changes any of these fails here, naming what."""
    directory = written_by_prometheus_client
    assert prometheus_client.Gauge._MULTIPROC_MODES == GAUGE_MODES, (
        "Gauge._MULTIPROC_MODES changed: the reader merges only the modes it knows"
    )
    names = sorted(path.name for path in directory.iterdir())
    strange = [name for name in names if not FILE_NAME.match(name)]
    assert not strange, f"file names changed (values.MultiProcessValue): {strange}"
    kinds = {FILE_NAME.match(name).group(1, 2) for name in names}
    expected = {("counter", None), ("histogram", None), ("summary", None)}
    expected |= {("gauge", mode) for mode in GAUGE_MODES}
    assert kinds == expected, f"a kind or gauge mode is written to another file: {kinds}"
    for path in directory.iterdir():
        ours = _layout(path.read_bytes())
        theirs = list(MmapedDict(str(path), read_mode=True).read_all_values())
        assert ours == theirs, f"the mmap file layout changed (mmap_dict), in {path.name}"
        for key, _, _ in ours:
            parsed = json.loads(key)
            shape = [type(part) for part in parsed]
            assert shape == [str, str, dict, str], (
                f"the key is no longer json [family, sample, labels, help] (mmap_key): {key}"
            )
    assert samples(MultiprocessReader(directory).text()) == samples(reference(directory)), (
        "merged values differ from prometheus_client's MultiProcessCollector"
    )


def test_prometheus_client_child_internals_the_hot_path_binds():
    """monitoring.http.metrics and the log counters call children's value objects directly."""
    counter = prometheus_client.Counter("pin_hot", "Hot.", ["k"], registry=None).labels("v")
    histogram = prometheus_client.Histogram("pin_hot_s", "Hot.", registry=None, buckets=(1,))
    counter._value.inc(2)
    histogram._sum.inc(0.5)
    histogram._buckets[0].inc(1)
    assert list(histogram._upper_bounds) == [1.0, float("inf")], "Histogram._upper_bounds"
    assert counter._value.get() == 2, "Counter child's _value"
    assert histogram._sum.get() == 0.5, "Histogram._sum"


def test_families_of_one_name_from_several_collectors_are_one_family(caplog):
    """Defect 6: two collectors each wrote monitoring_collector_up's HELP and TYPE."""
    from prometheus_client.core import (
        CounterMetricFamily,
        GaugeMetricFamily,
        SummaryMetricFamily,
    )

    def status(collector):
        family = GaugeMetricFamily("test_shared_up", "Up.", labels=["collector"])
        family.add_metric([collector], 1)
        return family

    class One:
        def collect(self):
            yield status("one")

    class Two:
        def collect(self):
            yield status("two")
            yield SummaryMetricFamily("test_shared_up", "Another type.", count_value=1, sum_value=1)
            yield CounterMetricFamily("monitoring_collector_errors", "A primitive's.", value=5)

    one, two = One(), Two()
    metrics.register_collector(one)
    metrics.register_collector(two)
    try:
        text = metrics.exposition().decode()
    finally:
        metrics.REGISTRY.remove_collector(one)
        metrics.REGISTRY.remove_collector(two)
    assert text.count("# HELP test_shared_up ") == 1
    assert text.count("# TYPE test_shared_up ") == 1
    assert 'test_shared_up{collector="one"} 1.0' in text
    assert 'test_shared_up{collector="two"} 1.0' in text
    assert "Another type." not in text
    assert text.count("# HELP monitoring_collector_errors_total ") == 1
    assert "A primitive's." not in text
    assert "test_shared_up from Two left out: summary, not gauge" in caplog.text
