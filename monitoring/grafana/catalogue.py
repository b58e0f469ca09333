"""What the Grafana dashboards show, as plain data: dashboards, their panels, each panel's
PromQL. `build.py` turns this into Grafana JSON with grafana-foundation-sdk.

Every expression names series the app, the collectors, the recording rules or the monitor
really export (tests/monitoring/grafana/ evaluate each one on real Prometheus and on the
embedded monitor, and check every name against the sources), so renaming a metric fails a
test instead of blanking a panel.

Selectors carry `job=~"$job", instance=~"$instance"` (the dashboards' template variables; their
"All" value is `.*`). Recorded aggregates (`error_rate`, `response_time_p95`,
`slow_queries_per_minute`, `redis_hit_rate`) are sums over every target and carry neither label,
so they are left unfiltered.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from monitoring.thresholds import Thresholds

# The provisioned data sources (deploy/grafana/provisioning/datasources/pasargad.yml).
PROMETHEUS_UID = "pasargad-prometheus"
ALERTMANAGER_UID = "pasargad-alertmanager"

SEL = 'job=~"$job", instance=~"$instance"'


def m(name: str, extra: str = "") -> str:
    """`name{job=~"$job", instance=~"$instance"[, extra]}`."""
    return f"{name}{{{SEL}{', ' + extra if extra else ''}}}"


def rate(name: str, extra: str = "", window: str = "5m") -> str:
    return f"rate({m(name, extra)}[{window}])"


def p95(histogram: str, by: str = "") -> str:
    """The 95th percentile of a histogram (seconds) over 5 minutes, over all series or `by`."""
    labels = f"le, {by}" if by else "le"
    return f"histogram_quantile(0.95, sum by ({labels}) ({rate(histogram + '_bucket')}))"


@dataclass(frozen=True)
class Target:
    expr: str
    legend: str


@dataclass(frozen=True)
class Panel:
    title: str
    targets: tuple[Target, ...]
    kind: str = "timeseries"  # or "stat"
    unit: str = "short"
    description: str = ""
    width: int = 12
    # (value, colour) steps above the base colour; the alert thresholds of thresholds.yml.
    steps: tuple[tuple[float, str], ...] = ()
    max: float | None = None


@dataclass(frozen=True)
class Dashboard:
    uid: str
    title: str
    description: str
    panels: tuple[Panel, ...]
    tags: tuple[str, ...] = field(default=("pasargad",))

    @property
    def filename(self) -> str:
        return f"{self.uid}.json"


def t(expr: str, legend: str) -> Target:
    return Target(expr, legend)


def stat(title: str, *targets: Target, **kwargs) -> Panel:
    return Panel(title, targets, kind="stat", width=kwargs.pop("width", 6), **kwargs)


def graph(title: str, *targets: Target, **kwargs) -> Panel:
    return Panel(title, targets, **kwargs)


WARNING, CRITICAL = "orange", "red"  # severities' colours, the same on every dashboard


def above(warning: float, critical: float | None = None) -> tuple[tuple[float, str], ...]:
    return ((warning, WARNING),) + (((critical, CRITICAL),) if critical is not None else ())


def production(th: Thresholds) -> Dashboard:
    """The specification's "Production Monitoring" dashboard, its four panels and expressions
    (the spec's "graph" is Grafana's "timeseries" since Grafana 8)."""
    sys_ = th["system"]
    return Dashboard(
        uid="pasargad-production",
        title="Pasargad Prints - Production Monitoring",
        description="The specification's overview: system, requests, errors, database.",
        panels=(
            stat(
                "System Overview",
                t(m("cpu_usage_percent"), "CPU Usage"),
                t(m("memory_usage_percent"), "Memory Usage"),
                t(m("disk_usage_percent"), "Disk Usage {{mountpoint}}"),
                unit="percent",
                max=100,
                steps=above(sys_["cpu_percent"]),
                width=24,
            ),
            graph(
                "Request Rate",
                t(rate("http_requests_total"), "Requests/sec {{method}} {{route}} {{status}}"),
                unit="reqps",
            ),
            graph(
                "Error Rate",
                t(rate("http_errors_total"), "Errors/sec {{class}} {{route}} {{status}}"),
                unit="reqps",
            ),
            graph(
                "Database Connections",
                t(m("database_connections_active"), "Active Connections"),
                width=24,
            ),
        ),
    )


def system(th: Thresholds) -> Dashboard:
    s = th["system"]
    return Dashboard(
        uid="pasargad-system",
        title="Pasargad Prints - System",
        description="CPU, memory, disk, network and the app's processes (system collector).",
        panels=(
            stat(
                "CPU",
                t(m("cpu_usage_percent"), "CPU"),
                unit="percent",
                max=100,
                steps=above(s["cpu_percent"]),
            ),
            stat(
                "Memory",
                t(m("memory_usage_percent"), "Memory"),
                unit="percent",
                max=100,
                steps=above(s["memory_percent"]),
            ),
            stat(
                "Disk",
                t(m("disk_usage_percent"), "{{mountpoint}}"),
                unit="percent",
                max=100,
                steps=((s["disk_percent"], CRITICAL),),
            ),
            stat(
                "Load (1m)",
                t(m("system_load_average_1m"), "load 1m"),
                steps=above(s["load_average"]),
            ),
            graph(
                "CPU per core",
                t(m("cpu_usage_percent"), "all"),
                t(m("cpu_core_usage_percent"), "core {{core}}"),
                unit="percent",
                max=100,
            ),
            graph(
                "Load average",
                t(m("system_load_average_1m"), "1m"),
                t(m("system_load_average_5m"), "5m"),
                t(m("system_load_average_15m"), "15m"),
                steps=above(s["load_average"]),
            ),
            graph(
                "Memory",
                t(m("memory_used_bytes"), "used"),
                t(m("memory_available_bytes"), "available"),
                t(m("memory_cached_bytes"), "cache"),
                t(m("memory_buffers_bytes"), "buffers"),
                t(m("swap_used_bytes"), "swap used"),
                unit="bytes",
            ),
            graph(
                "Disk space",
                t(m("disk_used_bytes"), "used {{mountpoint}}"),
                t(m("disk_free_bytes"), "free {{mountpoint}}"),
                unit="bytes",
            ),
            graph(
                "Disk I/O",
                t(rate("disk_read_bytes_total"), "read {{device}}"),
                t(rate("disk_written_bytes_total"), "written {{device}}"),
                unit="Bps",
            ),
            graph(
                "Disk busy", t(rate("disk_busy_seconds_total"), "{{device}}"), unit="percentunit"
            ),
            graph(
                "Network traffic",
                t(rate("network_received_bytes_total"), "in {{interface}}"),
                t(rate("network_sent_bytes_total"), "out {{interface}}"),
                unit="Bps",
            ),
            graph(
                "Network errors and drops",
                t(rate("network_receive_errors_total"), "rx errors {{interface}}"),
                t(rate("network_transmit_errors_total"), "tx errors {{interface}}"),
                t(rate("network_receive_drops_total"), "rx drops {{interface}}"),
                t(rate("network_transmit_drops_total"), "tx drops {{interface}}"),
                unit="pps",
            ),
            graph("Network connections", t(m("network_connections"), "{{state}}")),
            graph(
                "App processes: CPU", t(m("app_process_cpu_percent"), "{{role}}"), unit="percent"
            ),
            graph(
                "App processes: memory",
                t(m("app_process_resident_memory_bytes"), "{{role}}"),
                unit="bytes",
            ),
            graph(
                "App processes: count, threads, open files",
                t(m("app_processes"), "processes {{role}}"),
                t(m("app_process_threads"), "threads {{role}}"),
                t(m("app_process_open_fds"), "open fds {{role}}"),
            ),
        ),
    )


def database(th: Thresholds) -> Dashboard:
    d = th["database"]
    return Dashboard(
        uid="pasargad-database",
        title="Pasargad Prints - Database",
        description="Connections, queries, size, transactions and index use (database collector).",
        panels=(
            stat(
                "Database up",
                t(m("database_up"), "{{database}}"),
                steps=((1, "green"),),
                description="1: the app reaches its database.",
            ),
            stat(
                "Connections used",
                t(m("database_connections_percent"), "used"),
                unit="percent",
                max=100,
                steps=above(d["connection_utilization"]),
            ),
            stat(
                "Slow queries / min",
                t("slow_queries_per_minute", "slow"),
                description="Statements over database.slow_query_threshold (all targets).",
            ),
            stat("Size", t(m("database_size_bytes"), "size"), unit="bytes"),
            graph(
                "Connections",
                t(m("database_connections_active"), "active"),
                t(m("database_connections_idle"), "idle"),
                t(m("database_connections_max"), "max"),
                t(m("database_connections_by_state"), "{{state}}"),
            ),
            graph(
                "Query time p95",
                t(p95("database_query_duration_seconds"), "p95"),
                unit="s",
                steps=above(d["slow_query_threshold"] / 1000),
            ),
            graph(
                "Queries / s",
                t(rate("database_query_duration_seconds_count"), "queries"),
                unit="ops",
            ),
            graph(
                "Transactions",
                t(rate("database_transactions_committed_total"), "commits"),
                t(rate("database_transactions_rolled_back_total"), "rollbacks"),
                unit="ops",
            ),
            graph(
                "Deadlocks per hour",
                t(f"increase({m('database_deadlocks_total')}[1h])", "deadlocks"),
                steps=above(d["deadlock_threshold"]),
            ),
            graph(
                "Cache hit ratio",
                t(
                    f"100 * {rate('database_blocks_hit_total')} / clamp_min("
                    f"{rate('database_blocks_hit_total')} + {rate('database_blocks_read_total')}"
                    ", 1e-9)",
                    "buffer hits",
                ),
                unit="percent",
                max=100,
            ),
            graph(
                "Index scans vs sequential scans (top 10 tables)",
                t(f"topk(10, {rate('database_table_index_scans_total')})", "idx {{table}}"),
                t(f"topk(10, {rate('database_table_seq_scans_total')})", "seq {{table}}"),
                unit="ops",
            ),
            graph(
                "Rows (top 10 tables)", t(f"topk(10, {m('database_table_live_rows')})", "{{table}}")
            ),
            graph(
                "Database errors",
                t(f"increase({m('database_errors_total')}[5m])", "{{kind}}"),
                width=24,
            ),
        ),
    )


def redis(th: Thresholds) -> Dashboard:
    r = th["redis"]
    return Dashboard(
        uid="pasargad-redis",
        title="Pasargad Prints - Redis",
        description="Memory, operations, hit rate, clients, persistence, keys (redis collector).",
        panels=(
            stat("Redis up", t(m("redis_up"), "up"), steps=((1, "green"),)),
            stat(
                "Fragmentation",
                t(m("redis_memory_fragmentation_ratio"), "ratio"),
                steps=above(r["memory_fragmentation"]),
            ),
            stat(
                "Hit rate",
                t(m("redis_keyspace_hit_rate_percent"), "since start"),
                unit="percent",
                max=100,
            ),
            stat(
                "Blocked clients",
                t(m("redis_blocked_clients"), "blocked"),
                steps=above(r["blocked_clients"]),
            ),
            graph(
                "Memory",
                t(m("redis_memory_used_bytes"), "used"),
                t(m("redis_memory_rss_bytes"), "rss"),
                t(m("redis_memory_max_bytes"), "max"),
                unit="bytes",
            ),
            graph(
                "Operations / s",
                t(m("redis_ops_per_second"), "instantaneous"),
                t(rate("redis_commands_processed_total"), "commands"),
                unit="ops",
            ),
            graph(
                "Hit rate (5m)",
                t("redis_hit_rate", "hits %"),
                unit="percent",
                max=100,
                description="Recorded over all targets; absent while nothing is looked up.",
            ),
            graph(
                "Clients",
                t(m("redis_connected_clients"), "connected"),
                t(m("redis_blocked_clients"), "blocked"),
            ),
            graph(
                "Persistence",
                t(
                    f"time() - {m('redis_rdb_last_save_timestamp_seconds')}",
                    "seconds since last RDB save",
                ),
                t(m("redis_rdb_changes_since_last_save"), "changes since save"),
                t(m("redis_rdb_last_bgsave_ok"), "last bgsave ok"),
                t(m("redis_aof_enabled"), "AOF enabled"),
                t(m("redis_aof_last_write_ok"), "AOF last write ok"),
            ),
            graph(
                "Keys",
                t(m("redis_db_keys"), "keys {{db}}"),
                t(m("redis_db_expiring_keys"), "expiring {{db}}"),
            ),
            graph(
                "Expirations and evictions",
                t(rate("redis_expired_keys_total"), "expired"),
                t(rate("redis_evicted_keys_total"), "evicted"),
                unit="ops",
                width=24,
            ),
        ),
    )


def application(th: Thresholds) -> Dashboard:
    a = th["application"]
    return Dashboard(
        uid="pasargad-application",
        title="Pasargad Prints - Application",
        description="API performance, users, orders, payments, logs and the outbox.",
        panels=(
            stat(
                "Error rate (5xx)",
                t("error_rate", "5xx %"),
                unit="percent",
                steps=((a["error_rate"], CRITICAL),),
            ),
            stat(
                "p95 response time",
                t("response_time_p95", "p95"),
                unit="ms",
                steps=above(a["response_time"]),
            ),
            stat("Active users", t(m("active_users", 'window="5m"'), "5m")),
            stat(
                "Requests / s", t(f"sum({rate('http_requests_total')})", "requests"), unit="reqps"
            ),
            graph(
                "Requests by route",
                t(f"sum by (route) ({rate('http_requests_total')})", "{{route}}"),
                unit="reqps",
            ),
            graph(
                "Answers by status",
                t(f"sum by (status) ({rate('http_requests_total')})", "{{status}}"),
                unit="reqps",
            ),
            graph(
                "Error rate",
                t("error_rate", "5xx %"),
                t("client_error_rate", "4xx %"),
                unit="percent",
                steps=above(a["error_rate"]),
            ),
            graph(
                "Latency p95 by route",
                t(p95("http_request_duration_seconds", "route"), "{{route}}"),
                unit="s",
            ),
            graph("Active users", t(m("active_users"), "{{window}}")),
            graph(
                "Registrations and logins",
                t(f"increase({m('user_registrations_total')}[1h])", "registrations / h"),
                t(
                    f"sum by (result) (increase({m('user_logins_total')}[1h]))",
                    "logins {{result}} / h",
                ),
            ),
            graph(
                "Orders",
                t(rate("orders_placed_total"), "placed"),
                t(rate("orders_completed_total"), "completed"),
                t(rate("orders_failed_total"), "failed"),
                unit="ops",
            ),
            graph(
                "Payments",
                t(
                    f"sum by (provider) ({rate('payments_succeeded_total')})",
                    "succeeded {{provider}}",
                ),
                t(
                    f"sum by (error_code) ({rate('payments_failed_total')})",
                    "failed {{error_code}}",
                ),
                unit="ops",
            ),
            graph(
                "Log errors",
                t(f"sum by (logger) (increase({m('log_errors_total')}[5m]))", "{{logger}}"),
                t(
                    f"sum by (error_code) (increase({m('payment_errors_total')}[5m]))",
                    "payment {{error_code}}",
                ),
            ),
            graph(
                "Log records",
                t(f"sum by (level) ({rate('log_records_total')})", "{{level}}"),
                t(rate("log_write_errors_total"), "write errors"),
                unit="ops",
            ),
            graph(
                "Outbox",
                t(m("outbox_jobs"), "{{state}}"),
                t(m("outbox_oldest_job_age_seconds"), "oldest pending (s)"),
            ),
            graph(
                "Collectors",
                t(m("monitoring_collector_up"), "up {{collector}}"),
                t(m("monitoring_collector_reading_age_seconds"), "age {{collector}}"),
                t(
                    f"increase({m('monitoring_collector_errors_total')}[5m])",
                    "errors {{collector}}",
                ),
            ),
        ),
    )


def celery(th: Thresholds) -> Dashboard:
    a = th["application"]
    return Dashboard(
        uid="pasargad-celery",
        title="Pasargad Prints - Celery and queues",
        description="Broker, workers, queue lengths and task outcomes (celery collector).",
        panels=(
            stat("Broker up", t(m("celery_broker_up"), "broker"), steps=((1, "green"),)),
            stat("Workers online", t(m("celery_workers_online"), "workers"), steps=((1, "green"),)),
            stat(
                "Queued",
                t(f"sum({m('celery_queue_length')})", "queued"),
                steps=above(a["queue_length"]),
            ),
            stat("Tasks / s", t(f"sum({rate('celery_tasks_total')})", "tasks"), unit="ops"),
            graph(
                "Queue length",
                t(m("celery_queue_length"), "{{queue}}"),
                steps=above(a["queue_length"]),
            ),
            graph(
                "Task outcomes",
                t(f"sum by (task, state) ({rate('celery_tasks_total')})", "{{task}} {{state}}"),
                unit="ops",
            ),
            graph(
                "Task runtime p95",
                t(p95("celery_task_runtime_seconds", "task"), "{{task}}"),
                unit="s",
            ),
            graph(
                "Queue wait p95",
                t(p95("celery_task_queue_wait_seconds", "task"), "{{task}}"),
                unit="s",
            ),
        ),
    )


def business(th: Thresholds) -> Dashboard:
    b = th["business"]
    failure = "100 * {fail} / clamp_min({fail} + {ok}, 1e-9)"
    return Dashboard(
        uid="pasargad-business",
        title="Pasargad Prints - Business",
        description="Revenue, conversion, orders, products and stock (business collector).",
        panels=(
            stat(
                "Revenue today",
                t(m("business_revenue", 'period="today"'), "{{currency}}"),
                unit="currencyUSD",
            ),
            stat("Paid orders today", t(m("business_paid_orders_today"), "orders")),
            stat(
                "Conversion",
                t(m("business_conversion_rate_percent"), "visitors → buyers"),
                unit="percent",
            ),
            stat("Low stock products", t(m("business_low_stock_products"), "low"), steps=above(1)),
            graph(
                "Revenue", t(m("business_revenue"), "{{period}} {{currency}}"), unit="currencyUSD"
            ),
            graph(
                "Order completion and conversion",
                t(m("business_order_completion_rate_percent"), "completion"),
                t(m("business_conversion_rate_percent"), "conversion"),
                unit="percent",
            ),
            graph(
                "Order failure rate",
                t(
                    failure.format(
                        fail=rate("orders_failed_total", window="1h"),
                        ok=rate("orders_completed_total", window="1h"),
                    ),
                    "failed %",
                ),
                unit="percent",
                steps=above(b["order_failure_rate"]),
            ),
            graph(
                "Payment failure rate",
                t(
                    failure.format(
                        fail=f"sum({rate('payments_failed_total', window='1h')})",
                        ok=f"sum({rate('payments_succeeded_total', window='1h')})",
                    ),
                    "failed %",
                ),
                unit="percent",
                steps=above(b["payment_failure_rate"]),
            ),
            graph(
                "Best sellers (units sold)",
                t(m("business_top_product_units_sold"), "#{{rank}} {{sku}}"),
            ),
            graph(
                "Lowest stock (10 products)",
                t(f"bottomk(10, {m('product_stock_quantity')})", "{{sku}}"),
                steps=above(b["low_stock_threshold"]),
            ),
            graph(
                "Stock alerts",
                t(m("business_low_stock_products"), "low stock"),
                t(m("business_out_of_stock_products"), "out of stock"),
                t(m("business_reorder_alerts_today"), "reorder alerts today"),
                t(m("business_reorder_alerts_unnotified"), "reorder alerts not yet sent"),
            ),
            graph("Visitors", t(m("business_unique_visitors_today"), "unique today")),
        ),
    )


def alerts(th: Thresholds) -> Dashboard:
    return Dashboard(
        uid="pasargad-alerts",
        title="Pasargad Prints - Alerts and notifier",
        description=(
            "Alerts by state (ALERTS, written by Prometheus or the embedded monitor; Watchdog "
            "always fires) and the notifier (Alertmanager, or the monitor's own notifier, under "
            "Alertmanager's metric names). Not filtered by $job: alerts carry their rule's "
            "labels and the notifier is its own target."
        ),
        panels=(
            stat("Firing", t('count(ALERTS{alertstate="firing"})', "firing"), steps=above(2, 3)),
            stat(
                "Firing critical",
                t(
                    'count(ALERTS{alertstate="firing", severity="critical"}) or vector(0)',
                    "critical",
                ),
                steps=((1, CRITICAL),),
            ),
            stat("Silences active", t('sum(alertmanager_silences{state="active"})', "active")),
            stat(
                "Notifications failed (1h)",
                t("sum(increase(alertmanager_notifications_failed_total[1h]))", "failed"),
                steps=((1, CRITICAL),),
            ),
            graph(
                "Alerts by state and severity",
                t("count by (alertstate, severity) (ALERTS)", "{{alertstate}} {{severity}}"),
            ),
            graph("Firing alerts", t('ALERTS{alertstate="firing"}', "{{alertname}} {{instance}}")),
            graph("Notifier: alerts", t("alertmanager_alerts", "{{state}}")),
            graph(
                "Notifications by integration",
                t(
                    "sum by (integration) (rate(alertmanager_notifications_total[5m]))",
                    "sent {{integration}}",
                ),
                t(
                    "sum by (integration) (rate(alertmanager_notifications_failed_total[5m]))",
                    "failed {{integration}}",
                ),
                unit="ops",
            ),
            graph("Silences", t("alertmanager_silences", "{{state}}"), width=24),
        ),
    )


def monitor(th: Thresholds) -> Dashboard:
    return Dashboard(
        uid="pasargad-monitor",
        title="Pasargad Prints - Monitor self",
        description=(
            "The monitoring itself: targets, rule evaluation, configuration reloads, the store. "
            "Real Prometheus and the embedded monitor export these under the same names."
        ),
        panels=(
            stat("Targets up", t("sum(up)", "up"), t("count(up)", "targets")),
            stat(
                "Config reload ok",
                t(m("prometheus_config_last_reload_successful"), "ok"),
                steps=((1, "green"),),
            ),
            stat(
                "Rule evaluation failures (5m)",
                t(
                    f"sum(increase({m('prometheus_rule_evaluation_failures_total')}[5m]))",
                    "failures",
                ),
                steps=((1, CRITICAL),),
            ),
            stat("Series in store", t(m("prometheus_tsdb_head_series"), "series")),
            graph("Targets", t("up", "{{job}} {{instance}}")),
            graph(
                "Scrape duration", t("scrape_duration_seconds", "{{job}} {{instance}}"), unit="s"
            ),
            graph("Samples scraped", t("scrape_samples_scraped", "{{job}} {{instance}}")),
            graph(
                "Rule evaluations / s",
                t(
                    f"sum by (rule_group) ({rate('prometheus_rule_evaluations_total')})",
                    "{{rule_group}}",
                ),
                unit="ops",
            ),
            graph(
                "Rule group duration",
                t(m("prometheus_rule_group_last_duration_seconds"), "{{rule_group}}"),
                unit="s",
            ),
            graph(
                "Missed rule group iterations",
                t(
                    f"increase({m('prometheus_rule_group_iterations_missed_total')}[5m])",
                    "{{rule_group}}",
                ),
            ),
            graph(
                "Samples appended / s",
                t(rate("prometheus_tsdb_head_samples_appended_total"), "{{type}}"),
                unit="ops",
            ),
            graph(
                "Last config reload",
                t(
                    f"time() - {m('prometheus_config_last_reload_success_timestamp_seconds')}",
                    "seconds since",
                ),
                unit="s",
            ),
        ),
    )


CATEGORIES = (system, database, redis, application, celery, business, alerts, monitor)


def dashboards(th: Thresholds) -> list[Dashboard]:
    """Every dashboard, the spec's first; `th` is thresholds.yml (alert lines on the panels)."""
    return [production(th), *(category(th) for category in CATEGORIES)]
