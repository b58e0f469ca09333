"""The synthetic prober: every check on its own interval, concurrently, into the monitor's store.

Each check has a thread that sleeps until its next attempt (a slow or hung target delays only
itself; an attempt is bounded by the check's timeout). A check is declared down only after
``failures_before_down`` failed attempts in a row, and up again only after
``successes_before_up`` good ones; while it is deciding, attempts come every
``retry_interval`` instead of every interval (``state_next`` is the pure rule).

Every attempt appends blackbox_exporter's series, labelled ``job="synthetic"``,
``instance=<url>``, ``check=<name>`` (what a blackbox_exporter job relabelled the usual way
gives), so the same rules run on either:

- ``probe_success``: the declared state (1 up, 0 down), retries applied;
- ``probe_duration_seconds``, ``probe_http_status_code`` (0: no answer): this attempt's;
- ``probe_ssl_earliest_cert_expiry``: https only, the served certificate's notAfter (unix s);
- ``synthetic_probe_attempt_success``: this attempt's own result, before retries.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from monitoring.synthetic.config import CheckConfig
from monitoring.synthetic.probe import ProbeResult, probe_once, tls_context
from monitoring.tsdb.store import Labels, SampleStore, labels_from

__all__ = ["JOB", "CheckState", "Prober", "state_next"]

logger = logging.getLogger(__name__)

JOB = "synthetic"


@dataclass
class CheckState:
    """What the dashboard and the API show for one check."""

    check: CheckConfig
    up: bool = True  # optimistic until retries say otherwise: a restart raises no false alert
    streak: int = 0  # attempts in a row that disagree with `up`
    attempts: int = 0
    last: ProbeResult | None = None
    last_at_ms: int | None = None
    changed_at_ms: int | None = None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    # Each exported series' label set, built once (the hot path appends four per attempt).
    series: dict[str, Labels] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        labels = {"job": JOB, "instance": self.check.url, "check": self.check.name}
        self.series = {name: labels_from({"__name__": name, **labels}) for name in _SERIES}

    @property
    def source(self) -> str:
        return f"{JOB}|{self.check.name}"


def state_next(up: bool, streak: int, success: bool, check: CheckConfig) -> tuple[bool, int, bool]:
    """(up, streak, retry soon) after one attempt."""
    if success == up:
        return up, 0, False
    streak += 1
    if streak >= (check.failures_before_down if up else check.successes_before_up):
        return not up, 0, False
    return up, streak, True


class Prober:
    def __init__(
        self,
        store: SampleStore,
        checks: list[CheckConfig],
        *,
        clock: Callable[[], int] = lambda: int(time.time() * 1000),
    ):
        self.store = store
        self.clock = clock
        self._contexts: dict[tuple, ssl.SSLContext] = {}
        self._states: dict[str, CheckState] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.update(checks)

    def _context(self, check: CheckConfig) -> ssl.SSLContext | None:
        if not check.url.startswith("https:"):
            return None  # a redirect to https makes a default context in probe_once
        key = check.tls_key
        with self._lock:
            context = self._contexts.get(key)
            if context is None:
                context = tls_context(insecure_skip_verify=key[0], ca_file=key[1])
                self._contexts[key] = context
            return context

    # -- one attempt ---------------------------------------------------------------------------
    def attempt(self, state: CheckState) -> bool:
        """Probe once, update the state, append the series; True: retry soon."""
        check = state.check
        t_ms = self.clock()
        result = probe_once(check, self._context(check))
        with state.lock:
            was_up = state.up
            state.up, state.streak, retry = state_next(
                state.up, state.streak, result.success, check
            )
            state.attempts += 1
            state.last, state.last_at_ms = result, t_ms
            if state.up != was_up:
                state.changed_at_ms = t_ms
        if state.up != was_up:
            log = logger.info if state.up else logger.warning
            log(
                "synthetic check %s is %s%s",
                check.name,
                "up" if state.up else "down",
                f": {result.error}" * bool(result.error),
                extra={"check": check.name, "url": check.url},
            )
        self.store.append_scrape(state.source, _samples(state, result), t_ms)
        return retry

    # -- the loops -----------------------------------------------------------------------------
    def states(self) -> list[CheckState]:
        with self._lock:
            return list(self._states.values())

    def update(self, checks: list[CheckConfig]) -> None:
        """Switch to these checks; a check that stays (same definition) keeps its state, a
        removed one's series go stale at once."""
        running = bool(self._threads)
        if running:
            self.stop()
        old = dict(self._states)
        new = {}
        for check in checks:
            previous = old.pop(check.name, None)
            new[check.name] = (
                previous if previous is not None and previous.check == check else CheckState(check)
            )
        for gone in old.values():
            self.store.mark_source_stale(gone.source, self.clock())
        with self._lock:
            self._states = new
        if running:
            self.start()

    def start(self) -> None:
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(
                target=self._loop,
                args=(state, self._stop),
                name=f"synthetic {state.check.name}",
                daemon=True,
            )
            for state in self.states()
        ]
        for thread in self._threads:
            thread.start()

    def _loop(self, state: CheckState, stop: threading.Event) -> None:
        check = state.check
        # Spread the checks over the first second, so a hundred do not start in one burst.
        next_at = time.monotonic() + (hash(check.name) % 1000) / 1000 * min(check.interval_s, 1.0)
        while not stop.wait(max(0.0, next_at - time.monotonic())):
            retry = False
            try:
                retry = self.attempt(state)
            except Exception:  # a bug in one attempt must not end this check's loop
                logger.exception("synthetic check %s failed", check.name)
            step = (
                min(check.retry_interval_ms / 1000, check.interval_s) if retry else check.interval_s
            )
            next_at += step
            if next_at < time.monotonic():  # fell behind (a slow probe): skip ahead
                next_at = time.monotonic() + step

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads = []

    def close(self) -> None:
        self.stop()


_SERIES = (
    "probe_success",
    "probe_duration_seconds",
    "probe_http_status_code",
    "synthetic_probe_attempt_success",
    "probe_ssl_earliest_cert_expiry",
)


def _samples(state: CheckState, result: ProbeResult) -> list[tuple[Labels, float]]:
    series = state.series
    samples = [
        (series["probe_success"], 1.0 if state.up else 0.0),
        (series["probe_duration_seconds"], result.duration_s),
        (series["probe_http_status_code"], float(result.status_code)),
        (series["synthetic_probe_attempt_success"], float(result.success)),
    ]
    if result.cert_not_after is not None and urlsplit(state.check.url).scheme == "https":
        samples.append((series["probe_ssl_earliest_cert_expiry"], result.cert_not_after))
    return samples
