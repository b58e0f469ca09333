"""The multiprocess reader: merges the per-process metric files of a shared directory.

Under gunicorn and Celery (``PROMETHEUS_MULTIPROC_DIR`` set before prometheus_client is
imported) every process writes its values into its own mmap files there, in prometheus_client's
own format. This module reads that format directly, and relies on these prometheus_client
internals (``tests/monitoring/test_metrics.py`` pins each one, so an upgrade that changes them
fails a test that names the change):

- file names ``<kind>_<pid>.db`` and ``gauge_<mode>_<pid>.db`` (``values.MultiProcessValue``),
  kinds counter/gauge/histogram/summary, the gauge modes of ``Gauge._MULTIPROC_MODES``;
- the file layout (``mmap_dict``): a 4-byte little-endian count of used bytes, 4 bytes of
  padding, then entries of a 4-byte key length, the UTF-8 key padded to 8 bytes, a double value
  and a double timestamp;
- the key: ``json.dumps([family, sample, labels, help])`` (``mmap_dict.mmap_key``);
- how values merge: counters, histograms and ``sum``/``livesum``/``all``/``liveall`` gauges
  add up, ``all``/``liveall`` gauges get a ``pid`` label, ``min``/``max``/``mostrecent`` gauges
  pick one value (``mostrecent`` by the timestamp double).

``MultiprocessReader`` remembers where each series sits in each file (files are append-only)
and re-reads only the values, so after the first scrape merging is a few list operations per
sample, not a JSON decode. ``ProcessCollector`` reports ``process_*`` for every live process
that has files there.
"""

import json
import logging
import os
import re
import threading
from collections.abc import Iterable
from pathlib import Path

import psutil
from prometheus_client.metrics_core import Metric
from prometheus_client.utils import floatToGoString

__all__ = [
    "FILE_NAME",
    "GAUGE_MODES",
    "MultiprocessReader",
    "ProcessCollector",
    "prepare_multiprocess_dir",
]

logger = logging.getLogger("monitoring.metrics")

FILE_NAME = re.compile(r"^(counter|gauge|histogram|summary)_(?:([a-z]+)_)?(\d+)\.db$")
# Gauge modes this reader merges (prometheus_client's Gauge._MULTIPROC_MODES).
GAUGE_MODES = frozenset(
    {"all", "liveall", "min", "livemin", "max", "livemax", "sum", "livesum", "mostrecent",
     "livemostrecent"}
)  # fmt: skip
HEADER_BYTES = 8  # used-bytes count and padding


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def prepare_multiprocess_dir(path: str | os.PathLike) -> Path:
    """Create the directory and drop files of processes that no longer run.

    Called by gunicorn's master at start: counters of a previous run restart from zero, like
    any restarted Prometheus target; files of processes still running (a Celery worker sharing
    the directory) are kept. A Celery worker does not call it, so restarting one never drops
    the web workers' counts.
    """
    directory = Path(path)
    directory.mkdir(parents=True, exist_ok=True)
    for entry in directory.iterdir():
        match = FILE_NAME.match(entry.name)
        if match and not _pid_alive(int(match.group(3))):
            entry.unlink(missing_ok=True)
    return directory


_INF = float("inf")
_PLAIN, _FIRST_BUCKET, _BUCKET, _COUNT = range(4)


def _fmt(value: float) -> str:
    return floatToGoString(value) if value != value or value in (_INF, -_INF) else repr(value)


