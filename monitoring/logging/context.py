"""Request context carried through threads, async views and Celery tasks (contextvars).

The request middleware sets these; the JSON formatter reads them; Celery task headers carry
the request id across processes.
"""

import contextvars
import re
import uuid

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "request_id", default=None
)
user_id_var: contextvars.ContextVar[int | None] = contextvars.ContextVar("user_id", default=None)

# Accept caller-supplied ids only when they are short and plain, so logs cannot be injected.
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def new_request_id() -> str:
    return "req-" + uuid.uuid4().hex[:16]


def request_id_from_header(value: str | None) -> str:
    if value and _VALID_REQUEST_ID.match(value):
        return value
    return new_request_id()
