"""The monitor's configuration: a Prometheus-style `prometheus.yml` plus settings from env.

`config_load(path)` validates the whole file and raises `ConfigError` listing every problem as
`file:line: problem`; a valid file gives an immutable `MonitorConfig`. The subset understood is
what the specification's prometheus.yml uses, plus the common scrape options (bearer auth,
scheme, per-job intervals and timeouts, honor_labels). Anything else is refused, never ignored.
"""

from __future__ import annotations

import glob
import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from yaml.nodes import Node

from monitoring.configfile import ConfigError, Reader
from monitoring.rules.gofmt import parse_duration_ms

__all__ = [
    "MonitorConfig",
    "MonitorSettings",
    "ScrapeConfig",
    "Target",
    "app_target_apply",
    "config_load",
    "config_load_partial",
    "rule_files_resolve",
    "settings_from_env",
]

_DEFAULT_SCRAPE_INTERVAL_MS = 60_000
_DEFAULT_SCRAPE_TIMEOUT_MS = 10_000
_DEFAULT_EVALUATION_INTERVAL_MS = 60_000
_TARGET = re.compile(r"^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9_.-]+):\d{1,5}$")
_JOB_NAME = re.compile(r"^\S(.*\S)?$")


@dataclass(frozen=True)
class Target:
    address: str  # host:port, Prometheus' __address__
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ScrapeConfig:
    job_name: str
    targets: tuple[Target, ...]
    metrics_path: str = "/metrics"
    scheme: str = "http"
    interval_ms: int = _DEFAULT_SCRAPE_INTERVAL_MS
    timeout_ms: int = _DEFAULT_SCRAPE_TIMEOUT_MS
    bearer_token: str = ""
    honor_labels: bool = False
    params: dict[str, list[str]] = field(default_factory=dict)

    def url(self, target: Target) -> str:
        return f"{self.scheme}://{target.address}{self.metrics_path}"