def _escape_label(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _label_text(labels: Iterable[tuple[str, str]]) -> str:
    inner = ",".join(f'{k}="{_escape_label(v)}"' for k, v in labels)
    return "{" + inner + "}" if inner else ""


class _Series:
    """One sample line of a family (before merging across files)."""

    __slots__ = ("family", "sample", "labels", "index")

    def __init__(self, family, sample: str, labels: tuple, index: int) -> None:
        self.family = family
        self.sample = sample
        self.labels = labels
        self.index = index


class _Family:
    __slots__ = ("name", "kind", "help", "mode", "series", "plan")

    def __init__(self, name: str, kind: str, help_text: str, mode: str) -> None:
        self.name = name
        self.kind = kind
        self.help = help_text
        self.mode = mode
        self.series: list[_Series] = []
        self.plan = None  # rendered prefixes, rebuilt when a series is added


class _FileState:
    __slots__ = ("inode", "parsed_to", "slots", "stamps")

    def __init__(self, inode: int) -> None:
        self.inode = inode
        self.parsed_to = HEADER_BYTES
        self.slots: list[tuple[int, int]] = []  # (series index, value position in doubles)
        self.stamps: list[tuple[int, int]] = []  # gauges only: (series index, timestamp pos)


class MultiprocessReader:
    """Merges a directory of prometheus_client mmap files, remembering each file's layout."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._lock = threading.Lock()
        self._files: dict[str, _FileState] = {}
        self._families: dict[tuple[str, str], _Family] = {}
        self._series: list[_Series] = []
        self._keys: dict[tuple[str, str, bytes], int] = {}

    def _series_for(self, kind: str, mode: str, pid: str, raw_key: bytes) -> int:
        cache_key = (kind, mode if mode not in ("all", "liveall") else mode + pid, raw_key)
        index = self._keys.get(cache_key)
        if index is not None:
            return index
        family_name, sample, labels, help_text = json.loads(raw_key)
        family = self._families.get((family_name, kind))
        if family is None:
            family = _Family(family_name, kind, help_text, mode)
            self._families[(family_name, kind)] = family
        labels = tuple(sorted(labels.items()))
        if mode in ("all", "liveall"):
            labels = labels + (("pid", pid),)
        series = _Series(family, sample, labels, len(self._series))
        self._series.append(series)
        family.series.append(series)
        family.plan = None
        self._keys[cache_key] = series.index
        return series.index

    def _parse(self, state: _FileState, data: bytes, used: int, kind, mode, pid) -> None:
        pos = state.parsed_to
        from_bytes = int.from_bytes
        while pos + 4 <= used:
            length = from_bytes(data[pos : pos + 4], "little")
            value_at = pos + 4 + length + (8 - (length + 4) % 8)
            if value_at + 16 > used:
                break  # being appended right now (or cut short): next scrape
            raw_key = data[pos + 4 : pos + 4 + length]
            pos = value_at
            try:
                index = self._series_for(kind, mode, pid, raw_key)
            except (ValueError, TypeError, AttributeError) as exc:
                # Not written by prometheus_client: keep what came before, never re-read it.
                logger.warning("metrics file %s_%s is corrupt at byte %d: %s", kind, pid, pos, exc)
                state.parsed_to = used
                return
            state.slots.append((index, pos // 8))
            if kind == "gauge":
                state.stamps.append((index, pos // 8 + 1))
            pos += 16
        state.parsed_to = pos

    def _read(self) -> dict[int, float]:
        """Merged value per series index (gauges merge by their mode)."""
        totals: dict[int, float] = {}
        stamps: dict[int, float] = {}
        try:
            names = os.listdir(self.directory)
        except FileNotFoundError:
            names = []
        for gone in set(self._files) - set(names):
            del self._files[gone]  # its series render only while another file has them
        for name in names:
            match = FILE_NAME.match(name)
            if match is None:
                continue
            kind, mode, pid = match.group(1), match.group(2) or "", match.group(3)
            try:
                with open(os.path.join(self.directory, name), "rb", buffering=0) as handle:
                    inode = os.fstat(handle.fileno()).st_ino
                    data = handle.read()
            except FileNotFoundError:
                continue  # a live gauge file removed by mark_process_dead meanwhile
            if len(data) < 8:
                continue
            used = int.from_bytes(data[0:4], "little")
            used = min(used, len(data)) & ~7
            state = self._files.get(name)
            if state is None or state.inode != inode or used < state.parsed_to:
                state = self._files[name] = _FileState(inode)  # new, or replaced: parse afresh
            self._parse(state, data, used, kind, mode, pid)
            values = memoryview(data)[:used].cast("d")
            if kind != "gauge" or mode in ("sum", "livesum", "all", "liveall"):
                for index, position in state.slots:
                    totals[index] = totals.get(index, 0.0) + values[position]
            else:
                self._merge_gauge(mode, state, values, totals, stamps)
        return totals

    @staticmethod
    def _merge_gauge(mode, state, values, totals, stamps) -> None:
        for (index, position), (_, stamp_position) in zip(state.slots, state.stamps, strict=True):
            value = values[position]
            current = totals.get(index)
            if current is None:
                totals[index] = value
                stamps[index] = values[stamp_position]
            elif mode.endswith("min"):
                totals[index] = min(current, value)
            elif mode.endswith("max"):
                totals[index] = max(current, value)
            elif values[stamp_position] > stamps[index]:  # mostrecent
                totals[index] = value
                stamps[index] = values[stamp_position]

    @staticmethod
    def _plan(family: _Family) -> list[tuple]:
        """Per line: (prefix, series index, how, sample name, labels); buckets summed as they go."""
        if family.kind != "histogram":
            return [
                (s.sample + _label_text(s.labels) + " ", s.index, _PLAIN, s.sample, s.labels)
                for s in family.series
            ]
        groups: dict[tuple, dict] = {}
        for s in family.series:
            le = dict(s.labels).get("le")
            rest = tuple(item for item in s.labels if item[0] != "le")
            group = groups.setdefault(rest, {"buckets": [], "sum": None})
            if le is not None:
                group["buckets"].append((float(le), s.index))
            else:
                group["sum"] = s.index
        plan = []
        name = family.name
        for rest, group in groups.items():
            how = _FIRST_BUCKET
            buckets = sorted(group["buckets"])
            indices = tuple(index for _, index in buckets)
            for le, index in buckets:
                labels = rest + (("le", floatToGoString(le)),)
                prefix = f"{name}_bucket{_label_text(labels)} "
                # The first bucket carries the group's indices: no file has it, no lines.
                plan.append((prefix, index, how, name + "_bucket", labels, indices))
                how = _BUCKET
            if group["buckets"]:
                prefix = f"{name}_count{_label_text(rest)} "
                plan.append((prefix, -1, _COUNT, name + "_count", rest))
            if group["sum"] is not None:
                prefix = f"{name}_sum{_label_text(rest)} "
                plan.append((prefix, group["sum"], _PLAIN, name + "_sum", rest))
        return plan

    def _merged(self):
        """(family, [(plan entry, value), ...]) for every family with data. Lock held by caller."""
        totals = self._read()
        get = totals.get
        for family in self._families.values():
            if family.plan is None:
                family.plan = self._plan(family)
            rows = []
            running = 0.0
            skipping = False
            for entry in family.plan:
                how = entry[2]
                if how == _FIRST_BUCKET:
                    skipping = not any(index in totals for index in entry[5])
                elif how == _PLAIN:
                    skipping = False
                if skipping:
                    continue
                if how == _PLAIN:
                    value = get(entry[1])
                    if value is None:
                        continue
                elif how == _COUNT:
                    value = running
                else:
                    running = get(entry[1], 0.0) + (running if how == _BUCKET else 0.0)
                    value = running
                rows.append((entry, value))
            if rows:
                yield family, rows

    def text(self) -> str:
        with self._lock:
            out: list[str] = []
            for family, rows in self._merged():
                name = family.name + "_total" if family.kind == "counter" else family.name
                help_text = family.help.replace("\\", r"\\").replace("\n", r"\n")
                out.append(f"# HELP {name} {help_text}\n# TYPE {name} {family.kind}")
                out.append("\n".join([entry[0] + _fmt(value) for entry, value in rows]))
            return "\n".join(out) + "\n" if out else ""

    def samples(self, names: set[str]) -> list[tuple[str, dict[str, str], float]]:
        with self._lock:
            return [
                (entry[3], dict(entry[4]), value)
                for _, rows in self._merged()
                for entry, value in rows
                if entry[3] in names
            ]


class ProcessCollector:
    """``process_*`` for every live process that writes metric files (web and Celery workers).

    prometheus_client's own process collector only sees the process answering the scrape;
    this one reads /proc for each pid found in the multiprocess directory.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def describe(self):
        return []

    def collect(self):
        pids = {os.getpid()}
        try:
            for name in os.listdir(self.directory):
                match = FILE_NAME.match(name)
                if match:
                    pids.add(int(match.group(3)))
        except FileNotFoundError:
            return
        families = {
            "rss": Metric("process_resident_memory_bytes", "Resident memory size.", "gauge"),
            "cpu": Metric("process_cpu_seconds", "User and system CPU time spent.", "counter"),
            "fds": Metric("process_open_fds", "Open file descriptors.", "gauge"),
            "threads": Metric("process_threads", "Threads in the process.", "gauge"),
        }
        for pid in sorted(pids):
            try:
                process = psutil.Process(pid)
                with process.oneshot():
                    labels = {"pid": str(pid), "role": _role(process)}
                    cpu = process.cpu_times()
                    families["rss"].add_sample(
                        "process_resident_memory_bytes", labels, process.memory_info().rss
                    )
                    families["cpu"].add_sample(
                        "process_cpu_seconds_total", labels, cpu.user + cpu.system
                    )
                    families["fds"].add_sample("process_open_fds", labels, process.num_fds())
                    families["threads"].add_sample("process_threads", labels, process.num_threads())
            except (psutil.Error, OSError):
                continue  # exited meanwhile, or not ours to read
        yield from families.values()


def _role(process: psutil.Process) -> str:
    command = " ".join(process.cmdline()[:3])
    if "celery" in command:
        return "celery"
    if "gunicorn" in command:
        return "web"
    return "other"
