"""Count database exceptions (`database_errors_total{kind}`) at the one place they surface.

- Every query runs through `count_query_errors`, an execute wrapper installed on each new
  connection: a failing statement (IntegrityError, ProgrammingError, a lost connection...) is
  counted whether or not the caller handles it.
- A failure to connect never reaches a statement, so an unhandled database exception in a
  request or a task that the wrapper did not see is counted by `count_unhandled`.
An exception is marked once counted, so no error is counted twice.
"""

import sys

from django.db import utils as db_utils

from monitoring.logging.counters import DATABASE_ERROR_KINDS, count_database_error

_KINDS = tuple(getattr(db_utils, name) for name in DATABASE_ERROR_KINDS)
_COUNTED = "_monitoring_counted"


def error_kind(exc: BaseException) -> str:
    """The Django database exception class it is (bounded set), e.g. "IntegrityError"."""
    for kind in _KINDS:
        if isinstance(exc, kind):
            return kind.__name__
    return "Error"


def count_exception(exc: BaseException) -> None:
    if not isinstance(exc, db_utils.Error) or getattr(exc, _COUNTED, False):
        return
    try:
        setattr(exc, _COUNTED, True)
    except AttributeError:
        pass
    count_database_error(error_kind(exc))


def count_query_errors(execute, sql, params, many, context):
    try:
        return execute(sql, params, many, context)
    except db_utils.Error as exc:
        count_exception(exc)
        raise


def install_on_connection(sender, connection, **kwargs) -> None:
    """`connection_created` receiver: wrap the connection's statements once."""
    if count_query_errors not in connection.execute_wrappers:
        connection.execute_wrappers.append(count_query_errors)


def count_unhandled(sender=None, request=None, exception=None, **kwargs) -> None:
    """`got_request_exception` / `task_failure` receiver."""
    if exception is None:
        exception = sys.exc_info()[1]
    if exception is not None:
        count_exception(exception)


def connect() -> None:
    from django.core.signals import got_request_exception
    from django.db.backends.signals import connection_created

    connection_created.connect(install_on_connection, dispatch_uid="monitoring.db_errors")
    got_request_exception.connect(count_unhandled, dispatch_uid="monitoring.db_errors")
