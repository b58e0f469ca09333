"""System: CPU (overall and per core), memory, swap, disks, network, load, and the resources
of the web (gunicorn) and Celery worker processes.

CPU percentages come from the difference of cpu_times between two readings of this collector
(the first reading: since boot), so a scrape never sleeps.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections import Counter
from pathlib import Path
from types import ModuleType
from typing import Any

import psutil

from monitoring.collectors.base import CachedReading, Collector, Families, Reading

# This checkout, and the modules `celery -A` may name for its Celery app (config/celery.py).
PROJECT_ROOT = Path(__file__).resolve().parents[2]
CELERY_APP_MODULES = ("config", "config.celery", "config.celery.app")
# Virtual block devices whose I/O says nothing about the machine's disks.
_SKIPPED_DISK_PREFIXES = ("loop", "ram", "zram", "dm-")
MIN_CPU_WINDOW_SECONDS = 1.0


def _busy_percent(before: Any, after: Any) -> float | None:
    busy_before = sum(before) - before.idle - getattr(before, "iowait", 0.0)
    busy_after = sum(after) - after.idle - getattr(after, "iowait", 0.0)
    total = sum(after) - sum(before)
    if total <= 0:
        return None
    return round(min(100.0, max(0.0, 100.0 * (busy_after - busy_before) / total)), 3)


# The `st` column of /proc/net/tcp{,6} (include/net/tcp_states.h), named as psutil names them.
_TCP_STATES = {
    "01": "established", "02": "syn_sent", "03": "syn_recv", "04": "fin_wait1",
    "05": "fin_wait2", "06": "time_wait", "07": "close", "08": "close_wait",
    "09": "last_ack", "0A": "listen", "0B": "closing",
}  # fmt: skip
# "  12: 0100007F:1F90 00000000:0000 0A ...": slot, local, remote, then the state.
_STATE_COLUMN = re.compile(r"^ *\d+: \S+ \S+ ([0-9A-F]{2}) ", re.MULTILINE)


def connection_states(proc: Path) -> dict[str, int] | None:
    """Inet sockets by TCP state ("none" for UDP), counted from the kernel's socket tables.

    Read directly rather than through psutil.net_connections(), which also walks every
    process's file descriptors to find owners: tens of milliseconds per scrape on a busy host.
    """
    states: dict[str, int] = {}
    found = False
    for table in ("tcp", "tcp6", "udp", "udp6"):
        try:
            text = (proc / "net" / table).read_text()
        except OSError:
            continue  # no IPv6, or no /proc: report what the other tables give
        found = True
        for code, count in Counter(_STATE_COLUMN.findall(text)).items():
            state = _TCP_STATES.get(code, "unknown") if table.startswith("tcp") else "none"
            states[state] = states.get(state, 0) + count
    return states if found else None


# The socket tables and the process list cost tens of milliseconds on a busy host and change
# slowly: a scrape serves the last reading while a background refresh runs at most this often.
SLOW_READING_INTERVAL_SECONDS = 10.0


def celery_app_argument(argv: list[str]) -> str | None:
    """The value of `-A`/`--app` in a Celery command line, if any."""
    for i, arg in enumerate(argv):
        if arg in ("-A", "--app"):
            return argv[i + 1] if i + 1 < len(argv) else None
        if arg.startswith("--app="):
            return arg.split("=", 1)[1]
        if arg.startswith("-A") and len(arg) > 2:
            return arg[2:]
    return None


def is_our_celery_worker(argv: list[str], cwd: str | None, *, root: Path) -> bool:
    """A `celery … worker` of this deployment: it runs in this checkout (`root`, where
    `make up` and the service files start it) and its `-A` (when given) names our app, the
    `config` package. Another deployment's workers on the same host run elsewhere or another
    app, and another user's processes do not show their directory (`cwd` None)."""
    if "worker" not in argv or not any("celery" in arg for arg in argv) or cwd is None:
        return False
    directory = Path(cwd)
    if directory != root and root not in directory.parents:
        return False
    app = celery_app_argument(argv)
    return app is None or app.split(":", 1)[0] in CELERY_APP_MODULES


