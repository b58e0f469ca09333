"""The `LOGGING` dictionary, built from four settings (see README's configuration table).

- LOG_FORMAT: `json` (one JSON object per line) or `console` (readable, for development);
- LOG_DIR: where `app.log` (application, kept 90 days) and `access.log` (kept 30 days) go;
- LOG_TO_STDOUT_ONLY: write everything to stdout instead (containers, process managers);
- LOG_LEVEL: the root level (DEBUG, INFO, WARNING, ERROR, CRITICAL).

Several gunicorn workers append to the same files, so no process rotates them: files are
written by `handlers.AppendFileHandler` (one O_APPEND write per line, reopened within a second
of a rename) and `deploy/logrotate/pasargad` rotates them daily. Every record also passes the counting handler (log-derived metrics).
"""

from pathlib import Path

LOG_FORMATS = ("json", "console")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
APP_LOG_FILE = "app.log"
ACCESS_LOG_FILE = "access.log"


class LoggingConfigurationError(ValueError):
    """A logging setting with a value we cannot use; the message names the variable."""


def logging_config(
    *,
    log_format: str = "json",
    log_dir: Path | str = "var/log",
    stdout_only: bool = False,
    level: str = "INFO",
    environment: str = "development",
) -> dict:
    if log_format not in LOG_FORMATS:
        raise LoggingConfigurationError(
            f"LOG_FORMAT={log_format!r} is not one of {', '.join(LOG_FORMATS)}"
        )
    level = level.upper()
    if level not in LOG_LEVELS:
        raise LoggingConfigurationError(
            f"LOG_LEVEL={level!r} is not one of {', '.join(LOG_LEVELS)}"
        )
    formatter = {
        "()": "monitoring.logging.formatters."
        + ("JsonFormatter" if log_format == "json" else "ConsoleFormatter"),
        "environment": environment,
    }
    handlers: dict[str, dict] = {
        "counters": {"class": "monitoring.logging.counters.LogCounterHandler"},
    }
    if stdout_only:
        handlers["stdout"] = {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
            "formatter": "default",
        }
        app_handlers, access_handlers = ["stdout"], ["stdout"]
    else:
        log_dir = Path(log_dir)
        try:
            log_dir.mkdir(parents=True, exist_ok=True)
        except OSError:  # read-only: the app still starts; its handlers count the lost lines
            pass
        for name, filename in (("app_file", APP_LOG_FILE), ("access_file", ACCESS_LOG_FILE)):
            handlers[name] = {
                "class": "monitoring.logging.handlers.AppendFileHandler",
                "filename": str(log_dir / filename),
                "formatter": "default",
            }
        app_handlers, access_handlers = ["app_file"], ["access_file"]
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": formatter},
        "handlers": handlers,
        "root": {"level": level, "handlers": [*app_handlers, "counters"]},
        "loggers": {
            # Access lines go to their own file (shorter retention), not the application log.
            "access": {"handlers": [*access_handlers, "counters"], "propagate": False},
            # Django's defaults print to the console only when DEBUG and mail admins otherwise;
            # here everything propagates to the root's JSON handlers instead.
            "django": {"handlers": [], "level": level, "propagate": True},
            "django.server": {"handlers": [], "propagate": True},
            "celery": {"handlers": [], "propagate": True},
            # httpx logs every request at INFO: a line per scrape and per simulated request.
            # The scraper logs a target's changes of health itself.
            "httpx": {"level": "WARNING"},
        },
    }


def gunicorn_logconfig(logging_dict: dict) -> dict:
    """gunicorn's `logconfig_dict`: the master's own lines (workers booting, timeouts, signals)
    go through the app's LOGGING too, instead of gunicorn's plain-text stderr format."""
    loggers = dict(logging_dict.get("loggers", {}))
    loggers["gunicorn.error"] = {"handlers": [], "propagate": True}
    # The request middleware writes the structured access line; gunicorn's would repeat it.
    loggers["gunicorn.access"] = {"handlers": [], "propagate": False, "level": "CRITICAL"}
    return {**logging_dict, "loggers": loggers}
