"""Is the database unreachable? Then the API answers 503 with Retry-After instead of 500.

A database that cannot be reached shows as an OperationalError or InterfaceError while a
connection of ours is not open: the connect itself failed (Django keeps no connection object)
or the server went away under it (the driver marks it closed). Other OperationalErrors on an
open connection (a deadlock, a statement timeout, a locked SQLite file) are not an outage.
With CONN_HEALTH_CHECKS (config/settings/base.py) the next request reconnects, so the shop
serves again as soon as the database is back.
"""

from __future__ import annotations

from django.db import InterfaceError, OperationalError, connections

# Seconds a client is asked to wait: about the time a restarted PostgreSQL needs to accept
# connections again, and short enough that a shopper's retry soon succeeds.
RETRY_AFTER_SECONDS = 5
UNAVAILABLE_BODY = {
    "detail": "The shop is temporarily unavailable; please retry shortly.",
    "code": "service_unavailable",
}


def database_unavailable(exc: BaseException) -> bool:
    """Whether `exc` means the database cannot be reached (see the module's docstring)."""
    if not isinstance(exc, OperationalError | InterfaceError):
        return False
    return any(_not_open(conn) for conn in connections.all(initialized_only=True))


def _not_open(conn) -> bool:
    raw = conn.connection
    # psycopg's Connection.closed is also true once the server dropped it; sqlite3 has none.
    return raw is None or bool(getattr(raw, "closed", False))
