"""The one request middleware of the monitoring: request id, timing, metrics, access log.

It is kept to one class on purpose: its cost is paid on every request (bench/bench_middleware.py).
What keeps it cheap:
- request ids are a per-process random prefix plus a counter (no uuid4 per request);
- the user is read without a session lookup unless the request carries a session cookie and
  nothing has resolved its user yet (then it is resolved once, so active users stay right);
- metrics go to pre-bound children (`observe_request`);
- the access line is written by `log_access`: straight to the access file in the standard
  set-up, else as a lean `AccessRecord` handed to the "access" logger's handlers (never
  `Logger.info`'s stack walk to find the caller, meaningless for an access line).
"""

import itertools
import os
import secrets
import time

from django.conf import settings
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse
from django.utils.functional import empty

from monitoring.logging.access import AccessFields
from monitoring.logging.context import (
    request_id_var,
    request_var,
    user_id_var,
    valid_request_id,
)

UNMATCHED_ROUTE = "<unmatched>"


class _RequestIds:
    """`req-` + 16 hex digits, unique per process: 8 random, then an 8-digit counter."""

    def __init__(self) -> None:
        self.reseed()
        os.register_at_fork(after_in_child=self.reseed)

    def reseed(self) -> None:
        self._prefix = "req-" + secrets.token_hex(4)
        self._counter = itertools.count()

    def __call__(self) -> str:
        return f"{self._prefix}{next(self._counter) & 0xFFFFFFFF:08x}"


new_request_id = _RequestIds()


def route_of(request: HttpRequest) -> str:
    """The route template, never the raw path, so label cardinality stays bounded."""
    match = getattr(request, "resolver_match", None)
    if match is None or match.route is None:
        return UNMATCHED_ROUTE
    return "/" + match.route


def client_ip(request: HttpRequest) -> str:
    """The address security/middleware.py resolved (trusted proxies), else the peer's."""
    return request.__dict__.get("client_ip") or request.META.get("REMOTE_ADDR", "")


def _user_id(request: HttpRequest, session_cookie: str) -> int | None:
    """`user_id_of(request)`, except that a lazy user not resolved yet is resolved when the
    request carries a session cookie (so active users stay right). One pass over the lazy
    object: each attribute read on it is a Python-level `__getattribute__`."""
    user = request.__dict__.get("user")
    if user is None:
        return None
    wrapped = getattr(user, "_wrapped", user)  # SimpleLazyObject keeps the real user here
    if wrapped is empty:
        if session_cookie in request.COOKIES:
            try:
                return user.pk if user.is_authenticated else None  # resolves the session once
            except DatabaseError:  # the database is down: the answer (a 503) is still recorded
                return None
        return None
    return wrapped.pk if getattr(wrapped, "is_authenticated", False) else None


class RequestMonitoringMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        from monitoring.http.metrics import observe_request

        self.observe_request = observe_request
        from monitoring.logging.access_log import log_access

        self.log_access = log_access
        self.session_cookie = settings.SESSION_COOKIE_NAME

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        request_id = valid_request_id(request.META.get("HTTP_X_REQUEST_ID")) or new_request_id()
        request.request_id = request_id
        rid_token = request_id_var.set(request_id)
        # No user id from an enclosing context; usually there is none, and a get is cheaper
        # than a set and its reset.
        uid_token = None if user_id_var.get() is None else user_id_var.set(None)
        req_token = request_var.set(request)  # log lines read the user once auth has run
        try:
            response = self.get_response(request)
            duration = time.perf_counter() - started
            response.headers["X-Request-ID"] = request_id
            route = route_of(request)
            user_id = _user_id(request, self.session_cookie)
            method = request.method
            status = response.status_code
            self.observe_request(method, route, status, duration, user_id)
            self.log_access(
                AccessFields(
                    method,
                    route,
                    request.path,
                    status,
                    round(duration * 1000, 3),
                    None if response.streaming else len(response.content),
                    client_ip(request),
                    user_id,
                )
            )
            return response
        finally:
            request_id_var.reset(rid_token)
            if uid_token is not None:
                user_id_var.reset(uid_token)
            request_var.reset(req_token)
