"""Every error the API answers is JSON, whatever raised it and wherever.

DRF views answer their own errors through `shop.api.exception_handler`. What escapes them, or
is raised by a middleware (a session or visit write with the database down), or never reaches
a view (an unmatched URL), Django answers with its HTML pages; under `/api/` this middleware
replaces such an answer with `{"detail", "code"}`: 503 with Retry-After when the database is
unreachable (`shop.outage`), otherwise the same status. It sits right inside the request
monitoring middleware, so metrics and the access log record the status the client gets.
"""

from __future__ import annotations

import sys

from django.core.signals import got_request_exception
from django.http import HttpRequest, HttpResponse, JsonResponse

from shop.outage import RETRY_AFTER_SECONDS, UNAVAILABLE_BODY, database_unavailable

API_PREFIX = "/api/"
_EXCEPTION_ATTR = "_api_uncaught_exception"
_CODES = {
    400: "invalid",
    401: "not_authenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "request_too_large",
    415: "unsupported_media_type",
    500: "server_error",
}


def _remember_exception(sender, request=None, **kwargs) -> None:
    # Sent by Django inside its `except` around a failing view or middleware, before it
    # renders the 500 page: the exception is the one being handled.
    if request is not None:
        setattr(request, _EXCEPTION_ATTR, sys.exc_info()[1])


def is_json(response: HttpResponse) -> bool:
    content_type = response.get("Content-Type", "").split(";")[0].strip()
    return content_type == "application/json" or content_type.endswith("+json")


def json_error(status: int, reason: str) -> JsonResponse:
    return JsonResponse({"detail": reason, "code": _CODES.get(status, "error")}, status=status)


def unavailable_response() -> JsonResponse:
    response = JsonResponse(UNAVAILABLE_BODY, status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


class ApiJsonErrorsMiddleware:
    def __init__(self, get_response) -> None:
        self.get_response = get_response
        got_request_exception.connect(_remember_exception, dispatch_uid="shop.api_errors")

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if not request.path.startswith(API_PREFIX) or response.status_code < 400:
            return response
        exc = getattr(request, _EXCEPTION_ATTR, None)
        if exc is not None and database_unavailable(exc):
            response = _replaced(response, unavailable_response())
        elif not is_json(response):
            response = _replaced(response, json_error(response.status_code, _reason(response)))
        if response.status_code == 503 and not response.has_header("Retry-After"):
            response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response


def _reason(response: HttpResponse) -> str:
    if response.status_code >= 500:
        return "Internal server error." if response.status_code == 500 else response.reason_phrase
    return response.reason_phrase + "."


def _replaced(old: HttpResponse, new: JsonResponse) -> JsonResponse:
    """`new`, keeping the headers of `old` that are not about its body (Allow on a 405,
    WWW-Authenticate, cookies, Vary)."""
    for header in ("Allow", "WWW-Authenticate", "Vary"):
        if old.has_header(header):
            new[header] = old[header]
    new.cookies = old.cookies
    # Django logged the old answer already (an uncaught exception at ERROR with its traceback);
    # the new one must not be logged a second time.
    new._has_been_logged = getattr(old, "_has_been_logged", False)
    return new
