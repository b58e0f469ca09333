"""Settings shared by every environment. Environment-specific modules import this."""

import socket

import dj_database_url

from config.settings.env import (
    BASE_DIR,
    env_bool,
    env_float,
    env_list,
    env_str,
    var_dir,
)

ENVIRONMENT = env_str("ENVIRONMENT", "development")
VAR_DIR = var_dir()

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]", "testserver"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "shop.accounts",
    "shop.catalog",
    "shop.orders",
    "shop.payments",
    "shop.visits",
    "shop.outbox",
    "shop.traffic",
    "shop.storefront",
    "monitoring",
    "monitoring.monitor",
    "maintenance",
    "security",
    "dashboard",
]

MIDDLEWARE = [
    "monitoring.http.middleware.RequestMonitoringMiddleware",
    # Client address, blocked addresses, rate limit (security/): before anything that costs,
    # inside the monitoring middleware so its 403s and 429s are counted and logged.
    "security.middleware.SecurityMiddleware",
    # Inside the monitoring middleware, so metrics and access log see the status it answers.
    "shop.middleware.ApiJsonErrorsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # After the session's user is known; before anything that writes (visits).
    "maintenance.middleware.MaintenanceModeMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "shop.visits.middleware.VisitMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                # The level-4 customer notice, for the shop's banner (docs/escalation.md).
                "monitoring.escalation.views.status_notice_context",
            ],
        },
    },
]

# SQLite under var/ is the embedded default; DATABASE_URL switches to PostgreSQL.
DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}")
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several gunicorn workers share the file: wait for the write lock instead of failing.
    DATABASES["default"]["OPTIONS"] = {"timeout": 20, "transaction_mode": "IMMEDIATE"}
    DATABASES["default"]["CONN_MAX_AGE"] = 0
else:
    # A kept connection is checked before a request reuses it: after a database restart the
    # first request reconnects instead of failing on the dead connection (shop.outage).
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    # A server that accepts and never answers (hung, or a dead host's address) is unreachable
    # after this many seconds, a 503, instead of holding the request until gunicorn kills it.
    DATABASES["default"].setdefault("OPTIONS", {})["connect_timeout"] = max(
        2, round(env_float("DATABASE_CONNECT_TIMEOUT", 5.0))
    )  # libpq counts whole seconds, at least 2
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Redis is optional: without it tasks run in-process and Redis/Celery report "disabled".
REDIS_URL = env_str("REDIS_URL", "")
# Bounded waits on Redis (issue 11). A request touches Redis only through the cache: it waits at
# most REDIS_REQUEST_TIMEOUT, once, before the breaker opens and makes the next ones fail fast.
# The broker and result backend are used by the relay thread and workers, never by a request.
REDIS_REQUEST_TIMEOUT = env_float("REDIS_REQUEST_TIMEOUT", 0.25)
REDIS_TIMEOUT = env_float("REDIS_TIMEOUT", 2.0)
# The breaker stays open this long after a failure, doubling per failed probe up to the max.
REDIS_BREAKER_RESET = env_float("REDIS_BREAKER_RESET", 1.0)
REDIS_BREAKER_MAX_RESET = env_float("REDIS_BREAKER_MAX_RESET", 30.0)
if REDIS_URL:
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    CACHES = {
        "default": {
            "BACKEND": "shop.cache.ResilientRedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": {
                "socket_connect_timeout": REDIS_REQUEST_TIMEOUT,
                "socket_timeout": REDIS_REQUEST_TIMEOUT,
                # redis-py retries 3 times by default: that would triple the wait.
                "retry": Retry(NoBackoff(), 0),
            },
        }
    }
    CELERY_BROKER_URL = REDIS_URL
    CELERY_RESULT_BACKEND = REDIS_URL
    CELERY_TASK_ALWAYS_EAGER = False
    CELERY_BROKER_CONNECTION_TIMEOUT = REDIS_TIMEOUT
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "socket_connect_timeout": REDIS_TIMEOUT,
        "socket_timeout": REDIS_TIMEOUT,
    }
    CELERY_REDIS_SOCKET_CONNECT_TIMEOUT = REDIS_TIMEOUT
    CELERY_REDIS_SOCKET_TIMEOUT = REDIS_TIMEOUT
    CELERY_REDIS_RETRY_ON_TIMEOUT = False
    # A publish that fails is the relay's to retry (through the breaker), not kombu's.
    CELERY_TASK_PUBLISH_RETRY = False
    CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
