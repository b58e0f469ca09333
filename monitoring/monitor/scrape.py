"""Scraping targets as Prometheus does: HTTP GET, text-format parse, target labels, report series.

One thread per target loops on the target's own interval, so a slow or hung target delays only
itself (each request is bounded by its `scrape_timeout`). A scrape appends its samples, plus
Prometheus' report series (`up`, `scrape_duration_seconds`, `scrape_samples_scraped`,
`scrape_samples_post_metric_relabeling`), in one `store.append_scrape` call, so the store marks
series stale when a target stops exporting them, and all of a down target's series at once.

Sample timestamps in the exposition are ignored: every sample gets the scrape's start time.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import httpx

from monitoring.monitor.config import MonitorConfig, ScrapeConfig, Target, is_loopback_address
from monitoring.tsdb.store import Labels, SampleStore, labels_from

__all__ = [
    "SELF_JOB",
    "Scraper",
    "TargetState",
    "exposition_lines",
    "exposition_parse",
    "labels_attach",
    "series_parse",
    "with_self_scrape",
]

logger = logging.getLogger(__name__)

ACCEPT = "text/plain;version=0.0.4;q=0.9,*/*;q=0.1"
Sample = tuple[dict[str, str], float]


def now_ms() -> int:
    return int(time.time() * 1000)


_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
_LABEL_PAIR = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(?:,|\Z)', re.S)
_ESCAPED = re.compile(r"\\(.)", re.S)
_UNESCAPE = {"\\": "\\", "n": "\n", '"': '"'}
_TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}
_FAMILY_SUFFIXES = ("_bucket", "_sum", "_count", "_total", "_created")


def _unescape(text: str) -> str:
    if "\\" not in text:
        return text
    return _ESCAPED.sub(lambda m: _UNESCAPE.get(m[1], "\\" + m[1]), text)


def series_parse(series: str) -> dict[str, str]:
    """The part of a sample line before its value, `name{label="value",…}`, as labels with
    `__name__`; ValueError when it is not valid text format."""
    brace = series.find("{")
    name, inner = (series, "") if brace < 0 else (series[:brace], series[brace + 1 : -1])
    if brace >= 0 and not series.endswith("}"):
        raise ValueError(f"invalid sample {series!r}")
    if not _METRIC_NAME.match(name):
        raise ValueError(f"invalid metric name {name!r}")
    labels = {"__name__": name}
    inner = inner.strip()
    at = 0
    while at < len(inner):
        pair = _LABEL_PAIR.match(inner, at)
        if pair is None:
            raise ValueError(f"invalid labels in {series!r}")
        if pair[1] in labels:
            raise ValueError(f"duplicate label {pair[1]!r} in {series!r}")
        labels[pair[1]] = _unescape(pair[2])
        at = pair.end()
    return labels


def exposition_lines(text: str, metadata: dict[str, dict] | None = None) -> list[tuple[str, str]]:
    """``(series, value)`` text of every sample line of a text-format exposition, in order.

    Only the lines are split here (each series is parsed once by whoever caches it, as
    Prometheus' scrape cache does). `metadata`, when given, receives each family's
    `{"type", "help", "unit"}` under the name its TYPE (or HELP) line used, and "unknown" for
    samples of no family. Raises ValueError for a line that is not valid text format."""
    out: list[tuple[str, str]] = []
    types: dict[str, str] = {}
    helps: dict[str, str] = {}
    for number, line in enumerate(text.split("\n"), 1):
        if not line or line[0] in " \t":
            line = line.strip()
            if not line:
                continue
        if line[0] == "#":
            parts = line.split(None, 3)
            if len(parts) >= 3 and parts[1] == "TYPE":
                kind = parts[3].strip() if len(parts) > 3 else ""
                if kind not in _TYPES:
                    raise ValueError(f"line {number}: invalid metric type {kind!r}")
                types[parts[2]] = kind
            elif len(parts) >= 3 and parts[1] == "HELP":
                helps[parts[2]] = _unescape(parts[3]) if len(parts) > 3 else ""
            continue
        close = line.rfind("}")
        if close >= 0:
            series, fields = line[: close + 1], line[close + 1 :].split()
        else:
            series, _, rest = line.partition(" ")
            if "\t" in series:
                series, _, more = series.partition("\t")
                rest = more + " " + rest
            fields = rest.split()
        if not 1 <= len(fields) <= 2:
            raise ValueError(f"line {number}: expected a value (and a timestamp): {line!r}")
        out.append((series, fields[0]))
    if metadata is not None:
        _metadata_of(out, types, helps, metadata)
    return out


def _metadata_of(lines, types: dict[str, str], helps: dict[str, str], metadata: dict) -> None:
    for name in types.keys() | helps.keys():
        kind = types.get(name, "unknown")
        metadata[name] = {
            "type": "unknown" if kind == "untyped" else kind,
            "help": helps.get(name, ""),
            "unit": "",
        }
    for name in {series.partition("{")[0] for series, _ in lines}:
        if name in metadata or any(
            name.endswith(suffix) and name[: -len(suffix)] in types for suffix in _FAMILY_SUFFIXES
        ):
            continue
        metadata[name] = {"type": "unknown", "help": "", "unit": ""}


def exposition_parse(text: str, metadata: dict[str, dict] | None = None) -> list[Sample]:
    """Every sample of a text-format exposition as (labels with __name__, value).

    `metadata`: see `exposition_lines`. Raises ValueError when the text is not valid
    exposition format (the scrape then fails)."""
    return [
        (series_parse(series), float(value)) for series, value in exposition_lines(text, metadata)
    ]


def labels_attach(
    labels: dict[str, str], target_labels: dict[str, str], *, honor_labels: bool
) -> dict[str, str]:
    """Add the target's labels; with honor_labels false a clash keeps the scraped value as
    `exported_<name>` (Prometheus' rule), with honor_labels true the scraped value wins."""
    out = dict(labels)
    for name, value in target_labels.items():
        scraped = out.get(name, "")
        if scraped and honor_labels:
            continue
        if scraped:
            exported = "exported_" + name
            while out.get(exported):
                exported = "exported_" + exported
            out[exported] = scraped
        out[name] = value
    return out


@dataclass
class TargetState:
    """One target's scrape health, for /api/v1/targets and for `up`."""

    job: ScrapeConfig
    target: Target
    labels: dict[str, str]
    health: str = "unknown"  # "up" | "down" | "unknown", as Prometheus reports it
    last_error: str = ""
    last_scrape: datetime | None = None
    last_duration_s: float = 0.0
    last_samples: int = 0
    metadata: dict[str, dict] = field(default_factory=dict)
    # A sample line's series text -> its final label set (target labels attached), so a
    # scrape parses only the series it has not seen before, as Prometheus' scrape cache.
    series_cache: dict[str, Labels] = field(default_factory=dict, repr=False)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def source(self) -> str:
        return f"{self.job.job_name}|{self.url}"

    @property
    def url(self) -> str:
        return self.job.url(self.target)


def target_labels(job: ScrapeConfig, target: Target) -> dict[str, str]:
    """job and instance unless the static labels already set them, as Prometheus defaults them."""
    return {"job": job.job_name, "instance": target.address, **target.labels}


SELF_JOB = "prometheus"


def with_self_scrape(config: MonitorConfig, address: str | None, token: str) -> MonitorConfig:
    """The monitor scraping itself. A job named ``prometheus`` is the Prometheus server's own,
    as in Prometheus' example configuration: real Prometheus scrapes the target written there
    (``localhost:9090``); the embedded monitor scrapes its own API (``address``, host:port)
    instead, sending ``token`` unless the job sets one. Without an API (``monitor once``) the
    job is left out. A configuration without such a job is scraped as written."""
    jobs = []
    for job in config.scrape_configs:
        if job.job_name != SELF_JOB:
            jobs.append(job)
        elif address is not None:
            target = Target(address)
            jobs.append(replace(job, targets=(target,), bearer_token=job.bearer_token or token))
    return replace(config, scrape_configs=tuple(jobs))


def targets_of(config: MonitorConfig) -> list[TargetState]:
    return [
        TargetState(job=job, target=target, labels=target_labels(job, target))
        for job in config.scrape_configs
        for target in job.targets
    ]


class Scraper:
    """Scrapes every target of a configuration into a store; `start()` runs the loops."""

    def __init__(
        self,
        store: SampleStore,
        config: MonitorConfig,
        *,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], int] = now_ms,
        default_token: str = "",
    ):
        self.store = store
        self.clock = clock
        self.default_token = default_token
        self._client = httpx.Client(transport=transport, follow_redirects=False)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._targets: list[TargetState] = []
        self._self_scrape: tuple[str | None, str] = (None, "")  # see scrape_itself
        self.update(config)

    # -- one scrape -----------------------------------------------------------------------------
    def scrape(self, state: TargetState) -> None:
        """Scrape one target now and append the result (or its failure) to the store."""
        t_ms = self.clock()
        started = time.perf_counter()
        samples: list[tuple[Labels | dict[str, str], float]] = []
        error = ""
        try:
            samples = self._fetch(state)
        except (httpx.HTTPError, ValueError, UnicodeDecodeError) as exc:
            samples, error = [], _describe(exc)
        duration = time.perf_counter() - started
        healthy = not error
        report = {
            "up": 1.0 if healthy else 0.0,
            "scrape_duration_seconds": duration,
            "scrape_samples_scraped": float(len(samples)),
            "scrape_samples_post_metric_relabeling": float(len(samples)),
        }
        scraped = len(samples)
        samples.extend(({"__name__": n, **state.labels}, v) for n, v in report.items())
        self.store.append_scrape(state.source, samples, t_ms)
        with state.lock:
            if state.health != ("up" if healthy else "down"):  # log changes, and the first
                log = logger.info if healthy else logger.warning
                log(
                    "target %s is %s%s",
                    state.url,
                    "up" if healthy else "down",
                    f": {error}" * bool(error),
                )
            state.health = "up" if healthy else "down"
            state.last_error = error
            state.last_scrape = datetime.fromtimestamp(t_ms / 1000, tz=UTC)
            state.last_duration_s = duration
            state.last_samples = scraped

    def _fetch(self, state: TargetState) -> list[tuple[Labels | dict[str, str], float]]:
        headers = {"Accept": ACCEPT, "User-Agent": "pasargad-monitor"}
        token = state.job.bearer_token
        if not token and is_loopback_address(state.target.address):
            token = self.default_token
        if token:
            headers["Authorization"] = f"Bearer {token}"
        timeout_s = state.job.timeout_ms / 1000
        headers["X-Prometheus-Scrape-Timeout-Seconds"] = f"{timeout_s:g}"
        response = self._client.get(
            state.url, headers=headers, params=state.job.params or None, timeout=timeout_s
        )
        if response.status_code != 200:
            raise ValueError(
                f"server returned HTTP status {response.status_code} {response.reason_phrase}"
            )
        metadata: dict[str, dict] = {}
        try:
            lines = exposition_lines(response.text, metadata)
            samples = _samples(state, lines)
        except ValueError as exc:
            raise ValueError(f"invalid exposition: {exc}") from None
        state.metadata = metadata
        return samples

    def scrape_all(self) -> None:
        """Scrape every target once, concurrently, and wait for all (used by `monitor once`)."""
        targets = self.targets()
        if not targets:
            return
        with ThreadPoolExecutor(max_workers=min(16, len(targets))) as pool:
            list(pool.map(self.scrape, targets))

    def first_scrapes_done(self) -> bool:
        """Every target has been scraped at least once (successfully or not)."""
        return all(state.last_scrape is not None for state in self.targets())

    def first_scrapes_budget_s(self) -> float:
        """How long the first round of scrapes can take: the longest scrape timeout."""
        return max((t.job.timeout_ms for t in self.targets()), default=0) / 1000

    # -- the loops --------------------------------------------------------------------------------
    def targets(self) -> list[TargetState]:
        with self._lock:
            return list(self._targets)

    def update(self, config: MonitorConfig) -> None:
        """Switch to a new configuration: removed targets' series go stale at once; targets that
        stay keep their health. Running loops are restarted with the new intervals."""
        running = bool(self._threads)
        if running:
            self.stop()
        self._config = config
        old = {t.source: t for t in self.targets()}
        new = []
        for state in targets_of(with_self_scrape(config, *self._self_scrape)):
            previous = old.pop(state.source, None)
            if previous is not None and previous.labels == state.labels:
                state.health, state.last_error = previous.health, previous.last_error
                state.last_scrape = previous.last_scrape
            new.append(state)
        for gone in old.values():
            self.store.mark_source_stale(gone.source, self.clock())
        with self._lock:
            self._targets = new
        if running:
            self.start()

    def scrape_itself(self, address: str, token: str) -> None:
        """Point the ``prometheus`` job at the monitor's own API (see ``with_self_scrape``);
        it stays pointed there across reloads."""
        self._self_scrape = (address, token)
        self.update(self._config)

    def start(self) -> None:
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(
                target=self._loop, args=(state, self._stop), name=f"scrape {state.url}", daemon=True
            )
            for state in self.targets()
        ]
        for thread in self._threads:
            thread.start()

    def _loop(self, state: TargetState, stop: threading.Event) -> None:
        interval = state.job.interval_ms / 1000
        # Spread targets over the interval (as Prometheus does) but start within a second.
        next_at = time.monotonic() + (hash(state.source) % 1000) / 1000 * min(interval, 1.0)
        while not stop.wait(max(0.0, next_at - time.monotonic())):
            try:
                self.scrape(state)
            except Exception:  # a bug in one scrape must not end this target's loop
                logger.exception("scrape of %s failed", state.url)
            next_at += interval
            if next_at < time.monotonic():  # fell behind (slept, or a long scrape): skip ahead
                next_at = time.monotonic() + interval

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads = []

    def close(self) -> None:
        self.stop()
        self._client.close()


def _samples(state: TargetState, lines: list[tuple[str, str]]) -> list[tuple[Labels, float]]:
    """The lines' samples with their final label sets, from the target's series cache."""
    cache = state.series_cache
    get = cache.get

    def labels_of(series: str) -> Labels:
        labels = series_parse(series)
        attached = labels_attach(labels, state.labels, honor_labels=state.job.honor_labels)
        found = cache[series] = labels_from(attached)
        return found

    samples = [(get(series) or labels_of(series), float(value)) for series, value in lines]
    if len(cache) > 2 * len(lines) + 1000:  # series churn: keep only what this scrape had
        state.series_cache = {series: cache[series] for series, _ in lines}
    return samples


def _describe(exc: BaseException) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return "context deadline exceeded"
    return str(exc) or type(exc).__name__