class SystemCollector(Collector):
    name = "system"

    def __init__(
        self,
        *,
        ps: ModuleType = psutil,
        pid: int | None = None,
        proc: Path = Path("/proc"),
        root: Path = PROJECT_ROOT,
    ) -> None:
        self.ps = ps
        self.proc = proc
        self.root = root.resolve()
        self._slow = CachedReading(
            self._read_slow,
            interval=SLOW_READING_INTERVAL_SECONDS,
            budget=0.0,
            name="system-sockets-processes",
        )
        self.pid = pid if pid is not None else os.getpid()
        self._lock = threading.Lock()
        self._zero = ps.cpu_times().__class__(*([0.0] * len(ps.cpu_times())))
        self._last_total: Any = self._zero
        self._last_cores: list[Any] = []
        self._prev_total: Any = self._zero
        self._prev_cores: list[Any] = []
        self._processes: dict[int, tuple[float, float]] = {}

    # --- CPU ---
    def _cpu(self) -> dict[str, Any]:
        total = self.ps.cpu_times()
        cores = self.ps.cpu_times(percpu=True)
        with self._lock:
            last_total, last_cores = self._last_total, self._last_cores
            if len(last_cores) != len(cores):
                last_cores = [self._zero] * len(cores)
            # cpu_times tick at 10 ms: move the baseline only after a meaningful interval, so
            # two scrapes close together don't report noise; such a scrape measures from the
            # baseline before (at worst: since boot), never over a window of a few ticks.
            if sum(total) - sum(last_total) >= MIN_CPU_WINDOW_SECONDS * len(cores):
                self._prev_total, self._prev_cores = last_total, last_cores
                self._last_total, self._last_cores = total, cores
            else:
                last_total, last_cores = self._prev_total, self._prev_cores
                if len(last_cores) != len(cores):
                    last_cores = [self._zero] * len(cores)
        return {
            "cpu_usage_percent": _busy_percent(last_total, total),
            "cpu_core_usage_percent": {
                str(i): _busy_percent(before, after)
                for i, (before, after) in enumerate(zip(last_cores, cores, strict=True))
            },
            "cpu_cores": len(cores),
        }

    # --- memory, disks, network, load ---
    def _memory(self) -> dict[str, Any]:
        vm = self.ps.virtual_memory()
        swap = self.ps.swap_memory()
        return {
            "memory_usage_percent": vm.percent,
            "memory_total_bytes": vm.total,
            "memory_available_bytes": vm.available,
            "memory_used_bytes": vm.used,
            "memory_buffers_bytes": getattr(vm, "buffers", None),
            "memory_cached_bytes": getattr(vm, "cached", None),
            "swap_usage_percent": swap.percent,
            "swap_total_bytes": swap.total,
            "swap_used_bytes": swap.used,
        }

    def _disks(self) -> dict[str, Any]:
        mountpoints = {"/"} | {p.mountpoint for p in self.ps.disk_partitions(all=False)}
        usage = {}
        for mountpoint in sorted(mountpoints):
            try:
                du = self.ps.disk_usage(mountpoint)
            except OSError:  # unmounted or unreadable since listing: skip, don't fail
                continue
            usage[mountpoint] = {
                "usage_percent": du.percent,
                "total_bytes": du.total,
                "used_bytes": du.used,
                "free_bytes": du.free,
            }
        io = {
            device: {
                "read_bytes_total": c.read_bytes,
                "written_bytes_total": c.write_bytes,
                "reads_total": c.read_count,
                "writes_total": c.write_count,
                "busy_seconds_total": getattr(c, "busy_time", 0) / 1000.0,
            }
            for device, c in (self.ps.disk_io_counters(perdisk=True) or {}).items()
            if not device.startswith(_SKIPPED_DISK_PREFIXES)
        }
        return {"disks": usage, "disk_io": io}

    def _network(self, connections: dict[str, int] | None) -> dict[str, Any]:
        interfaces = {
            name: {
                "received_bytes_total": c.bytes_recv,
                "sent_bytes_total": c.bytes_sent,
                "receive_errors_total": c.errin,
                "transmit_errors_total": c.errout,
                "receive_drops_total": c.dropin,
                "transmit_drops_total": c.dropout,
            }
            for name, c in self.ps.net_io_counters(pernic=True).items()
        }
        return {"network": interfaces, "network_connections": connections}

    def _load(self) -> dict[str, Any]:
        one, five, fifteen = self.ps.getloadavg()
        return {
            "load_average_1m": one,
            "load_average_5m": five,
            "load_average_15m": fifteen,
            "boot_time_seconds": self.ps.boot_time(),
        }

    # --- web and worker processes ---
    def process_roles(self) -> dict[int, str]:
        """This deployment's Celery workers (see `is_our_celery_worker`), then the web
        processes: this one, or its gunicorn master and every process under it."""
        roles: dict[int, str] = {}
        for proc in self.ps.process_iter(["pid", "cmdline", "cwd"]):
            argv, cwd = proc.info.get("cmdline") or [], proc.info.get("cwd")
            if is_our_celery_worker(argv, cwd, root=self.root):
                roles[proc.info["pid"]] = "celery"
        try:
            me = self.ps.Process(self.pid)
            parent = me.parent()
            web_root = parent if parent is not None and "gunicorn" in _cmdline(parent) else me
            for proc in (web_root, *web_root.children(recursive=True)):
                roles.setdefault(proc.pid, "web")
        except psutil.Error:
            pass
        return roles

    def _read_slow(self) -> Reading:
        return {"network_connections": connection_states(self.proc), "roles": self.process_roles()}

    def _process_stats(self, roles: dict[int, str]) -> dict[str, Any]:
        per_role: dict[str, dict[str, float]] = {}
        seen: dict[int, tuple[float, float]] = {}
        now = time.time()
        for pid, role in roles.items():
            try:
                proc = self.ps.Process(pid)
                with proc.oneshot():
                    times = proc.cpu_times()
                    cpu_seconds = times.user + times.system
                    # CPU since the previous reading of this process (the first: since it started).
                    last_wall, last_cpu = self._processes.get(pid, (proc.create_time(), 0.0))
                    stats = {
                        "count": 1,
                        "cpu_percent": 100.0
                        * (cpu_seconds - last_cpu)
                        / max(now - last_wall, 1e-3),
                        "resident_memory_bytes": proc.memory_info().rss,
                        "threads": proc.num_threads(),
                        "open_fds": proc.num_fds(),
                    }
            except psutil.Error:  # the process ended between listing and reading
                continue
            seen[pid] = (now, cpu_seconds)
            totals = per_role.setdefault(role, dict.fromkeys(stats, 0.0))
            for key, value in stats.items():
                totals[key] += value
        self._processes = seen
        return {"processes": per_role}

    def read(self) -> Reading:
        # The first reading of a process is taken inline; later ones come from the background.
        slow = self._slow.get() or self._read_slow()
        with self._lock:
            processes = self._process_stats(slow["roles"])
        return {
            **self._cpu(),
            **self._memory(),
            **self._disks(),
            **self._network(slow["network_connections"]),
            **self._load(),
            **processes,
        }

    def families(self, reading: Reading) -> Families:
        return families_from_reading(reading)