else:
    # A file cache is shared by all gunicorn workers on one machine (locmem is not).
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }
    CELERY_BROKER_URL = "memory://localhost/"
    CELERY_RESULT_BACKEND = None
    CELERY_TASK_ALWAYS_EAGER = True
    CELERY_TASK_EAGER_PROPAGATES = False
# The outbox (shop/outbox): how often each process's relay thread looks for due jobs, when a
# job handed to the broker but not started is sent again, how failed runs back off and give up.
OUTBOX_RELAY_THREAD = env_bool("OUTBOX_RELAY_THREAD", True)
OUTBOX_POLL_SECONDS = env_float("OUTBOX_POLL_SECONDS", 2.0)
OUTBOX_REDELIVER_SECONDS = env_float("OUTBOX_REDELIVER_SECONDS", 300.0)
OUTBOX_RETRY_SECONDS = env_float("OUTBOX_RETRY_SECONDS", 30.0)
OUTBOX_MAX_ATTEMPTS = int(env_float("OUTBOX_MAX_ATTEMPTS", 8))
OUTBOX_KEEP_DAYS = env_float("OUTBOX_KEEP_DAYS", 7.0)
CELERY_BEAT_SCHEDULE = {
    "outbox-relay": {"task": "shop.outbox.relay", "schedule": OUTBOX_POLL_SECONDS * 5},
}
CELERY_TASK_SEND_SENT_EVENT = True
CELERY_WORKER_SEND_TASK_EVENTS = True
CELERY_TASK_ACKS_LATE = True
CELERY_TIMEZONE = "UTC"
# Beat skips its entries while maintenance pauses it (maintenance/beat.py, docs/maintenance.md).
CELERY_BEAT_SCHEDULER = "maintenance.beat:PausableScheduler"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"

# Maintenance mode (maintenance/mode.py): the flag file every process stats at most once per
# interval; `manage.py maintenance_mode on|off|status` switches it.
MAINTENANCE_FILE = VAR_DIR / "maintenance.json"
MAINTENANCE_CHECK_INTERVAL = 1.0

