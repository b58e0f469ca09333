"""Request context carried through threads, async views and Celery tasks (contextvars).

The request middleware sets these; the JSON formatter reads them; Celery task headers carry
the request id across processes.
"""

import contextvars
import re
from collections.abc import Callable

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "request_id", default=None
)
user_id_var: contextvars.ContextVar[int | None] = contextvars.ContextVar("user_id", default=None)
# The request being served. DRF authenticates inside the view (token auth), after the middleware
# ran, so the user id is read from the request lazily, when a line is written.
request_var: contextvars.ContextVar[object | None] = contextvars.ContextVar("request", default=None)
# The Celery task being run in this worker thread: (task id, task name).
task_var: contextvars.ContextVar[tuple[str, str] | None] = contextvars.ContextVar(
    "task", default=None
)

# Accept caller-supplied ids only when they are short and plain, so logs cannot be injected.
_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")  # fullmatch: "$" allows a "\n"


def valid_request_id(value: object) -> str | None:
    """A request id received from elsewhere (a task header), or None when it is not plain."""
    if isinstance(value, str) and _VALID_REQUEST_ID.fullmatch(value):
        return value
    return None


def current_user_id() -> int | None:
    """The user of the current task or request (see `user_id_of`); `user_id_var` wins when set."""
    user_id = user_id_var.get()
    if user_id is not None:
        return user_id
    return user_id_of(request_var.get())


def user_id_of(request: object | None) -> int | None:
    """The authenticated user of a request, without causing a database query.

    The user is read only once something has resolved it (Django's auth middleware, or DRF's
    authentication, which stores its user on the Django request): a log line must never
    trigger a session lookup, which could log, or fail, in turn.
    """
    if request is None:
        return None
    user = getattr(request, "__dict__", {}).get("user")
    if user is None:
        return None
    wrapped = getattr(user, "_wrapped", user)  # SimpleLazyObject keeps the real user here
    if not getattr(wrapped, "is_authenticated", False):
        return None  # anonymous, or not evaluated yet (django.utils.functional.empty)
    return wrapped.pk


# The trace of the current span, when tracing is on (monitoring.apm.traces sets the source): a
# log line then carries the trace id and span id that lead to its trace. Off, it costs a call.
_trace_source: Callable[[], tuple[str, str] | None] | None = None


def set_trace_source(source: Callable[[], tuple[str, str] | None] | None) -> None:
    global _trace_source
    _trace_source = source


def current_trace_ids() -> tuple[str, str] | None:
    """(trace id, span id) in hex of the span being run, or None (no tracing, no span)."""
    source = _trace_source
    return None if source is None else source()
