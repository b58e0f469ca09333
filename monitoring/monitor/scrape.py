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
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import httpx
from prometheus_client.parser import text_string_to_metric_families

from monitoring.monitor.config import MonitorConfig, ScrapeConfig, Target, is_loopback_address
from monitoring.tsdb.store import SampleStore

__all__ = [
    "SELF_JOB",
    "Scraper",
    "TargetState",
    "exposition_parse",
    "labels_attach",
    "with_self_scrape",
]

logger = logging.getLogger(__name__)

ACCEPT = "text/plain;version=0.0.4;q=0.9,*/*;q=0.1"
Sample = tuple[dict[str, str], float]


def now_ms() -> int:
    return int(time.time() * 1000)


def exposition_parse(text: str, metadata: dict[str, dict] | None = None) -> list[Sample]:
    """Every sample of a text-format exposition as (labels with __name__, value).

    `metadata`, when given, receives each family's `{"type", "help", "unit"}` under the name
    its TYPE line used (prometheus_client drops a counter's `_total`; Prometheus keeps it).
    Raises ValueError when the text is not valid exposition format (the scrape then fails).
    """
    samples: list[Sample] = []
    try:
        for family in text_string_to_metric_families(text):
            if metadata is not None:
                name = family.name
                if family.type == "counter" and any(
                    sample.name == name + "_total" for sample in family.samples
                ):
                    name += "_total"
                metadata[name] = {"type": family.type, "help": family.documentation, "unit": ""}
            for sample in family.samples:
                labels = {"__name__": sample.name, **sample.labels}
                samples.append((labels, float(sample.value)))
    except (ValueError, IndexError, KeyError, TypeError) as exc:
        raise ValueError(f"invalid exposition: {exc}") from None
    return samples


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
        samples: list[Sample] = []
        error = ""
        try:
            samples = self._fetch(state)
        except (httpx.HTTPError, ValueError, UnicodeDecodeError) as exc:
            error = _describe(exc)
        duration = time.perf_counter() - started
        healthy = not error
        attached = [
            (labels_attach(labels, state.labels, honor_labels=state.job.honor_labels), value)
            for labels, value in samples
        ]
        report = {
            "up": 1.0 if healthy else 0.0,
            "scrape_duration_seconds": duration,
            "scrape_samples_scraped": float(len(samples)),
            "scrape_samples_post_metric_relabeling": float(len(samples)),
        }
        attached.extend(({"__name__": n, **state.labels}, v) for n, v in report.items())
        self.store.append_scrape(state.source, attached, t_ms)
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
            state.last_samples = len(samples)

    def _fetch(self, state: TargetState) -> list[Sample]:
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
        samples = exposition_parse(response.text, metadata)
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


def _describe(exc: BaseException) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return "context deadline exceeded"
    return str(exc) or type(exc).__name__
