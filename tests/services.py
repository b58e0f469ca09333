"""Real services the tests need. Under CI=true a missing one fails the test; locally it skips."""

import os
import shutil
import socket

import pytest


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def require(what: str, available: bool) -> None:
    if available:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} is required under CI=true but is not available")
    pytest.skip(f"{what} is not available")


def require_postgres() -> None:
    require("PostgreSQL at 127.0.0.1:5432", _reachable("127.0.0.1", 5432))


def require_redis() -> None:
    require("Redis at 127.0.0.1:6379", _reachable("127.0.0.1", 6379))


def require_prometheus() -> None:
    require(
        "Prometheus and promtool (Debian's prometheus package)",
        bool(shutil.which("prometheus") and shutil.which("promtool")),
    )


def require_alertmanager() -> None:
    require(
        "Alertmanager and amtool (Debian's prometheus-alertmanager package)",
        bool(
            (shutil.which("alertmanager") or shutil.which("prometheus-alertmanager"))
            and shutil.which("amtool")
        ),
    )