def is_loopback_address(address: str) -> bool:
    """host:port on this machine (localhost, 127.0.0.0/8, ::1)."""
    host = address.rpartition(":")[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class MonitorConfig:
    path: Path
    scrape_interval_ms: int
    scrape_timeout_ms: int
    evaluation_interval_ms: int
    external_labels: dict[str, str]
    rule_files: tuple[Path, ...]
    scrape_configs: tuple[ScrapeConfig, ...]
    alertmanagers: tuple[str, ...] = ()  # accepted for compatibility; the notifier is separate


@dataclass(frozen=True)
class MonitorSettings:
    """The monitor process' own settings (not part of prometheus.yml)."""

    listen_host: str
    listen_port: int
    retention_ms: int
    api_token: str
    # Sent to loopback targets whose job configures no authorization: the embedded default,
    # where the monitor scrapes the token-protected app running beside it.
    scrape_token: str = ""
    # The monitor's own state (alert state, transitions): never in the database it watches.
    state_path: Path = field(default_factory=lambda: default_state_path({}))
    # How long recorded transitions are kept (a live alert's last one is kept however old).
    state_retention_ms: int = 30 * 86400_000
    # MONITOR_APP_TARGET: where the app's job scrapes instead of prometheus.yml's targets.
    app_target: str = ""
    # Where `monitor run` keeps its samples (write-ahead log and blocks, monitoring.tsdb.disk).
    data_dir: Path | None = None
    # The notifier's alertmanager.yml (NOTIFY_CONFIG; None: `off`, nobody is told) and how long
    # a notification is retried before it fails (NOTIFY_DELIVERY_DEADLINE).
    notify_config: Path | None = None
    notify_deadline_ms: int = 600_000
    # The synthetic checks file (SYNTHETIC_CONFIG; None: no probes, nothing runs).
    synthetic_config: Path | None = None

    @property
    def loopback(self) -> bool:
        return is_loopback_address(f"{self.listen_host}:{self.listen_port}")


_REPO = Path(__file__).resolve().parents[2]
_NOTIFY_CONFIG = "deploy/alertmanager/alertmanager.yml"  # as config/settings/base.py's default


def default_var_dir(env: dict[str, str]) -> Path:
    """VAR_DIR, defaulting to the checkout's var/ as the app's does."""
    return Path(env.get("VAR_DIR", "") or _REPO / "var")


def default_state_path(env: dict[str, str]) -> Path:
    """$VAR_DIR/monitor/state.sqlite3."""
    return default_var_dir(env) / "monitor" / "state.sqlite3"


def settings_from_env(environ: dict[str, str] | None = None) -> MonitorSettings:
    """MONITOR_LISTEN (127.0.0.1:9091), MONITOR_RETENTION (6h), MONITOR_TOKEN (MONITORING_TOKEN),
    MONITOR_SCRAPE_TOKEN (MONITORING_TOKEN), MONITOR_STATE_PATH ($VAR_DIR/monitor/state.sqlite3),
    MONITOR_STATE_RETENTION (30d), MONITOR_DATA_DIR ($VAR_DIR/monitor/data), MONITOR_APP_TARGET
    (unset), NOTIFY_CONFIG (deploy/alertmanager/alertmanager.yml; `off` for no notifier),
    NOTIFY_DELIVERY_DEADLINE (10m), SYNTHETIC_CONFIG (unset or `off`: no synthetic checks;
    `make up` sets deploy/synthetic/checks.yml).

    Raises ConfigError for a malformed value, and when the API would be reachable from other
    machines without a token.
    """
    env = os.environ if environ is None else environ
    errors = []
    listen = env.get("MONITOR_LISTEN", "") or "127.0.0.1:9091"
    host, _, port_text = listen.rpartition(":")
    host = host.strip("[]")
    if not host or not port_text.isdigit() or int(port_text) > 65535:
        errors.append(f"MONITOR_LISTEN={listen!r}: expected host:port")
        host, port_text = "127.0.0.1", "9091"
    retention_ms = _duration_setting(env, "MONITOR_RETENTION", "6h", errors)
    state_retention_ms = _duration_setting(env, "MONITOR_STATE_RETENTION", "30d", errors)
    token = env.get("MONITOR_TOKEN", "") or env.get("MONITORING_TOKEN", "")
    scrape_token = env.get("MONITOR_SCRAPE_TOKEN", "") or env.get("MONITORING_TOKEN", "")
    state_path = Path(env.get("MONITOR_STATE_PATH", "") or default_state_path(env))
    app_target = env.get("MONITOR_APP_TARGET", "")
    if app_target and not _TARGET.match(app_target):
        errors.append(f"MONITOR_APP_TARGET={app_target!r}: expected host:port")
        app_target = ""
    data_dir = Path(env.get("MONITOR_DATA_DIR", "") or default_var_dir(env) / "monitor" / "data")
    notify_text = env.get("NOTIFY_CONFIG", "") or "deploy/alertmanager/alertmanager.yml"
    notify_config = None if notify_text == "off" else _REPO / notify_text
    deadline_text = env.get("NOTIFY_DELIVERY_DEADLINE", "") or "10m"
    notify_deadline_ms = parse_duration_ms(deadline_text)
    if not notify_deadline_ms:
        errors.append(f"NOTIFY_DELIVERY_DEADLINE={deadline_text!r}: expected a duration like 10m")
        notify_deadline_ms = 600_000
    synthetic_text = env.get("SYNTHETIC_CONFIG", "")
    synthetic_config = None if synthetic_text in ("", "off") else _REPO / synthetic_text
    result = MonitorSettings(
        host,
        int(port_text),
        retention_ms,
        token,
        scrape_token,
        state_path=state_path,
        state_retention_ms=state_retention_ms,
        app_target=app_target,
        data_dir=data_dir,
        notify_config=notify_config,
        notify_deadline_ms=notify_deadline_ms,
        synthetic_config=synthetic_config,
    )
    if not result.loopback and not token:
        errors.append(
            f"MONITOR_LISTEN={listen!r} is not a loopback address: set MONITOR_TOKEN "
            "(or MONITORING_TOKEN) so the API is not open to the network"
        )
    if errors:
        raise ConfigError(errors)
    return result


def _duration_setting(env: Mapping[str, str], name: str, default: str, errors: list[str]) -> int:
    """A positive duration setting in ms; a malformed one is reported and takes the default."""
    text = env.get(name, "") or default
    value = parse_duration_ms(text)
    if not value:
        errors.append(f"{name}={text!r}: expected a duration like {default}")
        value = parse_duration_ms(default)
    return value


_TOP_KEYS = {"global", "rule_files", "scrape_configs", "alerting"}
_GLOBAL_KEYS = {"scrape_interval", "scrape_timeout", "evaluation_interval", "external_labels"}
_SCRAPE_KEYS = {
    "job_name",
    "static_configs",
    "metrics_path",
    "scheme",
    "scrape_interval",
    "scrape_timeout",
    "authorization",
    "bearer_token",
    "bearer_token_file",
    "honor_labels",
    "params",
}


def config_load(path: Path | str, text: str | None = None) -> MonitorConfig:
    """Load and validate a prometheus.yml; raises ConfigError with every problem found."""
    config, errors = config_load_partial(path, text)
    if errors:
        raise ConfigError(errors)
    return config


def config_load_partial(
    path: Path | str, text: str | None = None
) -> tuple[MonitorConfig, list[str]]:
    """What can be used of a prometheus.yml, and every problem found (`file:line: problem`).

    For a start-up that must not fail on a typo: a scrape job with a problem is left out, a
    malformed global value takes its default, and a file that is not YAML at all gives a
    configuration with no jobs and no rule files."""
    path = Path(path)
    reader = Reader(path, text)
    if reader.errors:
        return _empty_config(path), reader.sorted_errors()
    top = reader.mapping(reader.root, "top level", allowed=_TOP_KEYS)
    glob_ = reader.mapping(top.get("global"), "global", allowed=_GLOBAL_KEYS)
    scrape_interval = reader.duration_ms(
        glob_.get("scrape_interval"), "global.scrape_interval", _DEFAULT_SCRAPE_INTERVAL_MS
    )
    scrape_timeout = reader.duration_ms(
        glob_.get("scrape_timeout"),
        "global.scrape_timeout",
        min(_DEFAULT_SCRAPE_TIMEOUT_MS, scrape_interval),
    )
    if scrape_timeout > scrape_interval:
        reader.error(
            glob_["scrape_timeout"], "global.scrape_timeout is greater than scrape_interval"
        )
        scrape_timeout = scrape_interval
    evaluation_interval = reader.duration_ms(
        glob_.get("evaluation_interval"),
        "global.evaluation_interval",
        _DEFAULT_EVALUATION_INTERVAL_MS,
    )
    external_labels = reader.labels(glob_.get("external_labels"), "global.external_labels")

    rule_files = _rule_files(reader, path.parent, top.get("rule_files"))
    scrape_configs = []
    seen_jobs: set[str] = set()
    for node in reader.sequence(top.get("scrape_configs"), "scrape_configs"):
        problems_before = len(reader.errors)
        job = _scrape_config(reader, path.parent, node, scrape_interval, scrape_timeout)
        if job is None:
            continue
        if job.job_name in seen_jobs:
            reader.error(node, f"scrape_configs: duplicate job_name {job.job_name!r}")
        seen_jobs.add(job.job_name)
        if len(reader.errors) == problems_before:  # a job with any problem is left out
            scrape_configs.append(job)
    alertmanagers = _alerting(reader, top.get("alerting"))
    config = MonitorConfig(
        path=path,
        scrape_interval_ms=scrape_interval,
        scrape_timeout_ms=scrape_timeout,
        evaluation_interval_ms=evaluation_interval,
        external_labels=external_labels,
        rule_files=tuple(rule_files),
        scrape_configs=tuple(scrape_configs),
        alertmanagers=tuple(alertmanagers),
    )
    return config, reader.sorted_errors()


def _empty_config(path: Path) -> MonitorConfig:
    return MonitorConfig(
        path=path,
        scrape_interval_ms=_DEFAULT_SCRAPE_INTERVAL_MS,
        scrape_timeout_ms=_DEFAULT_SCRAPE_TIMEOUT_MS,
        evaluation_interval_ms=_DEFAULT_EVALUATION_INTERVAL_MS,
        external_labels={},
        rule_files=(),
        scrape_configs=(),
    )


# The app's own Prometheus endpoint (monitoring/exposition/urls.py): a scrape job with this
# metrics_path is the app's job, whose target MONITOR_APP_TARGET replaces.
APP_METRICS_PATH = "/api/monitoring/prometheus/"


def app_base_url(config: MonitorConfig) -> str:
    """The shop's base URL (scheme://host:port) as its scrape job reaches it: what a synthetic
    check's relative URL (`/login/`) is resolved against. '' without an app job."""
    for job in config.scrape_configs:
        if job.metrics_path == APP_METRICS_PATH and job.targets:
            return f"{job.scheme}://{job.targets[0].address}"
    return ""


def app_target_apply(config: MonitorConfig, address: str) -> tuple[MonitorConfig, list[str]]:
    """The configuration with every app job scraping `address` instead of its own targets.

    `make up` serves the shop on BIND, not necessarily where prometheus.yml (kept valid for real
    Prometheus, which scrapes the app wherever it is deployed) says; it tells the monitor
    through MONITOR_APP_TARGET. An empty address changes nothing."""
    if not address:
        return config, []
    jobs = []
    found = False
    for job in config.scrape_configs:
        if job.metrics_path == APP_METRICS_PATH:
            found = True
            labels = job.targets[0].labels if job.targets else {}
            job = replace(job, targets=(Target(address, labels),))
        jobs.append(job)
    if not found:
        return config, [
            f"{config.path}:0: MONITOR_APP_TARGET={address}: no scrape job has metrics_path "
            f"{APP_METRICS_PATH!r}, so no target was replaced"
        ]
    return replace(config, scrape_configs=tuple(jobs)), []


def _rule_files(reader: Reader, base: Path, node: Node | None) -> list[Path]:
    patterns = [reader.string(item, "rule_files[]") for item in reader.sequence(node, "rule_files")]
    return rule_files_resolve(base, [p for p in patterns if p is not None])


def rule_files_resolve(base: Path, patterns: list[str]) -> list[Path]:
    """Globs relative to the configuration file, as Prometheus resolves them."""
    found: list[Path] = []
    for pattern in patterns:
        full = pattern if os.path.isabs(pattern) else str(base / pattern)
        if glob.has_magic(full):
            found.extend(Path(p) for p in sorted(glob.glob(full)))
        else:
            found.append(Path(full))  # a missing literal file is the rule loader's error
    return list(dict.fromkeys(found))


def _scrape_config(
    reader: Reader, base: Path, node: Node, default_interval: int, default_timeout: int
) -> ScrapeConfig | None:
    keys = reader.mapping(node, "scrape_configs[]", allowed=_SCRAPE_KEYS, required={"job_name"})
    job_name = reader.string(keys.get("job_name"), "job_name")
    if job_name is None:
        return None
    where = f"scrape_configs[{job_name}]"
    if not _JOB_NAME.match(job_name):
        reader.error(keys["job_name"], f"{where}: job_name must not be empty or padded")
    interval = reader.duration_ms(
        keys.get("scrape_interval"), f"{where}.scrape_interval", default_interval
    )
    timeout = reader.duration_ms(
        keys.get("scrape_timeout"), f"{where}.scrape_timeout", min(default_timeout, interval)
    )
    if timeout > interval:
        reader.error(
            keys.get("scrape_timeout") or keys.get("scrape_interval") or node,
            f"{where}: scrape_timeout ({timeout} ms) is greater than scrape_interval ({interval} ms)",
        )
    metrics_path = reader.string(keys.get("metrics_path"), f"{where}.metrics_path", "/metrics")
    if metrics_path is not None and not metrics_path.startswith("/"):
        reader.error(keys["metrics_path"], f"{where}.metrics_path must start with '/'")
    scheme = reader.string(keys.get("scheme"), f"{where}.scheme", "http")
    if scheme not in ("http", "https"):
        reader.error(keys["scheme"], f"{where}.scheme must be http or https, not {scheme!r}")
    honor = keys.get("honor_labels")
    honor_labels = False
    if honor is not None:
        if getattr(honor, "tag", "").endswith(":bool"):
            honor_labels = honor.value.lower() == "true"
        else:
            reader.error(honor, f"{where}.honor_labels must be true or false")
    params = _params(reader, keys.get("params"), where)
    token = _bearer_token(reader, base, keys, where)
    targets = _static_configs(reader, keys.get("static_configs"), where)
    return ScrapeConfig(
        job_name=job_name,
        targets=tuple(targets),
        metrics_path=metrics_path or "/metrics",
        scheme=scheme or "http",
        interval_ms=interval,
        timeout_ms=timeout,
        bearer_token=token,
        honor_labels=honor_labels,
        params=params,
    )


def _static_configs(reader: Reader, node: Node | None, where: str) -> list[Target]:
    targets = []
    for item in reader.sequence(node, f"{where}.static_configs"):
        keys = reader.mapping(item, f"{where}.static_configs[]", allowed={"targets", "labels"})
        labels = reader.labels(keys.get("labels"), f"{where}.static_configs[].labels")
        for target_node in reader.sequence(
            keys.get("targets"), f"{where}.static_configs[].targets"
        ):
            address = reader.string(target_node, f"{where}.targets[]")
            if address is None:
                continue
            if not _TARGET.match(address):
                reader.error(target_node, f"{where}: target {address!r} is not host:port")
                continue
            targets.append(Target(address, labels))
    return targets


def _params(reader: Reader, node: Node | None, where: str) -> dict[str, list[str]]:
    params: dict[str, list[str]] = {}
    if node is None:
        return params
    for name, value_node in reader.mapping(node, f"{where}.params", allowed=_AnyKey()).items():
        values = [
            reader.string(v, f"{where}.params.{name}[]")
            for v in reader.sequence(value_node, f"{where}.params.{name}")
        ]
        params[name] = [v for v in values if v is not None]
    return params


def _bearer_token(reader: Reader, base: Path, keys: dict[str, Node], where: str) -> str:
    """`authorization: {type: Bearer, credentials | credentials_file}` or the legacy keys."""
    given = [k for k in ("authorization", "bearer_token", "bearer_token_file") if k in keys]
    if len(given) > 1:
        reader.error(keys[given[1]], f"{where}: use only one of {', '.join(given)}")
        return ""
    if "bearer_token" in keys:
        return reader.string(keys["bearer_token"], f"{where}.bearer_token", "") or ""
    if "bearer_token_file" in keys:
        return _read_secret(reader, base, keys["bearer_token_file"], f"{where}.bearer_token_file")
    if "authorization" not in keys:
        return ""
    auth = reader.mapping(
        keys["authorization"],
        f"{where}.authorization",
        allowed={"type", "credentials", "credentials_file"},
    )
    kind = reader.string(auth.get("type"), f"{where}.authorization.type", "Bearer")
    if kind != "Bearer":
        reader.error(auth["type"], f"{where}.authorization.type {kind!r} is not supported (Bearer)")
    if "credentials" in auth and "credentials_file" in auth:
        reader.error(
            auth["credentials_file"],
            f"{where}.authorization: credentials and credentials_file are exclusive",
        )
    if "credentials_file" in auth:
        return _read_secret(
            reader, base, auth["credentials_file"], f"{where}.authorization.credentials_file"
        )
    return reader.string(auth.get("credentials"), f"{where}.authorization.credentials", "") or ""


def _read_secret(reader: Reader, base: Path, node: Node, where: str) -> str:
    name = reader.string(node, where)
    if not name:
        return ""
    path = Path(name) if os.path.isabs(name) else base / name
    try:
        return path.read_text().strip()
    except OSError as exc:
        reader.error(node, f"{where}: cannot read {str(path)!r}: {exc.strerror or exc}")
        return ""


def _alerting(reader: Reader, node: Node | None) -> list[str]:
    alerting = reader.mapping(node, "alerting", allowed={"alertmanagers", "alert_relabel_configs"})
    addresses = []
    allowed = {"static_configs", "scheme", "path_prefix", "timeout", "api_version"}
    for am in reader.sequence(alerting.get("alertmanagers"), "alerting.alertmanagers"):
        keys = reader.mapping(am, "alerting.alertmanagers[]", allowed=allowed)
        targets = _static_configs(reader, keys.get("static_configs"), "alerting.alertmanagers[]")
        addresses.extend(t.address for t in targets)
    return addresses


class _AnyKey(frozenset):
    """`allowed=` for free-form mappings (query parameters)."""

    def __contains__(self, item: object) -> bool:
        return True
