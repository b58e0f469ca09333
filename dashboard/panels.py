"""What each dashboard page shows: panels with their PromQL, units and state thresholds.

Defined once here (not in the JavaScript) so a test can run every expression against a real
monitor and a renamed metric breaks a test, not a screen. Expressions use only series the app
exports (monitoring/metrics.py, monitoring/collectors/) and the recording rules of
deploy/prometheus/recording_rules.yml. Thresholds come from thresholds.yml (the alert rules'
numbers), so a tile turns red at the number that pages.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from monitoring.thresholds import threshold

__all__ = ["CATEGORIES", "Category", "Panel", "Query", "category", "overview", "page_config"]


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str = ""  # a label name whose value names each series, or a fixed name


@dataclass(frozen=True)
class Panel:
    id: str
    title: str
    kind: str  # "stat": one number (instant query); "chart": lines over the range; "health"
    queries: tuple[Query, ...]
    unit: str = ""  # "%", "ms", "req/s", "bytes", "count", "money", "s"
    warn: float | None = None  # state colour: at or above warn is warning, crit critical
    crit: float | None = None
    low_is_bad: bool = False  # the thresholds are lower bounds (workers, hit rate)
    note: str = ""
    stack: bool = False

    def to_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Category:
    slug: str
    title: str
    panels: tuple[Panel, ...] = field(default_factory=tuple)
    # Pages other parts of the project fill in (issue 14's security events, synthetic checks,
    # maintenance windows): listed in the navigation, served once they have panels.
    pending: str = ""


def _q(expr: str, legend: str = "") -> tuple[Query, ...]:
    return (Query(expr, legend),)


def _last(selector: str, how: str = "max") -> str:
    """A gauge's latest reading within a minute: one scrape that failed (all the target's
    series stale for a moment) or a collector over its time budget does not blank a number."""
    return f"{how}(last_over_time({selector}[1m]))"


def _t(section: str, key: str) -> float:
    return threshold(section, key)


# -- system -------------------------------------------------------------------------------
def _system() -> tuple[Panel, ...]:
    cpu, mem, disk = (
        _t("system", "cpu_percent"),
        _t("system", "memory_percent"),
        _t("system", "disk_percent"),
    )
    return (
        Panel("cpu", "CPU", "stat", _q(_last("cpu_usage_percent")), "%", 0.8 * cpu, cpu),
        Panel("memory", "Memory", "stat", _q(_last("memory_usage_percent")), "%", 0.8 * mem, mem),
        Panel("disk", "Disk", "stat", _q(_last("disk_usage_percent")), "%", 0.8 * disk, disk),
        Panel(
            "load",
            "Load per core",
            "stat",
            _q(f"{_last('system_load_average_1m')} / {_last('system_cpu_cores')}"),
            "",
            0.8 * _t("system", "load_average"),
            _t("system", "load_average"),
        ),
        Panel(
            "system_usage",
            "CPU, memory and disk",
            "chart",
            (
                Query("max(cpu_usage_percent)", "CPU"),
                Query("max(memory_usage_percent)", "memory"),
                Query("max(disk_usage_percent)", "disk"),
            ),
            "%",
            crit=cpu,
        ),
        Panel(
            "load_chart",
            "Load average",
            "chart",
            (
                Query("max(system_load_average_1m)", "1m"),
                Query("max(system_load_average_5m)", "5m"),
                Query("max(system_load_average_15m)", "15m"),
            ),
        ),
        Panel(
            "network",
            "Network",
            "chart",
            (
                Query("sum(rate(network_received_bytes_total[5m]))", "received"),
                Query("sum(rate(network_sent_bytes_total[5m]))", "sent"),
            ),
            "bytes/s",
        ),
        Panel(
            "disk_io",
            "Disk I/O",
            "chart",
            (
                Query("sum(rate(disk_read_bytes_total[5m]))", "read"),
                Query("sum(rate(disk_written_bytes_total[5m]))", "written"),
            ),
            "bytes/s",
        ),
        Panel(
            "app_memory",
            "App processes' memory",
            "chart",
            _q("sum by (role) (app_process_resident_memory_bytes)", "role"),
            "bytes",
        ),
    )


# -- database -----------------------------------------------------------------------------
def _database() -> tuple[Panel, ...]:
    conn = _t("database", "connection_utilization")
    return (
        Panel(
            "db_up",
            "Database",
            "stat",
            _q(_last("database_up", "min")),
            "up",
            None,
            1,
            low_is_bad=True,
        ),
        Panel(
            "db_connections",
            "DB connections",
            "stat",
            _q(_last("database_connections_active", "sum")),
            "count",
            note="of max_connections; SQLite has none",
        ),
        Panel(
            "db_connections_pct",
            "DB connections used",
            "stat",
            _q("max(database_connections_percent)"),
            "%",
            0.8 * conn,
            conn,
        ),
        Panel(
            "slow_queries",
            "Slow queries",
            "stat",
            _q("sum(slow_queries_per_minute)"),
            "/min",
            1,
            10,
        ),
        Panel(
            "db_connections_chart",
            "Connections",
            "chart",
            (
                Query("sum(database_connections_active)", "active"),
                Query("sum(database_connections_idle)", "idle"),
                Query("max(database_connections_max)", "max"),
            ),
            "count",
        ),
        Panel(
            "db_query_p95",
            "Query time p95",
            "chart",
            _q(
                "1000 * histogram_quantile(0.95, sum by (le) "
                "(rate(database_query_duration_seconds_bucket[5m])))",
                "p95",
            ),
            "ms",
            crit=_t("database", "slow_query_threshold"),
        ),
        Panel(
            "db_queries",
            "Queries and errors",
            "chart",
            (
                Query("sum(rate(database_query_duration_seconds_count[5m]))", "queries/s"),
                Query("sum(rate(database_errors_total[5m]))", "errors/s"),
            ),
            "/s",
        ),
        Panel("db_size", "Database size", "chart", _q("max(database_size_bytes)", "size"), "bytes"),
    )


# -- Redis and Celery ---------------------------------------------------------------------
def _redis() -> tuple[Panel, ...]:
    hit = _t("redis", "hit_rate_threshold")
    queue = _t("application", "queue_length")
    return (
        Panel(
            "redis_up",
            "Redis",
            "stat",
            _q(_last("redis_up", "min")),
            "up",
            None,
            1,
            low_is_bad=True,
        ),
        Panel(
            "redis_memory", "Redis memory", "stat", _q(_last("redis_memory_used_bytes")), "bytes"
        ),
        Panel(
            "redis_hit_rate",
            "Redis hit rate",
            "stat",
            _q("max(redis_hit_rate)"),
            "%",
            hit + (100 - hit) / 2,
            hit,
            low_is_bad=True,
            note="absent while Redis is idle",
        ),
        Panel(
            "celery_queue",
            "Celery queue",
            "stat",
            _q(_last("celery_queue_length", "sum")),
            "count",
            queue / 2,
            queue,
        ),
        Panel(
            "celery_workers",
            "Celery workers",
            "stat",
            _q(_last("celery_workers_online")),
            "count",
            None,
            1,
            low_is_bad=True,
        ),
        Panel(
            "redis_memory_chart",
            "Redis memory",
            "chart",
            (
                Query("max(redis_memory_used_bytes)", "used"),
                Query("max(redis_memory_rss_bytes)", "rss"),
            ),
            "bytes",
        ),
        Panel(
            "redis_ops",
            "Redis commands",
            "chart",
            _q("sum(rate(redis_commands_processed_total[5m]))", "commands/s"),
            "/s",
        ),
        Panel(
            "redis_clients",
            "Redis clients",
            "chart",
            (
                Query("max(redis_connected_clients)", "connected"),
                Query("max(redis_blocked_clients)", "blocked"),
            ),
            "count",
        ),
        Panel(
            "celery_queue_chart",
            "Celery queues",
            "chart",
            _q("sum by (queue) (celery_queue_length)", "queue"),
            "count",
            crit=queue,
        ),
        Panel(
            "celery_tasks",
            "Celery tasks",
            "chart",
            _q("sum by (state) (rate(celery_tasks_total[5m]))", "state"),
            "/s",
        ),
    )


# -- application --------------------------------------------------------------------------
def _application() -> tuple[Panel, ...]:
    err, slow = _t("application", "error_rate"), _t("application", "response_time")
    return (
        Panel(
            "request_rate",
            "Request rate",
            "stat",
            _q("sum(rate(http_requests_total[5m]))"),
            "req/s",
        ),
        Panel("error_rate", "Error rate (5xx)", "stat", _q("max(error_rate)"), "%", err / 2, err),
        Panel(
            "latency_p95",
            "p95 latency",
            "stat",
            _q("max(response_time_p95)"),
            "ms",
            slow / 2,
            slow,
            note="absent while there is no traffic",
        ),
        Panel(
            "active_users",
            "Active users (5 m)",
            "stat",
            _q(_last('active_users{window="5m"}')),
            "count",
        ),
        Panel(
            "requests_chart",
            "Requests by status class",
            "chart",
            (
                Query("sum(rate(http_requests_total[5m]))", "all"),
                # No 5xx yet is 0, not a missing line (error_rate's `or vector(0)`).
                Query('sum(rate(http_errors_total{class="4xx"}[5m])) or vector(0)', "4xx"),
                Query('sum(rate(http_errors_total{class="5xx"}[5m])) or vector(0)', "5xx"),
            ),
            "req/s",
        ),
        Panel(
            "error_rate_chart",
            "Error rate",
            "chart",
            (Query("max(error_rate)", "5xx"), Query("max(client_error_rate)", "4xx")),
            "%",
            crit=err,
        ),
        Panel(
            "latency_chart",
            "p95 latency",
            "chart",
            _q("max(response_time_p95)", "p95"),
            "ms",
            crit=slow,
        ),
        Panel(
            "top_routes",
            "Busiest routes",
            "chart",
            _q("topk(5, sum by (route) (rate(http_requests_total[5m])))", "route"),
            "req/s",
        ),
        Panel(
            "log_errors",
            "Log errors",
            "chart",
            _q('sum(rate(log_records_total{level=~"ERROR|CRITICAL"}[5m]))', "errors/s"),
            "/s",
        ),
    )


# -- business -----------------------------------------------------------------------------
def _business() -> tuple[Panel, ...]:
    return (
        Panel(
            "orders_today", "Orders today", "stat", _q(_last("business_paid_orders_today")), "count"
        ),
        Panel(
            "revenue_today",
            "Revenue today",
            "stat",
            _q(_last('business_revenue{period="today"}', "sum")),
            "money",
        ),
        Panel(
            "conversion",
            "Conversion",
            "stat",
            _q(_last("business_conversion_rate_percent")),
            "%",
            note="paid orders today per visitor today",
        ),
        Panel(
            "low_stock",
            "Low stock",
            "stat",
            _q(
                f"{_last('business_low_stock_products')} + {_last('business_out_of_stock_products')}"
            ),
            "count",
            1,
            None,
            note="products at or below their low-stock level, or out",
        ),
        Panel(
            "orders_chart",
            "Orders",
            "chart",
            (
                Query("sum(rate(orders_placed_total[5m])) * 60", "placed/min"),
                Query("sum(rate(orders_completed_total[5m])) * 60", "completed/min"),
                Query("sum(rate(orders_failed_total[5m])) * 60", "failed/min"),
            ),
            "/min",
        ),
        Panel(
            "payments_chart",
            "Payments",
            "chart",
            (
                Query("sum(rate(payments_succeeded_total[5m])) * 60", "succeeded/min"),
                Query("sum(rate(payments_failed_total[5m])) * 60", "failed/min"),
            ),
            "/min",
        ),
        Panel(
            "revenue_chart",
            "Revenue today",
            "chart",
            _q('sum by (currency) (business_revenue{period="today"})', "currency"),
            "money",
        ),
        Panel(
            "stock_chart",
            "Stock alerts",
            "chart",
            (
                Query("max(business_low_stock_products)", "low"),
                Query("max(business_out_of_stock_products)", "out"),
            ),
            "count",
        ),
    )


# -- security and maintenance: what the app already exports ---------------------------------
def _security() -> tuple[Panel, ...]:
    return (
        Panel(
            "failed_logins",
            "Failed logins (5 m)",
            "stat",
            _q('sum(increase(user_logins_total{result="failure"}[5m]))'),
            "count",
            3,
            5,
        ),
        Panel(
            "logins_chart",
            "Logins",
            "chart",
            _q("sum by (result) (rate(user_logins_total[5m])) * 60", "result"),
            "/min",
        ),
    )


def _maintenance() -> tuple[Panel, ...]:
    return (
        Panel(
            "maintenance_mode",
            "Maintenance mode",
            "stat",
            _q(_last("maintenance_mode")),
            "onoff",
            None,
            1,
        ),
        Panel(
            "backup_age",
            "Last backup",
            "stat",
            _q("time() - max(backup_last_success_timestamp_seconds)"),
            "age",
            26 * 3600,
            50 * 3600,
        ),
        Panel("maintenance_chart", "Maintenance mode", "chart", _q("max(maintenance_mode)", "on")),
    )


def _health() -> Panel:
    # Every component with its state: 1 up, 0 down; absent means not exported (disabled).
    return Panel(
        "health",
        "Components",
        "health",
        (
            Query("up", "{{job}} target"),  # the last scrape: a failed one is down
            Query(_last("database_up", "min"), "database"),
            Query(_last("redis_up", "min"), "redis"),
            Query(_last("celery_broker_up", "min"), "celery broker"),
            Query(f"clamp_max({_last('celery_workers_online')}, 1)", "celery workers"),
            Query("last_over_time(monitoring_collector_up[1m])", "{{collector}} collector"),
        ),
    )


def overview() -> tuple[Panel, ...]:
    """The overview: the headline number of every category, the main charts, the components."""
    pick = {p.id: p for p in (*_system(), *_database(), *_redis(), *_application(), *_business())}
    return (
        *(
            pick[i]
            for i in (
                "cpu",
                "memory",
                "disk",
                "request_rate",
                "error_rate",
                "latency_p95",
                "db_connections",
                "redis_memory",
                "celery_queue",
                "celery_workers",
                "orders_today",
                "revenue_today",
                "conversion",
                "low_stock",
            )
        ),  # fmt: skip
        _health(),
        pick["requests_chart"],
        pick["error_rate_chart"],
        pick["latency_chart"],
        pick["system_usage"],
    )


CATEGORIES: tuple[Category, ...] = (
    Category("system", "System"),
    Category("database", "Database"),
    Category("redis", "Redis & Celery"),
    Category("application", "Application"),
    Category("business", "Business"),
    Category("alerts", "Alerts"),
    Category("security", "Security"),
    Category("maintenance", "Maintenance"),
    Category("synthetic", "Synthetic checks", pending="synthetic checks (being built)"),
)

_PANELS = {
    "system": _system,
    "database": _database,
    "redis": _redis,
    "application": _application,
    "business": _business,
    "security": _security,
    "maintenance": _maintenance,
}


def category(slug: str) -> tuple[Panel, ...]:
    """The panels of a category page (KeyError for one without panels)."""
    return _PANELS[slug]()


def page_config(panels: tuple[Panel, ...]) -> list[dict]:
    return [panel.to_json() for panel in panels]
