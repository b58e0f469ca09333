"""The one request middleware of the monitoring: request id, timing, metrics, access log.

It is kept to one class on purpose: its cost is paid on every request (see bench/).
"""

import logging
import time

from django.http import HttpRequest, HttpResponse

from monitoring.logging.context import (
    request_id_from_header,
    request_id_var,
    request_var,
    user_id_var,
)

access_log = logging.getLogger("access")

UNMATCHED_ROUTE = "<unmatched>"


def route_of(request: HttpRequest) -> str:
    """The route template, never the raw path, so label cardinality stays bounded."""
    match = getattr(request, "resolver_match", None)
    if match is None or match.route is None:
        return UNMATCHED_ROUTE
    return "/" + match.route


def client_ip(request: HttpRequest) -> str:
    return request.META.get("REMOTE_ADDR", "")


class RequestMonitoringMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        from monitoring.http.metrics import observe_request

        self.observe_request = observe_request

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        request_id = request_id_from_header(request.META.get("HTTP_X_REQUEST_ID"))
        request.request_id = request_id
        rid_token = request_id_var.set(request_id)
        uid_token = user_id_var.set(None)
        req_token = request_var.set(request)  # log lines read the user once auth has run
        try:
            response = self.get_response(request)
            duration = time.perf_counter() - started
            response["X-Request-ID"] = request_id
            route = route_of(request)
            user = getattr(request, "user", None)
            user_id = user.pk if user is not None and user.is_authenticated else None
            self.observe_request(request.method, route, response.status_code, duration, user_id)
            if access_log.isEnabledFor(logging.INFO):
                access_log.info(
                    "%s %s %s",
                    request.method,
                    route,
                    response.status_code,
                    extra={
                        "method": request.method,
                        "route": route,
                        "path": request.path,
                        "status": response.status_code,
                        "duration_ms": round(duration * 1000, 3),
                        "bytes": len(response.content) if not response.streaming else None,
                        "client_ip": client_ip(request),
                        "user_id": user_id,
                    },
                )
            return response
        finally:
            request_id_var.reset(rid_token)
            user_id_var.reset(uid_token)
            request_var.reset(req_token)