def _cmdline(proc: Any) -> str:
    try:
        return " ".join(proc.cmdline())
    except psutil.Error:
        return ""


_SCALARS = {
    "cpu_usage_percent": "CPU busy time over all cores since the previous scrape.",
    "cpu_cores": "Logical CPU cores (divides the load average into a load per core).",
    "memory_usage_percent": "RAM in use (total minus available).",
    "memory_total_bytes": "Total RAM.",
    "memory_available_bytes": "RAM available without swapping.",
    "memory_used_bytes": "RAM used.",
    "memory_buffers_bytes": "RAM used for kernel buffers.",
    "memory_cached_bytes": "RAM used for the page cache.",
    "swap_usage_percent": "Swap in use.",
    "swap_total_bytes": "Total swap.",
    "swap_used_bytes": "Swap used.",
    "boot_time_seconds": "Unix time the machine booted.",
}
_LOADS = {
    "load_average_1m": "system_load_average_1m",
    "load_average_5m": "system_load_average_5m",
    "load_average_15m": "system_load_average_15m",
}
_DISK = {
    "usage_percent": ("disk_usage_percent", "Space used on a mounted filesystem."),
    "total_bytes": ("disk_total_bytes", "Size of a mounted filesystem."),
    "used_bytes": ("disk_used_bytes", "Space used on a mounted filesystem."),
    "free_bytes": ("disk_free_bytes", "Space free for unprivileged users."),
}
_PROCESS = {
    "count": ("app_processes", "Processes of this role."),
    "cpu_percent": (
        "app_process_cpu_percent",
        "CPU used since the previous scrape (100 = a core).",
    ),
    "resident_memory_bytes": ("app_process_resident_memory_bytes", "Resident memory."),
    "threads": ("app_process_threads", "Threads."),
    "open_fds": ("app_process_open_fds", "Open file descriptors."),
}


def _prefixed_counters(
    families: Families, table: dict[str, dict[str, float]], prefix: str, label: str
) -> None:
    for name, counters in table.items():
        for key, value in counters.items():
            families.counter(
                f"{prefix}_{key}", f"{prefix} {key} per {label}.", value, **{label: name}
            )


def families_from_reading(reading: Reading) -> Families:
    families = Families()
    for key, doc in _SCALARS.items():
        name = key if key.startswith(("cpu_usage", "memory_", "swap_")) else f"system_{key}"
        families.gauge(name, doc, reading[key])
    for key, name in _LOADS.items():
        families.gauge(name, f"Load average over {key.rsplit('_', 1)[-1]}.", reading[key])
    for core, percent in reading["cpu_core_usage_percent"].items():
        families.gauge("cpu_core_usage_percent", "CPU busy time per core.", percent, core=core)
    for mountpoint, usage in reading["disks"].items():
        for key, (name, doc) in _DISK.items():
            families.gauge(name, doc, usage[key], mountpoint=mountpoint)
    _prefixed_counters(families, reading["disk_io"], "disk", "device")
    _prefixed_counters(families, reading["network"], "network", "interface")
    for state, count in (reading["network_connections"] or {}).items():
        families.gauge("network_connections", "Inet sockets by TCP state.", count, state=state)
    for role, stats in reading["processes"].items():
        for key, (name, doc) in _PROCESS.items():
            families.gauge(name, doc, stats[key], role=role)
    return families
