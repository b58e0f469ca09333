"""Hot-path metrics the collectors feed: every database query and every Celery task.

These are counters and histograms updated in many processes (gunicorn workers, Celery pool
processes), so they are `monitoring.metrics` primitives: aggregated across processes when
PROMETHEUS_MULTIPROC_DIR is set, and rendered by the Prometheus endpoint.
"""

from monitoring.metrics import Counter, Histogram

QUERY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
TASK_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0)

database_query_duration_seconds = Histogram(
    "database_query_duration_seconds",
    "Duration of every SQL statement the application runs.",
    buckets=QUERY_BUCKETS,
)
database_slow_queries_total = Counter(
    "database_slow_queries_total",
    "SQL statements slower than database.slow_query_threshold (thresholds.yml).",
)
celery_tasks_total = Counter(
    "celery_tasks_total",
    "Celery tasks finished, by task name and outcome (succeeded, failed, retried).",
    ["task", "state"],
)
celery_task_runtime_seconds = Histogram(
    "celery_task_runtime_seconds",
    "Time a Celery task ran in the worker, by task name.",
    ["task"],
    buckets=TASK_BUCKETS,
)
celery_task_queue_wait_seconds = Histogram(
    "celery_task_queue_wait_seconds",
    "Time from publishing a Celery task to a worker starting it, by task name.",
    ["task"],
    buckets=TASK_BUCKETS,
)
