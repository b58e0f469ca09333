"""Carry the request context into Celery tasks and make the worker log through Django's LOGGING.

- `before_task_publish` (in the web process) adds the current request id and user id to the
  task's message headers;
- `task_prerun` / `task_postrun` (in the worker) bind them, and the task itself, to the context
  for the task's duration, so the worker's lines carry the request id that caused them;
- `setup_logging` replaces Celery's own logging set-up with Django's `LOGGING` (JSON lines);
- `task_failure` counts a database exception that made a task fail (see db_errors).

Imported by `config/celery.py`, so it is connected in every process that has the Celery app.
"""

import logging.config

from celery import signals

from monitoring.logging.context import (
    request_id_var,
    task_var,
    user_id_var,
    valid_request_id,
)

REQUEST_ID_HEADER = "request_id"
USER_ID_HEADER = "user_id"

# Context tokens of the tasks running in this process, by task id, reset in task_postrun.
_tokens: dict[str, list] = {}


def context_headers() -> dict:
    """The current request id and user id as task headers (also kept with an outbox job, whose
    message is published later by the relay thread, outside the request)."""
    from monitoring.logging.context import current_user_id

    headers = {}
    request_id = request_id_var.get()
    if request_id is not None:
        headers[REQUEST_ID_HEADER] = request_id
    user_id = current_user_id()
    if user_id is not None:
        headers[USER_ID_HEADER] = user_id
    return headers


@signals.before_task_publish.connect(dispatch_uid="monitoring.logging.publish")
def add_context_headers(headers=None, **kwargs) -> None:
    if headers is None:
        return
    for name, value in context_headers().items():
        headers.setdefault(name, value)


@signals.task_prerun.connect(dispatch_uid="monitoring.logging.prerun")
def bind_task_context(task_id=None, task=None, **kwargs) -> None:
    request = getattr(task, "request", None)
    tokens = [(task_var, task_var.set((task_id, getattr(task, "name", ""))))]
    # Eager tasks carry no headers: they run inside the caller's context, which stays as it is.
    request_id = valid_request_id(getattr(request, REQUEST_ID_HEADER, None))
    if request_id is not None:
        tokens.append((request_id_var, request_id_var.set(request_id)))
    user_id = getattr(request, USER_ID_HEADER, None)
    if isinstance(user_id, int) and not isinstance(user_id, bool):
        tokens.append((user_id_var, user_id_var.set(user_id)))
    _tokens[task_id] = tokens


@signals.task_postrun.connect(dispatch_uid="monitoring.logging.postrun")
def unbind_task_context(task_id=None, **kwargs) -> None:
    for var, token in reversed(_tokens.pop(task_id, [])):
        try:
            var.reset(token)
        except ValueError:  # set in another context (should not happen); leave it
            pass


@signals.setup_logging.connect(dispatch_uid="monitoring.logging.setup")
def configure_worker_logging(**kwargs) -> None:
    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)


@signals.task_failure.connect(dispatch_uid="monitoring.logging.task_failure")
def count_task_database_error(exception=None, **kwargs) -> None:
    from monitoring.logging.db_errors import count_exception

    if exception is not None:
        count_exception(exception)