REST_FRAMEWORK = {
    # Token first: DRF takes the WWW-Authenticate challenge of the first class, and without
    # one (sessions have none) it answers a missing or bad token 403 instead of 401.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticatedOrReadOnly"],
    "DEFAULT_SCHEMA_CLASS": "shop.schema.ShopAutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "shop.api.exception_handler",
    "DEFAULT_RENDERER_CLASSES": [
        "shop.api.SafeJSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_PARSER_CLASSES": [
        "shop.api.SafeJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Pasargad Prints API",
    "DESCRIPTION": "The shop API and its monitoring endpoints.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Orders and payments both have a `status` field; give each enum its own name.
    "ENUM_NAME_OVERRIDES": {
        "OrderStatusEnum": "shop.orders.models.Order.Status",
        "PaymentStatusEnum": "shop.payments.models.Payment.Status",
    },
}

EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
EMAIL_HOST = env_str("EMAIL_HOST", "127.0.0.1")
EMAIL_PORT = int(env_float("EMAIL_PORT", 25))
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "shop@pasargadprints.com")

# Monitoring: the bearer token for protected monitoring endpoints (unset: staff session only).
MONITORING_TOKEN = env_str("MONITORING_TOKEN", "")
MONITORING_CONFIG_DIR = BASE_DIR / env_str("MONITORING_CONFIG_DIR", "deploy/prometheus")
# The notifier's routing, in Alertmanager's format (docs/notify.md).
NOTIFY_CONFIG = BASE_DIR / env_str("NOTIFY_CONFIG", "deploy/alertmanager/alertmanager.yml")
HEALTH_CHECK_TIMEOUT = env_float("HEALTH_CHECK_TIMEOUT", 2.0)
# The public /api/health/ checks the database at most this often per process.
HEALTH_BASIC_CACHE_SECONDS = env_float("HEALTH_BASIC_CACHE_SECONDS", 1.0)
# Expensive collectors (database statistics, business) are cached this long and a scrape waits
# at most the budget for a refresh (it gets the last reading otherwise).
# The staff dashboard (docs/dashboard.md): how often its pages refresh their panels.
DASHBOARD_REFRESH_SECONDS = env_float("DASHBOARD_REFRESH_SECONDS", 15.0)
MONITORING_COLLECTOR_INTERVAL = env_float("MONITORING_COLLECTOR_INTERVAL", 15.0)
MONITORING_BUSINESS_INTERVAL = env_float("MONITORING_BUSINESS_INTERVAL", 60.0)
MONITORING_COLLECTOR_BUDGET = env_float("MONITORING_COLLECTOR_BUDGET", 1.0)
# Several hosts (docs/scale.md): `lease` lets one host at a time, elected with a Redis lease,
# export the shop-wide series (business, database, queues); `every-host` is one host's default.
MONITORING_SHOP_WIDE = env_str("MONITORING_SHOP_WIDE", "every-host")
MONITORING_SHOP_LEASE_SECONDS = env_float("MONITORING_SHOP_LEASE_SECONDS", 45.0)
# This host's name in the lease; set it where hosts share a hostname (containers, namespaces).
MONITORING_HOST_ID = env_str("MONITORING_HOST_ID", "") or socket.gethostname()

# Shop: how long a pending order keeps its stock, and how much one customer may hold pending
# (shop/orders/reservations.py). The sweep runs every RESERVATION_SWEEP_SECONDS: Celery beat
# with Redis, `manage.py beat_inprocess` without (scripts/up.py starts either).
ORDER_RESERVATION_MINUTES = env_float("ORDER_RESERVATION_MINUTES", 30.0)
ORDER_MAX_PENDING = int(env_float("ORDER_MAX_PENDING", 10))
ORDER_MAX_PENDING_UNITS = int(env_float("ORDER_MAX_PENDING_UNITS", 200))
RESERVATION_SWEEP_SECONDS = env_float("RESERVATION_SWEEP_SECONDS", 60.0)
CELERY_BEAT_SCHEDULE["order-reservations-expire"] = {
    "task": "shop.orders.tasks.order_reservations_expire",
    "schedule": RESERVATION_SWEEP_SECONDS,
}

# Backups and database maintenance (maintenance/, docs/maintenance.md): weekly, as intervals so
# beat_inprocess runs them too (it also runs each once at start). BackupTooOld fires when the
# newest verified backup in BACKUP_DIR is older than 8 days.
BACKUP_DIR = env_str("BACKUP_DIR", str(VAR_DIR / "backups"))
BACKUP_KEEP = int(env_float("BACKUP_KEEP", 8))
WEEK_SECONDS = 7 * 24 * 3600
CELERY_BEAT_SCHEDULE["database-backup"] = {"task": "maintenance.backup", "schedule": WEEK_SECONDS}
# Escalation (docs/escalation.md): the app runs the escalation timer only in Alertmanager mode
# (ESCALATION_IN_APP; the monitor's own loop does it in embedded mode); level 1 may restart the
# workers' pool through remote control, which they accept only with pool restarts enabled.
ESCALATION_IN_APP = env_bool("ESCALATION_IN_APP", False)
CELERY_WORKER_POOL_RESTARTS = True
CELERY_BEAT_SCHEDULE["escalation"] = {
    "task": "monitoring.escalation.escalate",
    "schedule": env_float("ESCALATION_INTERVAL", 15.0),
}
CELERY_BEAT_SCHEDULE["database-maintain"] = {
    "task": "maintenance.database_maintain",
    "schedule": WEEK_SECONDS,
}

# Storefront and real-user monitoring (docs/rum.md): the first-party beacon (RUM_ENABLED) and
# /api/rum/'s per-client rate limit; third-party analytics load only when their id is set and,
# with ANALYTICS_CONSENT=required (the default), only after the visitor accepts.
RUM_ENABLED = env_bool("RUM_ENABLED", True)
RUM_RATE_PER_MINUTE = env_float("RUM_RATE_PER_MINUTE", 60.0)
GA_MEASUREMENT_ID = env_str("GA_MEASUREMENT_ID", "")
MIXPANEL_TOKEN = env_str("MIXPANEL_TOKEN", "")
HOTJAR_SITE_ID = env_str("HOTJAR_SITE_ID", "")
ANALYTICS_CONSENT = env_str("ANALYTICS_CONSENT", "required")  # required | granted

# Security monitoring (security/, docs/security.md).
TRUSTED_PROXIES = env_list("TRUSTED_PROXIES", [])  # CIDRs whose X-Forwarded-For is believed
SECURITY_LOGIN_FAILURES = int(env_float("SECURITY_LOGIN_FAILURES", 5))  # more than this ...
SECURITY_LOGIN_WINDOW_SECONDS = env_float("SECURITY_LOGIN_WINDOW_SECONDS", 300.0)  # ... in this
SECURITY_BLOCK_SECONDS = env_float("SECURITY_BLOCK_SECONDS", 900.0)
SECURITY_RATE_LIMIT = int(env_float("SECURITY_RATE_LIMIT", 1000))  # requests per period per IP
SECURITY_RATE_PERIOD_SECONDS = env_float("SECURITY_RATE_PERIOD_SECONDS", 60.0)
SECURITY_EXEMPT_PREFIXES = ["/api/health/", "/api/monitoring/"]  # probes and scrapes
# What the rate limit counts: the specification's "api_requests > 1000 per minute from single IP".
# Storefront pages and their static files are not counted: one page view is a dozen requests,
# and a shop's customers share addresses (offices, mobile carriers' NAT).
SECURITY_RATE_LIMITED_PREFIXES = env_list("SECURITY_RATE_LIMITED_PREFIXES", ["/api/"])
SECURITY_LOGIN_PATHS = [
    "/api/accounts/login/",
    "/admin/login/",
    "/login/",
]  # API, admin, storefront
SECURITY_BURST_LIMIT = int(env_float("SECURITY_BURST_LIMIT", 30))  # 401s/404s a minute per IP
SECURITY_STUFFING_LIMIT = int(env_float("SECURITY_STUFFING_LIMIT", 10))
SECURITY_COUNTER_FILE = env_str("SECURITY_COUNTER_FILE", str(VAR_DIR / "security/counters.bin"))
SECURITY_BUSINESS_HOURS = BASE_DIR / env_str(
    "SECURITY_BUSINESS_HOURS", "deploy/security/business_hours.yml"
)
SECURITY_INTEGRITY_DIR = VAR_DIR / "security"
# Critical files (globs under BASE_DIR): settings, deploy configurations, the application code.
SECURITY_INTEGRITY_PATHS = env_list(
    "SECURITY_INTEGRITY_PATHS",
    [
        "config/**/*.py",
        "deploy/**/*.yml",
        "deploy/**/*.tmpl",
        "shop/**/*.py",
        "monitoring/**/*.py",
        "maintenance/**/*.py",
        "security/**/*.py",
        "manage.py",
    ],
)
SECURITY_INTEGRITY_SECONDS = env_float("SECURITY_INTEGRITY_SECONDS", 300.0)
CELERY_BEAT_SCHEDULE["security-file-integrity"] = {
    "task": "security.file_integrity_check",
    "schedule": SECURITY_INTEGRITY_SECONDS,
}

# APM (monitoring/apm, docs/apm.md): both off unless configured; off, neither SDK is imported.
from config.settings.env import ConfigurationError  # noqa: E402


def _ratio(name: str, default: float) -> float:
    value = env_float(name, default)
    if not 0.0 <= value <= 1.0:
        raise ConfigurationError(f"{name}={value!r} is not a ratio between 0 and 1")
    return value


def _release() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"pasargad-prints@{version('pasargad-prints')}"
    except PackageNotFoundError:
        return "pasargad-prints@unknown"


RELEASE = env_str("RELEASE", "") or _release()
SENTRY_DSN = env_str("SENTRY_DSN", "")
SENTRY_TRACES_SAMPLE_RATE = _ratio("SENTRY_TRACES_SAMPLE_RATE", 0.0)
OTEL_EXPORTER_OTLP_ENDPOINT = env_str("OTEL_EXPORTER_OTLP_ENDPOINT", "")
OTEL_SERVICE_NAME = env_str("OTEL_SERVICE_NAME", "pasargad-prints")
# The share of traces kept, decided at the root (parent-based): 10 % by default.
OTEL_TRACES_SAMPLER_ARG = _ratio("OTEL_TRACES_SAMPLER_ARG", 0.1)
# Paths (comma-separated regular expressions) never traced: probes and scrapes, every few seconds.
OTEL_EXCLUDED_URLS = env_str("OTEL_EXCLUDED_URLS", "api/health,api/monitoring/prometheus")

BASE_DIR = BASE_DIR

# Logging: JSON lines (or a readable console format), app and access logs in LOG_DIR, rotated by
# deploy/logrotate/pasargad, or stdout only for containers. See monitoring/logging/config.py.
from pathlib import Path  # noqa: E402

from monitoring.logging.config import logging_config  # noqa: E402

LOG_FORMAT = env_str("LOG_FORMAT", "json")
LOG_DIR = Path(env_str("LOG_DIR", str(VAR_DIR / "log")))
LOG_TO_STDOUT_ONLY = env_bool("LOG_TO_STDOUT_ONLY", False)
LOG_LEVEL = env_str("LOG_LEVEL", "INFO")
LOGGING = logging_config(
    log_format=LOG_FORMAT,
    log_dir=LOG_DIR,
    stdout_only=LOG_TO_STDOUT_ONLY,
    level=LOG_LEVEL,
    environment=ENVIRONMENT,
)
